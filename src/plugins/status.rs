//! The polling-status metrics group every SNMP polling plugin appends (spec §2.4).

use std::collections::HashMap;

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
        if !self.status.contains_key(component) {
            self.order.push(component.to_string());
        }
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
            _ => DeviceStatus::InternalFailure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
