//! Polling agent: runs a polling plugin on a resource, applies the plugin's transforms
//! (rates) and publishes every metrics group to `<site>-processed` (plus extra suffixes
//! and the global topic, as configured), keyed and partitioned as the original.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use panoptes_actors::{BoxFuture, Job, JobError};

use super::{finish_run, owned_run, RunError, Shared};
use crate::bus::Message;
use crate::config::{KafkaSettings, PluginConfig};
use crate::events::{MetricsGroupsPublished, PublishFailed, RatesComputed};
use crate::model::{now_epoch, MetricType, MetricsGroup, Resource, Site};
use crate::plugins::runner;
use crate::plugins::status::SystemPing;
use crate::plugins::BuiltIn;
use crate::transform::{apply_transforms, TransformReport};

pub struct PollingJob {
    pub shared: Arc<Shared>,
    pub plugin: Arc<PluginConfig>,
    pub resource: Arc<Resource>,
    /// Read from the plugin file by the interface polling plugin itself; kept so the
    /// node builds jobs the same way for every plugin.
    pub include_interface_index: bool,
}

impl Job for PollingJob {
    fn run(&self) -> BoxFuture<Result<(), JobError>> {
        owned_run(
            &self.shared,
            &self.plugin,
            &self.resource,
            |shared, plugin, resource| async move {
                let started = Instant::now();
                let at_ms = crate::model::now_ms();
                let (done, result) = match poll_and_publish(&shared, &plugin, &resource).await {
                    Ok(done) => {
                        let result = match done.status {
                            Some(0) | None => Ok(()),
                            Some(code) => Err(RunError::DeviceStatus { code }),
                        };
                        (done, result)
                    }
                    Err(e) => (Published::default(), Err(e)),
                };
                finish_run(
                    &shared,
                    "polling",
                    &plugin.name,
                    &resource.id,
                    started,
                    &result,
                );
                shared.fleet.record(
                    &resource.id,
                    crate::fleet::Poll {
                        plugin: Arc::from(plugin.name.as_str()),
                        at_ms,
                        duration_ms: u32::try_from(started.elapsed().as_millis())
                            .unwrap_or(u32::MAX),
                        status: done.status,
                        failed: result.is_err(),
                        interfaces: done.interfaces,
                        interval_s: u32::try_from(plugin.execute_frequency).unwrap_or(u32::MAX),
                        locations: done.locations,
                    },
                );
                shared.ready.store(true, Ordering::Release);
                result.map_err(JobError::failed)
            },
        )
    }
}

/// What one poll published, for the status page.
#[derive(Debug, Default)]
struct Published {
    /// The status gauge, when the plugin reported one (as the original's codes).
    status: Option<u8>,
    /// Interfaces with `oper_state` 1 (up) and the others, when it polled interfaces.
    interfaces: Option<(u16, u16)>,
    locations: Vec<crate::fleet::Location>,
}

async fn poll_and_publish(
    shared: &Arc<Shared>,
    plugin: &Arc<PluginConfig>,
    resource: &Resource,
) -> Result<Published, RunError> {
    let builtin = BuiltIn::resolve(plugin)?;
    let ping = SystemPing::new(Some(Arc::clone(&shared.telemetry)));
    let polled = runner::poll(shared.run_context(plugin, builtin, resource, &ping)).await?;
    let status = device_status(&polled.groups);
    let interfaces = interface_states(&polled.groups);

    let mut report = TransformReport::default();
    let groups = apply_transforms(
        &plugin.transforms,
        polled.groups,
        &*shared.rates,
        now_epoch(),
        polled.sys_uptime,
        &mut report,
    );
    RatesComputed { report: &report }.emit(&shared.telemetry);
    // The groups go once they are JSON: a poll waiting for the publisher holds only its
    // messages (≈200 KB), not the groups as well (≈130 KB more at 48 ports).
    let per_topic = messages(shared, plugin, groups)?;
    let locations = publish(shared, per_topic).await?;
    Ok(Published {
        status: status.and_then(|s| u8::try_from(s).ok()),
        interfaces,
        locations,
    })
}

/// Interfaces up (`oper_state` 1) and not, over the `interface` groups of a poll.
fn interface_states(groups: &[MetricsGroup]) -> Option<(u16, u16)> {
    let states: Vec<bool> = groups
        .iter()
        .filter(|g| g.metrics_group_type == crate::plugins::interface::polling::GROUP_TYPE)
        .filter_map(|g| g.metric("oper_state", MetricType::Gauge))
        .map(|m| m.metric_value == crate::model::MetricValue::Int(1))
        .collect();
    if states.is_empty() {
        return None;
    }
    let up = states.iter().filter(|u| **u).count();
    Some((
        u16::try_from(up).unwrap_or(u16::MAX),
        u16::try_from(states.len() - up).unwrap_or(u16::MAX),
    ))
}

/// The value of the polling-status gauge, whatever the plugin names it.
fn device_status(groups: &[MetricsGroup]) -> Option<i128> {
    groups
        .iter()
        .find(|g| g.metrics_group_type == "status")
        .and_then(|g| {
            g.metrics
                .iter()
                .find(|m| m.metric_type == MetricType::Gauge)
        })
        .map(|m| match m.metric_value {
            crate::model::MetricValue::Int(i) => i,
            crate::model::MetricValue::Float(f) => f as i128,
        })
}

/// Topics a group goes to: `<site>-processed` and `<site>-<suffix>` for `[topics]
/// processed` (site topic on), and the global topic (global topic on). Nothing goes to
/// `<site>-metrics`, as in the original.
pub fn topics_for(kafka: &KafkaSettings, plugin: &PluginConfig, site: &Site) -> Vec<String> {
    let mut topics = Vec::new();
    if kafka.publish_to_site_topic {
        topics.push(format!("{site}-processed"));
        for suffix in &plugin.processed_topics {
            let t = format!("{site}-{suffix}");
            if !topics.contains(&t) {
                topics.push(t);
            }
        }
    }
    if kafka.publish_to_global_topic && !topics.contains(&kafka.global_topic_name) {
        topics.push(kafka.global_topic_name.clone());
    }
    topics
}

/// Room a message's buffer has beyond the size of the message before it.
const MESSAGE_SLACK: usize = 256;

/// A poll's groups as messages, by topic.
fn messages(
    shared: &Shared,
    plugin: &PluginConfig,
    groups: Vec<(MetricsGroup, Option<String>)>,
) -> Result<Vec<(String, Vec<Message>)>, RunError> {
    let mut per_topic: Vec<(String, Vec<Message>)> = Vec::new();
    let json = |source| RunError::Json {
        what: "a metrics group",
        source,
    };
    // The resource's JSON and its topics, made once for the groups that share it (all of
    // a poll's).
    let mut resource: Option<(
        Arc<crate::model::Resource>,
        Box<serde_json::value::RawValue>,
        Vec<String>,
    )> = None;
    // Each group is written into a buffer the size of the one before and a little more: a
    // poll's groups are alike, so it seldom grows, and no copy is made at the exact size
    // (≈200 KB a poll; a buffer sized up front for the largest group took 8 KiB a message,
    // ≈65 MB/s more for the allocator at 10,000 devices).
    let mut room = 4096;
    for (g, partition_key) in groups {
        let (raw, topics) = match &resource {
            Some((r, raw, topics)) if Arc::ptr_eq(r, &g.resource) => (raw, topics),
            _ => {
                let raw = serde_json::value::to_raw_value(&g.resource).map_err(json)?;
                let topics = topics_for(&shared.settings.kafka, plugin, &g.resource.site);
                let (_, raw, topics) = resource.insert((g.resource.clone(), raw, topics));
                (&*raw, &*topics)
            }
        };
        let mut value = Vec::with_capacity(room + MESSAGE_SLACK);
        g.write_json(&mut value, raw).map_err(json)?;
        room = value.len();
        let message = Message {
            key: g.message_key(),
            partition_key: partition_key.unwrap_or_else(|| g.partition_key()),
            value,
        };
        // Copies only for the topics before the last (usually there is one).
        let mut message = Some(message);
        for (i, topic) in topics.iter().enumerate() {
            let message = if i + 1 < topics.len() {
                message.clone()
            } else {
                message.take()
            };
            let Some(message) = message else { break };
            match per_topic.iter_mut().find(|(t, _)| t == topic) {
                Some((_, list)) => list.push(message),
                None => per_topic.push((topic.clone(), vec![message])),
            }
        }
    }
    Ok(per_topic)
}

async fn publish(
    shared: &Arc<Shared>,
    per_topic: Vec<(String, Vec<Message>)>,
) -> Result<Vec<crate::fleet::Location>, RunError> {
    let counts: Vec<(String, usize)> = per_topic
        .iter()
        .map(|(t, m)| (t.clone(), m.len()))
        .collect();
    match shared.publisher.publish(per_topic).await {
        Ok(locations) => {
            for (topic, count) in &counts {
                MetricsGroupsPublished {
                    topic,
                    count: *count,
                }
                .emit(&shared.telemetry);
            }
            Ok(locations)
        }
        Err(e) => {
            for (topic, _) in &counts {
                PublishFailed { topic, error: &e }.emit(&shared.telemetry);
            }
            Err(e.into())
        }
    }
}
