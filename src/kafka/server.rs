//! The Kafka listener: the accept loop (connections admitted or refused before a task is
//! spawned for them, see `admission`), one task per connection (`connection`), on a
//! small runtime of its own so client traffic never competes with the pollers' threads
//! for a scheduler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::acl::Principal;
use super::broker::{Broker, Caller};

/// A running listener. Dropping it (or `stop`) closes the listener and every connection.
pub struct KafkaServer {
    pub local_addr: SocketAddr,
    pub broker: Arc<Broker>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KafkaServer {
    /// Binds `listen` now (a taken port fails here, with the address) and serves on a
    /// thread of its own.
    pub fn start(listen: SocketAddr, broker: Broker) -> anyhow::Result<KafkaServer> {
        use anyhow::Context;
        let std_listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("binding the Kafka listener on {listen} (kafka.listen)"))?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let mut broker = broker;
        if broker.config.advertised_port == 0 {
            broker.config.advertised_port = local_addr.port();
        }
        if broker.config.advertised_host.is_empty() {
            broker.config.advertised_host = local_addr.ip().to_string();
        }
        let broker = Arc::new(broker);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kafka")
            .enable_all()
            .build()
            .context("starting the Kafka listener's runtime")?;
        let (tx, rx) = oneshot::channel();
        let b = Arc::clone(&broker);
        let thread = std::thread::Builder::new()
            .name("kafka-listener".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => serve(listener, b, rx).await,
                        Err(e) => tracing::error!(error = %e, "the Kafka listener failed to start"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
        Ok(KafkaServer {
            local_addr,
            broker,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KafkaServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: oneshot::Receiver<()>) {
    let ticker = {
        let b = Arc::clone(&broker);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            let mut next_measure = Instant::now();
            loop {
                every.tick().await;
                let now = Instant::now();
                b.groups.tick(now);
                if now >= next_measure {
                    next_measure = now + Duration::from_secs(1);
                    let m = Arc::clone(&b);
                    let _ = tokio::task::spawn_blocking(move || m.measure_data()).await;
                }
            }
        })
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Counted here, before the task is spawned, so a burst of connects
                    // cannot overshoot the caps while tasks start.
                    let no_one = Caller { principal: Principal::Anonymous, peer: Some(peer) };
                    match broker.admission.admit(peer.ip()) {
                        Ok((ticket, evicted)) => {
                            if let Some(e) = evicted {
                                broker.refuse(&no_one, e.refusal, &e.detail);
                            }
                            let b = Arc::clone(&broker);
                            tokio::spawn(async move { super::connection::serve(stream, peer, b, ticket).await });
                        }
                        Err(refused) => {
                            broker.refuse(&no_one, refused.refusal, &refused.detail);
                            drop(stream);
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep listening.
                    tracing::warn!(error = %e, "accepting a Kafka connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    ticker.abort();
}
