//! The client at fleet scale, against our simulator: ten thousand devices with a
//! bounded number of file descriptors, and dead or slow devices that cost their
//! own deadline and no one else's.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes::simulate::{
    fdlimit, CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig,
};
use panoptes::snmp::{
    open_fds, Community, EngineConfig, Oid, SnmpClient, SnmpEngine, SnmpError, SnmpTarget,
};

fn target(addr: SocketAddr, timeout: Duration, retries: u32) -> SnmpTarget {
    let mut target = SnmpTarget::new(addr.ip().to_string(), Community::from("public"));
    target.port = addr.port();
    target.timeout = timeout;
    target.retries = retries;
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_devices_with_a_bounded_number_of_sockets() {
    const DEVICES: usize = 10_000;
    let limit = fdlimit::raise_open_files(DEVICES as u64 + 512);
    assert!(
        limit >= DEVICES as u64 + 256,
        "this test needs {} open files, the hard limit allows {limit}",
        DEVICES + 256
    );
    let recording = Arc::new(Recording::load(support::resource("demo/switch48.snmprec")).unwrap());
    let mut config = SimulatorConfig::new(CounterMode::Frozen);
    for _ in 0..DEVICES {
        config = config.with_device(DeviceConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&recording),
            "public",
        ));
    }
    let simulator = Simulator::spawn(config).await.unwrap();
    let engine = SnmpEngine::new(EngineConfig {
        max_in_flight: 512,
        ..EngineConfig::default()
    })
    .unwrap();
    let fds_before = open_fds();
    let peak_fds = Arc::new(AtomicU64::new(fds_before));
    let peak_in_flight = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (engine, peak_fds, peak_in_flight) = (
            engine.clone(),
            Arc::clone(&peak_fds),
            Arc::clone(&peak_in_flight),
        );
        tokio::spawn(async move {
            loop {
                let stats = engine.stats();
                peak_fds.fetch_max(stats.open_fds, Ordering::Relaxed);
                peak_in_flight.fetch_max(stats.in_flight, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let sys_name: Oid = "1.3.6.1.2.1.1.5.0".parse().unwrap();
    let mut polls = tokio::task::JoinSet::new();
    for addr in simulator.local_addrs() {
        let (engine, sys_name) = (engine.clone(), sys_name.clone());
        polls.spawn(async move {
            let target = target(addr, Duration::from_secs(5), 2);
            let mut client = SnmpClient::connect_with(&engine, &target).await?;
            client.get(std::slice::from_ref(&sys_name)).await
        });
    }
    let mut answered = 0;
    while let Some(done) = polls.join_next().await {
        let varbinds = done.unwrap().unwrap();
        assert_eq!(Some(&varbinds[0].value), recording.get(&sys_name));
        answered += 1;
    }
    sampler.abort();
    assert_eq!(answered, DEVICES);
    let stats = engine.stats();
    // The engine's sockets were open before the polls: ten thousand devices
    // added no file descriptor (a little slack for the runtime's own).
    let peak = peak_fds.load(Ordering::Relaxed);
    assert!(
        peak <= fds_before + 8,
        "fds grew from {fds_before} to {peak} while polling"
    );
    assert!(stats.sockets <= 8, "{stats:?}");
    assert!(peak_in_flight.load(Ordering::Relaxed) <= 512);
    assert_eq!(stats.pending_ids, 0, "{stats:?}");
    assert_eq!(stats.devices_busy, 0, "{stats:?}");
    assert_eq!(
        stats.spoofed_replies + stats.malformed_replies,
        0,
        "{stats:?}"
    );
    simulator.shutdown().await;
}

/// How long each walk took, and how it ended.
struct Walked {
    took: Duration,
    finished: Instant,
    result: Result<usize, SnmpError>,
}

async fn walk(engine: SnmpEngine, target: SnmpTarget, root: Oid, deadline: Duration) -> Walked {
    let started = Instant::now();
    let result = async {
        let mut client = SnmpClient::connect_with(&engine, &target)
            .await?
            .with_deadline(deadline);
        client.bulk_walk(&root).await.map(|rows| rows.len())
    }
    .await;
    Walked {
        took: started.elapsed(),
        finished: Instant::now(),
        result,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_slow_devices_do_not_delay_the_healthy_ones() {
    const HEALTHY: usize = 200;
    let recording = Arc::new(Recording::load(support::resource("demo/switch48.snmprec")).unwrap());
    let mut config = SimulatorConfig::new(CounterMode::Advancing);
    for _ in 0..=HEALTHY {
        config = config.with_device(DeviceConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&recording),
            "public",
        ));
    }
    let simulator = Simulator::spawn(config).await.unwrap();
    let addrs = simulator.local_addrs();
    let (healthy, slow) = (&addrs[..HEALTHY], addrs[HEALTHY]);
    // The slow device answers, but after 300 ms, every time.
    simulator.set_reply_delay(HEALTHY, Duration::from_millis(300));
    // The dead one: a socket nobody reads. Held for the whole test: a port freed at once
    // could be bound by another test's simulator meanwhile, and answer (it did, once).
    let dead_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead: SocketAddr = dead_socket.local_addr().unwrap();
    let engine = SnmpEngine::new(EngineConfig::default()).unwrap();
    let if_descr: Oid = "1.3.6.1.2.1.2.2.1.2".parse().unwrap();
    let rows = recording
        .iter()
        .filter(|(o, _)| o.starts_with(&if_descr))
        .count();
    let timeout = Duration::from_millis(1_000);
    let walk_healthy = |round: u32| {
        let mut set = tokio::task::JoinSet::new();
        for &addr in healthy {
            let mut target = target(addr, timeout, 1);
            // Small batches: many requests per walk, so a stall would show.
            target.max_repetitions = 5 + round;
            set.spawn(walk(
                engine.clone(),
                target,
                if_descr.clone(),
                Duration::from_secs(30),
            ));
        }
        set
    };

    // Healthy devices alone.
    let mut alone = Vec::new();
    let mut set = walk_healthy(0);
    while let Some(done) = set.join_next().await {
        alone.push(done.unwrap());
    }

    // Again, with a dead and a slow device polled at the same time.
    let bad_started = Instant::now();
    let dead_walk = tokio::spawn(walk(
        engine.clone(),
        target(dead, timeout, 1),
        if_descr.clone(),
        Duration::from_secs(30),
    ));
    let mut slow_target = target(slow, timeout, 1);
    slow_target.max_repetitions = 5;
    // Its walk needs ~10 requests of 300 ms; the poll deadline cuts it at 1.5 s.
    let slow_walk = tokio::spawn(walk(
        engine.clone(),
        slow_target,
        if_descr.clone(),
        Duration::from_millis(1_500),
    ));
    let mut with_bad = Vec::new();
    let mut set = walk_healthy(1);
    while let Some(done) = set.join_next().await {
        with_bad.push(done.unwrap());
    }
    let dead_walk = dead_walk.await.unwrap();
    let slow_walk = slow_walk.await.unwrap();

    for walked in alone.iter().chain(&with_bad) {
        assert_eq!(
            walked.result.as_ref().ok(),
            Some(&rows),
            "a healthy walk failed after {:?}: {:?}",
            walked.took,
            walked.result
        );
    }
    // The bad devices cost their own deadline ...
    assert!(
        matches!(dead_walk.result, Err(SnmpError::Timeout { .. })),
        "{:?}",
        dead_walk.result.err()
    );
    assert!(
        matches!(slow_walk.result, Err(SnmpError::Deadline { .. })),
        "{:?}",
        slow_walk.result.err()
    );
    assert!(dead_walk.took >= timeout * 2 && slow_walk.took >= Duration::from_millis(1_500));
    // ... and no one else's: every healthy walk was done before either bad
    // device gave up, and none took as long as one timeout.
    let last_healthy = with_bad.iter().map(|w| w.finished).max().unwrap();
    assert!(last_healthy < dead_walk.finished && last_healthy < slow_walk.finished);
    let slowest = |walks: &[Walked]| walks.iter().map(|w| w.took).max().unwrap();
    assert!(
        slowest(&with_bad) < timeout,
        "healthy walks took up to {:?} next to the bad devices ({:?} alone); bad ones started {:?} before",
        slowest(&with_bad),
        slowest(&alone),
        last_healthy - bad_started
    );
    let stats = engine.stats();
    assert!(stats.timeouts >= 1 && stats.retries >= 1, "{stats:?}");
    drop(dead_socket);
    simulator.shutdown().await;
}
