//! Reloading without a restart (SIGHUP, `POST /api/reload`): the plugin files, the
//! resources (discovery runs at once) and the secrets file (SNMP credentials, the trap
//! receiver's communities and v3 users) are read again; rate state,
//! enrichments and everything else the node holds stay. A reload that finds any problem
//! changes nothing and says why.

use std::path::PathBuf;
use std::sync::Arc;

use panoptes_actors::{Job, Rescan};

use super::pipeline::Schedulers;
use super::Plugins;
use crate::agent::discovery::DiscoveryJob;
use crate::agent::Shared;
use crate::config::Settings;
use crate::events::{ConfigReloaded, ReloadFailed};
use crate::http::reload::{Reload, ReloadError};

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub discovery: usize,
    pub enrichment: usize,
    pub polling: usize,
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "configuration reloaded: {} discovery, {} enrichment and {} polling plugins; discovery runs now",
            self.discovery, self.enrichment, self.polling
        )
    }
}

/// Reloads the node it was built for.
pub struct Reloader {
    file: Option<PathBuf>,
    shared: Arc<Shared>,
    schedulers: Schedulers,
    /// The trap receiver's communities and v3 users, when it runs.
    traps: Option<crate::traps::TrapCredentials>,
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub(super) fn new(
        settings: &Settings,
        shared: Arc<Shared>,
        schedulers: Schedulers,
        traps: Option<crate::traps::TrapCredentials>,
    ) -> Self {
        Reloader {
            file: settings.origins.file().map(PathBuf::from),
            shared,
            schedulers,
            traps,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads the configuration, the secrets file and every plugin file again; applies
    /// them only when all load.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one = self.running.try_lock().map_err(|_| ReloadError::Busy)?;
        let file = self.file.clone();
        let loaded = crate::blocking::blocking(move || {
            let settings = Settings::load(file.as_deref())?;
            let plugins = Plugins::load(&settings).map_err(ReloadError::Plugins)?;
            Ok::<_, ReloadError>((settings, plugins))
        })
        .await;
        let (settings, plugins) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                ReloadFailed { error: &e }.emit(&self.shared.telemetry);
                return Err(e);
            }
        };
        let lists = &self.schedulers.plugins;
        let reloaded = Reloaded {
            discovery: plugins.discovery.len(),
            enrichment: plugins.enrichment.len(),
            polling: plugins.polling.len(),
        };
        lists.discovery.set(plugins.discovery.clone());
        lists.enrichment.set(plugins.enrichment);
        lists.polling.set(plugins.polling);
        self.shared.set_snmp(&settings);
        if let Some(traps) = &self.traps {
            traps.set(&settings.traps);
        }
        for scheduler in self.schedulers.all() {
            scheduler.do_send(Rescan);
        }
        if self.shared.ownership.runs_discovery() {
            for plugin in plugins.discovery {
                let job = DiscoveryJob::new(Arc::clone(&self.shared), plugin);
                actix::spawn(async move {
                    // The job logs and counts its own failures.
                    let _ = job.run().await;
                });
            }
        }
        ConfigReloaded {
            summary: &reloaded.to_string(),
        }
        .emit(&self.shared.telemetry);
        Ok(reloaded)
    }
}

impl Reload for Reloader {
    fn reload(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, ReloadError>> + '_>>
    {
        Box::pin(async move { Reloader::reload(self).await.map(|r| r.to_string()) })
    }
}

/// Reloads on every SIGHUP, for as long as the node runs.
pub(super) async fn on_sighup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reload with POST /api/reload");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            crate::sd_notify::notify("RELOADING=1");
            // Reported by the events the reload emits.
            let _ = reloader.reload().await;
            crate::sd_notify::notify("READY=1");
        }
    }
    #[cfg(not(unix))]
    drop(reloader);
}
