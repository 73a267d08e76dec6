//! The polling-status metrics group every SNMP polling plugin appends (spec §2.4).

use std::collections::HashMap;
use std::time::Duration;

use crate::model::{Metric, MetricType, MetricValue, MetricsGroup, ModelError, Resource};

/// Device state as the original numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    Success = 0,
    AuthenticationFailure = 1,
    NetworkFailure = 2,
    Timeout = 3,
    PartialMetricFailure = 4,
    InternalFailure = 5,
    MissingMetrics = 6,
    PingFailure = 7,
    EnrichmentFailure = 8,
}

/// Tracks the status per component ("device", "interface", a metrics group name, ...).
#[derive(Debug, Default)]
pub struct StatusTracker {
    order: Vec<String>,
    status: HashMap<String, DeviceStatus>,
}

impl StatusTracker {
    fn set(&mut self, component: &str, status: DeviceStatus) {
        // A component already seen is updated in place (a poll sets each of them once per
        // interface: a new key string each time was ≈60 allocations a poll).
        if let Some(known) = self.status.get_mut(component) {
            *known = status;
            return;
        }
        self.order.push(component.to_string());
        self.status.insert(component.to_string(), status);
    }

    pub fn success(&mut self, component: &str) {
        let next = match self.status.get(component) {
            None | Some(DeviceStatus::Success) => DeviceStatus::Success,
            Some(_) => DeviceStatus::PartialMetricFailure,
        };
        self.set(component, next);
    }

    pub fn failure(&mut self, component: &str, status: DeviceStatus) {
        let next = match self.status.get(component) {
            Some(DeviceStatus::Success | DeviceStatus::PartialMetricFailure) => {
                DeviceStatus::PartialMetricFailure
            }
            _ => status,
        };
        self.set(component, next);
    }

    /// All success -> SUCCESS; some success -> PARTIAL; otherwise the most common status
    /// (ties: first recorded), as Python's Counter would pick.
    pub fn overall(&self) -> DeviceStatus {
        if self.order.is_empty() {
            return DeviceStatus::Success;
        }
        let all: Vec<DeviceStatus> = self
            .order
            .iter()
            .filter_map(|k| self.status.get(k).copied())
            .collect();
        if all.iter().all(|s| *s == DeviceStatus::Success) {
            return DeviceStatus::Success;
        }
        if all.contains(&DeviceStatus::Success) {
            return DeviceStatus::PartialMetricFailure;
        }
        let mut best = all[0];
        let mut best_count = 0;
        for s in &all {
            let count = all.iter().filter(|x| *x == s).count();
            if count > best_count {
                best = *s;
                best_count = count;
            }
        }
        best
    }

    /// The `status` metrics group with one gauge named by the plugin.
    pub fn group(
        &self,
        resource: &Resource,
        metric_name: &str,
        interval: u64,
        now: f64,
    ) -> Result<MetricsGroup, ModelError> {
        let mut g = MetricsGroup::new(resource.clone(), "status", interval, now)?;
        g.add_metric(Metric::new(
            metric_name,
            MetricValue::Int(self.overall() as i128),
            MetricType::Gauge,
            now,
        )?)?;
        Ok(g)
    }
}

impl DeviceStatus {
    /// Maps a plugin failure to the state the original reports for its error class.
    pub fn of_error(e: &super::PluginError) -> DeviceStatus {
        use crate::snmp::SnmpError;
        match e {
            super::PluginError::Snmp(SnmpError::Timeout { .. }) => DeviceStatus::Timeout,
            super::PluginError::Snmp(
                SnmpError::Network { .. } | SnmpError::InvalidAddress { .. },
            ) => DeviceStatus::NetworkFailure,
            super::PluginError::Enrichment(_) => DeviceStatus::EnrichmentFailure,
            // The agent refused who we said we were, or we had no credentials to say.
            super::PluginError::Snmp(
                SnmpError::UnknownUser { .. }
                | SnmpError::WrongAuth { .. }
                | SnmpError::WrongPriv { .. }
                | SnmpError::UnsupportedSecurityLevel { .. },
            )
            | super::PluginError::Credentials(_) => DeviceStatus::AuthenticationFailure,
            _ => DeviceStatus::InternalFailure,
        }
    }
}

pub use super::ping::{NoPing, Ping, SystemPing};

/// How long a device that timed out gets to answer one echo request.
pub const CONFIRM_DEADLINE: Duration = Duration::from_secs(2);

/// If the status group says TIMEOUT or NETWORK_FAILURE, pings the host and turns the
/// status into PING_FAILURE when it does not answer, or when the ping cannot be made at
/// all (spec §2.4; the original counts any ping error as a failure too).
pub async fn confirm_with_ping(groups: &mut [MetricsGroup], host: &str, ping: &dyn Ping) {
    let Some(metric) = groups
        .iter_mut()
        .filter(|g| g.metrics_group_type == "status")
        .flat_map(|g| g.metrics.iter_mut())
        .find(|m| m.metric_type == MetricType::Gauge)
    else {
        return;
    };
    let timeout = DeviceStatus::Timeout as i128;
    let network = DeviceStatus::NetworkFailure as i128;
    if !matches!(metric.metric_value, MetricValue::Int(v) if v == timeout || v == network) {
        return;
    }
    let unreachable = match ping.answers(host, CONFIRM_DEADLINE).await {
        Ok(answered) => !answered,
        Err(e) => {
            tracing::debug!(host, error = %e, "ping failed: PING_FAILURE");
            true
        }
    };
    if unreachable {
        metric.metric_value = MetricValue::Int(DeviceStatus::PingFailure as i128);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plugins::ping::{PingError, PingFuture, PingStats};

    struct Answers(Result<bool, PingError>);
    impl Ping for Answers {
        fn probe<'a>(&'a self, _: &'a str, _: u32, _: Duration) -> PingFuture<'a, PingStats> {
            Box::pin(async { Err(PingError::Disabled) })
        }
        fn answers<'a>(&'a self, _host: &'a str, _: Duration) -> PingFuture<'a, bool> {
            let r = self.0.clone();
            Box::pin(async move { r })
        }
    }

    #[tokio::test]
    async fn ping_turns_timeouts_into_ping_failures() {
        let resource = Resource::from_json(&serde_json::json!({"resource_site": "s",
            "resource_class": "c", "resource_subclass": "s", "resource_type": "t",
            "resource_id": "r", "resource_endpoint": "192.0.2.1", "resource_plugin": "p",
            "resource_creation_timestamp": 1.0, "resource_metadata": {}}))
        .unwrap();
        let status_of = |s: DeviceStatus| {
            let mut t = StatusTracker::default();
            t.failure("device", s);
            vec![t.group(&resource, "polling_status", 60, 1.0).unwrap()]
        };
        let value = |g: &[MetricsGroup]| g[0].metrics[0].metric_value;
        for (start, ping, end) in [
            (DeviceStatus::Timeout, Ok(false), DeviceStatus::PingFailure),
            (
                DeviceStatus::NetworkFailure,
                Err(PingError::Missing {
                    host: "192.0.2.1".into(),
                }),
                DeviceStatus::PingFailure,
            ),
            (DeviceStatus::Timeout, Ok(true), DeviceStatus::Timeout),
            (
                DeviceStatus::InternalFailure,
                Ok(false),
                DeviceStatus::InternalFailure,
            ),
        ] {
            let mut g = status_of(start);
            confirm_with_ping(&mut g, "192.0.2.1", &Answers(ping)).await;
            assert_eq!(value(&g), MetricValue::Int(end as i128), "{start:?}");
        }
    }

    #[test]
    fn overall_status_rules() {
        let mut t = StatusTracker::default();
        assert_eq!(t.overall(), DeviceStatus::Success);
        t.success("a");
        assert_eq!(t.overall(), DeviceStatus::Success);
        t.failure("b", DeviceStatus::Timeout);
        assert_eq!(t.overall(), DeviceStatus::PartialMetricFailure);
        let mut t = StatusTracker::default();
        t.failure("a", DeviceStatus::Timeout);
        t.failure("b", DeviceStatus::EnrichmentFailure);
        t.failure("c", DeviceStatus::EnrichmentFailure);
        assert_eq!(t.overall(), DeviceStatus::EnrichmentFailure);
        let mut t = StatusTracker::default();
        t.failure("a", DeviceStatus::Timeout);
        t.failure("b", DeviceStatus::EnrichmentFailure);
        assert_eq!(
            t.overall(),
            DeviceStatus::Timeout,
            "ties go to the first recorded"
        );
        t.success("a");
        assert_eq!(t.status["a"], DeviceStatus::PartialMetricFailure);
    }
}
