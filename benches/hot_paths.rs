//! Micro-benchmarks of the per-poll hot paths: building and serialising metrics groups,
//! the rate transform, the resource filter, and the Kafka partitioner.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use panoptes::bus::partition_for;
use panoptes::config::TransformSpec;
use panoptes::filter::ResourceFilter;
use panoptes::model::{
    CreationTimestamp, Dimension, Metric, MetricType, MetricValue, MetricsGroup, Resource,
};
use panoptes::transform::{apply_transforms, MemoryRateState, TransformReport};

fn resource() -> Resource {
    let mut r = Resource::new(
        "local",
        "network",
        "switch",
        "generic",
        "sw1",
        "127.0.0.1",
        Some("p"),
        CreationTimestamp::Number(1.0),
        900,
    )
    .unwrap();
    r.add_metadata("model", "sim-switch-48").unwrap();
    r
}

const COUNTERS: [&str; 17] = [
    "bits_in",
    "bits_out",
    "total_packets_in",
    "total_packets_out",
    "unicast_packets_in",
    "unicast_packets_out",
    "multicast_packets_in",
    "multicast_packets_out",
    "broadcast_packets_in",
    "broadcast_packets_out",
    "errors_in",
    "errors_out",
    "discards_in",
    "discards_out",
    "errors_frame",
    "errors_crc",
    "errors_giants",
];

/// One interface group as interface polling builds it.
fn interface_group(index: usize, ts: f64, base: i128) -> MetricsGroup {
    let mut g = MetricsGroup::new(resource(), "interface", 60, ts).unwrap();
    for (i, name) in COUNTERS.iter().enumerate() {
        let v = MetricValue::Int(base + (i as i128) * 1000 + index as i128);
        g.add_metric(Metric::new(name, v, MetricType::Counter, ts).unwrap())
            .unwrap();
    }
    for name in [
        "admin_state",
        "oper_state",
        "mtu",
        "configured_speed",
        "oper_admin_state_mismatch",
    ] {
        g.add_metric(Metric::new(name, MetricValue::Int(1), MetricType::Gauge, ts).unwrap())
            .unwrap();
    }
    for name in [
        "alias",
        "media_type",
        "description",
        "interface_name",
        "port_speed",
    ] {
        g.add_dimension(Dimension::new(name, &format!("{name}-{index}")).unwrap())
            .unwrap();
    }
    g
}

fn model(c: &mut Criterion) {
    c.bench_function("build 48 interface groups", |b| {
        b.iter(|| {
            (0..48)
                .map(|i| interface_group(i, 1000.0, 1 << 40))
                .collect::<Vec<_>>()
        })
    });
    let groups: Vec<MetricsGroup> = (0..48)
        .map(|i| interface_group(i, 1000.0, 1 << 40))
        .collect();
    c.bench_function("serialise 48 interface groups to JSON", |b| {
        b.iter(|| {
            groups
                .iter()
                .map(|g| serde_json::to_vec(g).unwrap())
                .collect::<Vec<_>>()
        })
    });
    let text = serde_json::to_value(&groups[0]).unwrap();
    c.bench_function("parse and validate one interface group", |b| {
        b.iter(|| MetricsGroup::from_json(black_box(&text)).unwrap())
    });
}

fn rate(c: &mut Criterion) {
    let spec = vec![TransformSpec {
        name: "interface".into(),
        kind: "rate".into(),
        group_type: "interface".into(),
        inputs: COUNTERS.iter().map(|s| s.to_string()).collect(),
    }];
    let state = MemoryRateState::default();
    let mut report = TransformReport::default();
    let t = 1000.0;
    apply_transforms(
        &spec,
        (0..48).map(|i| interface_group(i, t, 0)).collect(),
        &state,
        t,
        None,
        &mut report,
    );
    let clock = std::cell::Cell::new(t);
    c.bench_function("rate transform, 48 interfaces x 17 counters", |b| {
        b.iter_batched(
            || {
                clock.set(clock.get() + 60.0);
                let now = clock.get();
                (0..48)
                    .map(|i| interface_group(i, now, (now as i128) * 1000))
                    .collect::<Vec<_>>()
            },
            |groups| apply_transforms(&spec, groups, &state, clock.get(), None, &mut report),
            criterion::BatchSize::SmallInput,
        )
    });
}

fn filter_and_partition(c: &mut Criterion) {
    let f = ResourceFilter::parse(
        r#"resource_class = "network" AND resource_type IN ("generic", "cisco") AND resource_metadata.model LIKE "sim%""#,
    )
    .unwrap();
    let r = resource();
    c.bench_function("resource filter match", |b| {
        b.iter(|| f.matches(black_box(&r)))
    });
    let key = interface_group(7, 1.0, 0).partition_key();
    c.bench_function("murmur2 partition of a metrics group key", |b| {
        b.iter(|| partition_for(black_box(key.as_bytes()), 12))
    });
}

criterion_group!(benches, model, rate, filter_and_partition);
criterion_main!(benches);
