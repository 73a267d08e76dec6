//! The node's Kafka side: the embedded listener (with its security and the pipeline's
//! protected topics), or the external cluster's client, and the bus over either.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use panoptes_storage::Store;

use super::Plugins;
use crate::bus::Bus;
use crate::config::Settings;
use crate::telemetry::Telemetry;

/// The bus of the pipeline's topics: the local store, or the external cluster
/// (`kafka.brokers`). On the local store the pipeline's topics exist from the start, so a
/// Kafka consumer can subscribe before the first poll (auto-creation is off, and the
/// pipeline's names are protected from clients anyway).
pub(super) async fn open_bus(
    settings: &Settings,
    plugins: &Plugins,
    store: &Store,
    telemetry: &Arc<Telemetry>,
) -> Result<Bus> {
    if !settings.kafka.brokers.is_empty() {
        tracing::info!(brokers = ?settings.kafka.brokers, security = settings.kafka.client_security.name(), "topics are on an external Kafka cluster (kafka.brokers)");
        let cluster = crate::kafka::ExternalCluster::start(
            settings.kafka.brokers.clone(),
            &format!("panoptes-{}", settings.site),
            client_security(&settings.kafka)?,
            Some(Arc::clone(telemetry)),
        )?;
        return Ok(Bus::external(
            store.clone(),
            settings.kafka.partitions,
            cluster,
        ));
    }
    let bus = Bus::new(store.clone(), settings.kafka.partitions);
    let (b, topics) = (bus.clone(), published_topics(settings, plugins));
    tokio::task::spawn_blocking(move || topics.iter().try_for_each(|t| b.topic(t).map(drop)))
        .await
        .context("creating the pipeline's topics")?
        .context("creating the pipeline's topics")?;
    Ok(bus)
}

/// The embedded Kafka broker on `kafka.listen`, unless it is empty.
pub(super) fn start_listener(
    settings: &Settings,
    plugins: &Plugins,
    store: &Store,
    telemetry: &Arc<Telemetry>,
) -> Result<Option<crate::kafka::KafkaServer>> {
    let Some(listen) = settings.kafka.listen_addr().map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    if !settings.kafka.brokers.is_empty() {
        tracing::info!(
            listen = %listen,
            "no embedded Kafka listener: the topics are on the external cluster (kafka.brokers)"
        );
        return Ok(None);
    }
    let k = &settings.kafka;
    // Every connection is a file descriptor: room for all of them, and for the store's.
    let wanted = k.max_connections as u64 + 1024;
    let limit = crate::simulate::fdlimit::raise_open_files(wanted);
    if limit < wanted {
        tracing::warn!(
            limit,
            wanted,
            "the open-files limit is below kafka.max_connections + 1024: connections past it fail to be accepted"
        );
    }
    let security = listener_security(k)?;
    for warning in crate::kafka::security::check_exposure(
        listen,
        k.security,
        &k.sasl_mechanisms,
        k.allow_insecure,
    )
    .map_err(anyhow::Error::new)?
    {
        tracing::warn!("{warning}");
    }
    let config = broker_config(settings, plugins, security);
    tracing::debug!(
        protected_topics = ?config.authorizer.protected_topics,
        protected_groups = ?config.authorizer.protected_groups,
        "Kafka authorization"
    );
    let broker = crate::kafka::Broker::new(config, store.clone(), Arc::clone(telemetry));
    let server = crate::kafka::KafkaServer::start(listen, broker)?;
    tracing::info!(listen = %server.local_addr, security = k.security.name(), "Kafka listener started");
    Ok(Some(server))
}

/// The broker's configuration: `kafka.*`, with the pipeline's own topics and groups
/// protected.
fn broker_config(
    settings: &Settings,
    plugins: &Plugins,
    security: crate::kafka::security::ListenerSecurity,
) -> crate::kafka::BrokerConfig {
    let k = &settings.kafka;
    crate::kafka::BrokerConfig {
        advertised_host: k.advertised_host.clone(),
        advertised_port: k.advertised_port,
        auto_create_topics: k.auto_create_topics,
        auto_create_prefix: k.auto_create_prefix.clone(),
        default_partitions: k.partitions,
        cluster_id: format!("panoptes-{}", settings.site),
        limits: crate::kafka::Limits {
            max_frame_bytes: k.max_frame_bytes,
            max_bytes_in_flight: k.max_bytes_in_flight,
            max_inflated_bytes: k.max_inflated_bytes,
            budget_wait: Duration::from_secs(5),
            max_connections: k.max_connections,
            max_connections_per_ip: k.max_connections_per_ip,
            first_request_timeout: Duration::from_secs(k.first_request_timeout),
            idle_timeout: Duration::from_secs(k.idle_timeout),
            frame_timeout: Duration::from_secs(30),
            max_topics: k.max_topics,
            max_partitions_per_topic: k.max_partitions_per_topic,
            max_partitions: k.max_partitions,
            max_data_bytes: k.max_data_bytes,
            max_groups: k.max_groups,
            max_members_per_group: k.max_members_per_group,
            max_producer_states: k.max_producer_states,
            max_request_partitions: k.max_request_partitions,
        },
        authorizer: crate::kafka::acl::Authorizer {
            acl: k.acl.clone(),
            default_operations: k.default_operations.clone(),
            protected_topics: pipeline_topics(settings, plugins),
            protected_groups: vec![
                crate::agent::resources::GROUP.to_owned(),
                crate::sink::GROUP.to_owned(),
                crate::sink::start::TRAPS_GROUP.to_owned(),
            ],
        },
        security,
    }
}

/// The topics this node's pipeline writes and reads, for every site it serves: only a
/// named principal with an ACL may write to them over the wire.
fn pipeline_topics(settings: &Settings, plugins: &Plugins) -> Vec<String> {
    let mut topics = vec![settings.kafka.global_topic_name.clone()];
    for site in settings.served_sites() {
        let mut add = |t: String| {
            if !topics.contains(&t) {
                topics.push(t);
            }
        };
        add(format!("{site}-resources"));
        add(format!("{site}-processed"));
        for plugin in &plugins.polling {
            for suffix in &plugin.processed_topics {
                add(format!("{site}-{suffix}"));
            }
        }
    }
    topics.extend(settings.traps_topics());
    topics
}

/// The topics this node's pipeline publishes to (as `agent::polling::topics_for` picks
/// them for each site it serves), the resources topics, and the traps topic when traps
/// are on.
fn published_topics(settings: &Settings, plugins: &Plugins) -> Vec<String> {
    let mut topics = settings.resources_topics();
    topics.extend(settings.traps_topics());
    for site in settings.served_sites() {
        for plugin in &plugins.polling {
            for t in crate::agent::polling::topics_for(&settings.kafka, plugin, &site) {
                if !topics.contains(&t) {
                    topics.push(t);
                }
            }
        }
    }
    topics
}

/// The listener's TLS and SASL, from the settings and the secrets file.
fn listener_security(
    k: &crate::config::KafkaSettings,
) -> Result<crate::kafka::security::ListenerSecurity> {
    let tls = if k.security.tls() {
        Some(crate::tls::server_config(
            std::path::Path::new(k.tls_cert.trim()),
            std::path::Path::new(k.tls_key.trim()),
            ("kafka.tls_cert", "kafka.tls_key"),
        )?)
    } else {
        None
    };
    let sasl = k.security.sasl().then(|| {
        Arc::new(crate::kafka::sasl::SaslServer::new(
            k.sasl_mechanisms.clone(),
            &k.users,
        ))
    });
    Ok(crate::kafka::security::ListenerSecurity {
        protocol: k.security,
        tls,
        sasl,
    })
}

/// Our client's TLS and SASL towards `kafka.brokers`.
pub(super) fn client_security(
    k: &crate::config::KafkaSettings,
) -> Result<crate::kafka::ClientSecurity> {
    let tls = if k.client_security.tls() {
        Some(crate::tls::client_config(crate::tls::Trust::Only(
            "kafka.client_tls_ca",
            std::path::Path::new(k.client_tls_ca.trim()),
        ))?)
    } else {
        None
    };
    let sasl = k.client_security.sasl().then(|| crate::kafka::ClientSasl {
        mechanism: k.client_sasl_mechanism,
        username: k.client_username.trim().to_owned(),
        password: k.client_password.clone(),
    });
    Ok(crate::kafka::ClientSecurity { tls, sasl })
}
