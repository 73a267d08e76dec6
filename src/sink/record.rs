//! What the encoder reads from a topic record: the parts of a metrics group the InfluxDB
//! mapping uses, borrowed from the JSON bytes where possible.
//!
//! The original transformed the raw record dict without validating it, so this view
//! checks only what the mapping needs: a record the original could transform, this can;
//! one it failed on (a missing key, a dimension value that is not a string) is an error
//! here too. Other keys are ignored.

use std::borrow::Cow;

use serde::Deserialize;

use crate::model::{MetricValue, MetricsGroup};

#[derive(Debug, Deserialize)]
pub struct GroupRecord<'a> {
    #[serde(borrow)]
    pub metrics_group_type: Cow<'a, str>,
    pub metrics_group_creation_timestamp: f64,
    #[serde(borrow)]
    pub resource: ResourceRecord<'a>,
    #[serde(borrow)]
    pub metrics: Vec<MetricRecord<'a>>,
    #[serde(borrow)]
    pub dimensions: Vec<DimensionRecord<'a>>,
}

/// The resource fields that become tags (`resource_id` is not one).
#[derive(Debug, Deserialize)]
pub struct ResourceRecord<'a> {
    #[serde(borrow)]
    pub resource_class: Cow<'a, str>,
    #[serde(borrow)]
    pub resource_subclass: Cow<'a, str>,
    #[serde(borrow)]
    pub resource_type: Cow<'a, str>,
    #[serde(borrow)]
    pub resource_endpoint: Cow<'a, str>,
    #[serde(borrow)]
    pub resource_site: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct MetricRecord<'a> {
    #[serde(borrow)]
    pub metric_name: Cow<'a, str>,
    /// Any string: types other than `gauge` and `counter` are left out of the point.
    #[serde(borrow)]
    pub metric_type: Cow<'a, str>,
    pub metric_value: MetricValue,
}

#[derive(Debug, Deserialize)]
pub struct DimensionRecord<'a> {
    #[serde(borrow)]
    pub dimension_name: Cow<'a, str>,
    #[serde(borrow)]
    pub dimension_value: Cow<'a, str>,
}

impl<'a> GroupRecord<'a> {
    /// Reads one record value (metrics group JSON).
    pub fn parse(json: &'a [u8]) -> Result<GroupRecord<'a>, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// A view of a metrics group held in memory (no JSON round trip).
    pub fn of(group: &'a MetricsGroup) -> GroupRecord<'a> {
        let r = &group.resource;
        GroupRecord {
            metrics_group_type: Cow::Borrowed(&group.metrics_group_type),
            metrics_group_creation_timestamp: group.metrics_group_creation_timestamp,
            resource: ResourceRecord {
                resource_class: Cow::Borrowed(&r.class),
                resource_subclass: Cow::Borrowed(&r.subclass),
                resource_type: Cow::Borrowed(&r.kind),
                resource_endpoint: Cow::Borrowed(&r.endpoint),
                resource_site: Cow::Borrowed(&r.site),
            },
            metrics: group
                .metrics
                .iter()
                .map(|m| MetricRecord {
                    metric_name: Cow::Borrowed(&m.metric_name),
                    metric_type: Cow::Borrowed(m.metric_type.as_str()),
                    metric_value: m.metric_value,
                })
                .collect(),
            dimensions: group
                .dimensions
                .iter()
                .map(|d| DimensionRecord {
                    dimension_name: Cow::Borrowed(&d.dimension_name),
                    dimension_value: Cow::Borrowed(&d.dimension_value),
                })
                .collect(),
        }
    }
}
