//! device_polling/*: the original's hand-written Arista and ASR device-metrics polling
//! plugins. Each case's recording is served by our simulator (frozen counters), the
//! plugin run once through the runner as the node runs it, and the output compared with
//! expected.json order-insensitively after removing the creation timestamps, as the
//! generic_polling cases do. The recordings are then altered to walk the failure paths:
//! a dead agent, missing rows and sections, other execute_frequency values.

mod replay;

use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::{canonical, MetricsGroup};
use panoptes::plugins::device_polling::{arista, asr, Outcome};
use panoptes::plugins::enrichment_cache::MapSource;
use panoptes::plugins::runner::{self, RunContext};
use panoptes::plugins::status::{DeviceStatus, NoPing};
use panoptes::plugins::{BuiltIn, PluginError};
use panoptes::simulate::{
    CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig, SimulatorHandle,
};
use panoptes::snmp::{Community, SnmpClient, SnmpTarget};
use replay::{case, strip_volatile, test_resource, FROZEN};
use serde_json::Value;

fn plugin(dir: &str) -> PluginConfig {
    PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Polling).unwrap()
}

fn recording(dir: &str) -> String {
    std::fs::read_to_string(case(&format!("{dir}/device.snmprec"))).unwrap()
}

/// Serves a recording given as text (the case's, altered by a test).
async fn serve_text(text: &str) -> SimulatorHandle {
    let recording = Arc::new(Recording::parse(text, "altered").unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap()
}

fn target(port: u16, timeout: Duration) -> SnmpTarget {
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = port;
    target.timeout = timeout;
    target.retries = 0;
    target
}

/// Runs a plugin through the runner against an agent on `port`.
async fn run(plugin: &PluginConfig, port: u16) -> Result<Vec<MetricsGroup>, PluginError> {
    let resource = test_resource();
    let builtin = BuiltIn::resolve(plugin).map_err(|e| PluginError::Config(e.to_string()))?;
    runner::poll(RunContext {
        plugin,
        builtin,
        resource: &resource,
        target: Ok(target(port, Duration::from_secs(5))),
        enrichments: &MapSource::default(),
        ping: &NoPing,
        now: FROZEN,
    })
    .await
    .map(|polled| polled.groups)
}

fn json(groups: &[MetricsGroup]) -> Value {
    let mut v = serde_json::to_value(groups).unwrap();
    strip_volatile(&mut v);
    canonical(&v)
}

async fn check_case(dir: &str) {
    let sim = serve_text(&recording(dir)).await;
    let groups = run(&plugin(dir), sim.local_addrs()[0].port())
        .await
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
    let actual = json(&groups);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    let expected = canonical(&expected);
    replay::assert_same_groups(dir, &actual, &expected);
}

#[tokio::test]
async fn arista() {
    check_case("device_polling/arista").await;
}

#[tokio::test]
async fn asr() {
    check_case("device_polling/asr").await;
}

/// The status gauge of a poll: (metric name, value).
fn status(groups: &[MetricsGroup]) -> (String, i128) {
    let g = groups
        .iter()
        .find(|g| g.metrics_group_type == "status")
        .expect("a status group");
    let m = &g.metrics[0];
    match m.metric_value {
        panoptes::model::MetricValue::Int(v) => (m.metric_name.to_string(), v),
        other => panic!("status is {other:?}"),
    }
}

/// Groups of a type, as (dimensions, metrics) text, sorted.
fn of_type(groups: &[MetricsGroup], kind: &str) -> Vec<String> {
    let mut out: Vec<String> = groups
        .iter()
        .filter(|g| g.metrics_group_type == kind)
        .map(|g| {
            let mut dims: Vec<String> = g
                .dimensions
                .iter()
                .map(|d| format!("{}={}", d.dimension_name, d.dimension_value))
                .collect();
            dims.sort();
            let mut metrics: Vec<String> = g
                .metrics
                .iter()
                .map(|m| format!("{}={}", m.metric_name, m.metric_value))
                .collect();
            metrics.sort();
            format!("{} {}", dims.join(","), metrics.join(","))
        })
        .collect();
    out.sort();
    out
}

/// The recording without the lines whose OID starts with any of `prefixes`, plus `extra`.
fn altered(dir: &str, prefixes: &[&str], extra: &[&str]) -> String {
    let mut lines: Vec<String> = recording(dir)
        .lines()
        .filter(|l| {
            !prefixes
                .iter()
                .any(|p| l.starts_with(&format!("{p}|")) || l.starts_with(&format!("{p}.")))
        })
        .map(str::to_string)
        .collect();
    lines.extend(extra.iter().map(|l| l.to_string()));
    // The simulator wants the OIDs in order.
    lines.sort_by_key(|l| {
        l.split('|')
            .next()
            .unwrap()
            .split('.')
            .map(|a| a.parse::<u64>().unwrap())
            .collect::<Vec<_>>()
    });
    lines.join("\n")
}

async fn arista_outcome(text: &str) -> Outcome {
    let sim = serve_text(text).await;
    let mut client =
        SnmpClient::connect(&target(sim.local_addrs()[0].port(), Duration::from_secs(5)))
            .await
            .unwrap();
    let options = arista::Options::from_plugin(&plugin("device_polling/arista"));
    arista::poll(Ok(&mut client), &test_resource(), &options, FROZEN)
        .await
        .unwrap()
}

async fn asr_outcome(text: &str, frequency: u64) -> Outcome {
    let sim = serve_text(text).await;
    let mut client =
        SnmpClient::connect(&target(sim.local_addrs()[0].port(), Duration::from_secs(5)))
            .await
            .unwrap();
    let mut p = plugin("device_polling/asr");
    p.execute_frequency = frequency;
    let options = asr::Options::from_plugin(&p).unwrap();
    asr::poll(Ok(&mut client), &test_resource(), &options, FROZEN)
        .await
        .unwrap()
}

/// (section, status, message) of every failure, in order.
fn failures(o: &Outcome) -> Vec<(&'static str, DeviceStatus, String)> {
    o.failures
        .iter()
        .map(|f| (f.section, f.error.status(), f.error.to_string()))
        .collect()
}

/// A device that never answers: one request waits out the timeout, every later one is
/// not sent, and only the status group comes out, TIMEOUT (the ping check answers).
#[tokio::test]
async fn a_dead_agent_gives_only_a_timeout_status() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    for (dir, metric) in [
        ("device_polling/arista", "status"),
        ("device_polling/asr", "polling_status"),
    ] {
        let p = plugin(dir);
        let resource = test_resource();
        let started = Instant::now();
        let polled = runner::poll(RunContext {
            plugin: &p,
            builtin: BuiltIn::resolve(&p).unwrap(),
            resource: &resource,
            target: Ok(target(port, Duration::from_millis(300))),
            enrichments: &MapSource::default(),
            ping: &NoPing,
            now: FROZEN,
        })
        .await
        .unwrap();
        assert_eq!(polled.groups.len(), 1, "{dir}: only the status group");
        assert_eq!(status(&polled.groups), (metric.to_string(), 3), "{dir}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{dir}: one timeout, not one per request ({:?})",
            started.elapsed()
        );
    }

    // What the log says: the first walk timed out, later requests were not sent.
    let mut client = SnmpClient::connect(&target(port, Duration::from_millis(300)))
        .await
        .unwrap();
    let options = arista::Options::from_plugin(&plugin("device_polling/arista"));
    let o = arista::poll(Ok(&mut client), &test_resource(), &options, FROZEN)
        .await
        .unwrap();
    let f = failures(&o);
    let sections: Vec<&str> = f.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        sections,
        [
            "cpu",
            "memory",
            "environment",
            "environment",
            "environment",
            "storage"
        ]
    );
    assert!(
        f.iter().all(|(_, s, _)| *s == DeviceStatus::Timeout),
        "{f:#?}"
    );
    assert!(
        f[0].2.starts_with(
            "walk of hrProcessorLoad (.1.3.6.1.2.1.25.3.3.1.2) failed: SNMP request to 127.0.0.1:"
        ) && f[0].2.contains("timed out"),
        "{}",
        f[0].2
    );
    assert!(
        f[1].2.starts_with("walk of hrStorageEntry (.1.3.6.1.2.1.25.2.3.1) not sent: walk of hrProcessorLoad failed earlier: SNMP request to"),
        "{}",
        f[1].2
    );
}

/// No SNMP session at all (an unusable target): the `device` key fails and only the
/// status group comes out.
#[tokio::test]
async fn no_session_gives_only_the_status_group() {
    let p = plugin("device_polling/asr");
    let resource = test_resource();
    let polled = runner::poll(RunContext {
        plugin: &p,
        builtin: BuiltIn::resolve(&p).unwrap(),
        resource: &resource,
        target: Err(PluginError::Config(
            "metadata snmp_port `x` is not a port number".into(),
        )),
        enrichments: &MapSource::default(),
        ping: &NoPing,
        now: FROZEN,
    })
    .await
    .unwrap();
    assert_eq!(polled.groups.len(), 1);
    assert_eq!(status(&polled.groups), ("polling_status".to_string(), 5));

    let options = asr::Options::from_plugin(&p).unwrap();
    let o = asr::poll(
        Err(PluginError::Config("no community".into())),
        &resource,
        &options,
        FROZEN,
    )
    .await
    .unwrap();
    assert_eq!(
        failures(&o),
        [(
            "device",
            DeviceStatus::InternalFailure,
            "no SNMP session: no community".to_string()
        )]
    );
}

/// The Arista status gauge is `status` even when the file names another: the original
/// never reads `polling_status_metric_name`.
#[tokio::test]
async fn arista_ignores_polling_status_metric_name() {
    let mut p = plugin("device_polling/arista");
    p.sections
        .entry("main".into())
        .or_default()
        .insert("polling_status_metric_name".into(), "polling_status".into());
    let sim = serve_text(&recording("device_polling/arista")).await;
    let groups = run(&p, sim.local_addrs()[0].port()).await.unwrap();
    assert_eq!(status(&groups), ("status".to_string(), 0));
}

/// ASR without `polling_status_metric_name`: refused when the plugin file is loaded and
/// by the runner, before any request.
#[tokio::test]
async fn asr_requires_polling_status_metric_name() {
    let mut p = plugin("device_polling/asr");
    p.sections
        .get_mut("main")
        .unwrap()
        .remove("polling_status_metric_name");
    let err = BuiltIn::resolve(&p).unwrap_err().to_string();
    assert!(
        err.ends_with("plugin.conf: [main] polling_status_metric_name: required by plugin_polling_asr_device_metrics: the name of its status gauge (e.g. polling_status)"),
        "{err}"
    );
    let resource = test_resource();
    let err = runner::poll(RunContext {
        plugin: &p,
        builtin: BuiltIn::AsrDevicePolling,
        resource: &resource,
        // Nothing listens here: an attempt to poll would time out, not fail at once.
        target: Ok(target(9, Duration::from_secs(5))),
        enrichments: &MapSource::default(),
        ping: &NoPing,
        now: FROZEN,
    })
    .await
    .unwrap_err();
    assert!(matches!(err, PluginError::Config(_)), "{err}");
    assert!(
        err.to_string()
            .contains("polling_status_metric_name: required"),
        "{err}"
    );

    p.sections.get_mut("main").unwrap().insert(
        "polling_status_metric_name".into(),
        "\"polling status\"".into(),
    );
    let err = BuiltIn::resolve(&p).unwrap_err().to_string();
    assert!(
        err.contains("`\"polling status\"` is not a metric name"),
        "{err}"
    );
}

/// No hrProcessorLoad rows: `cpu` is MISSING_METRICS, the other sections still report.
#[tokio::test]
async fn arista_without_processor_loads_misses_cpu() {
    let o = arista_outcome(&altered(
        "device_polling/arista",
        &["1.3.6.1.2.1.25.3.3.1.2"],
        &[],
    ))
    .await;
    assert_eq!(
        failures(&o),
        [(
            "cpu",
            DeviceStatus::MissingMetrics,
            "walk of hrProcessorLoad (.1.3.6.1.2.1.25.3.3.1.2) returned no rows".to_string()
        )]
    );
    assert!(of_type(&o.groups, "cpu").is_empty());
    assert_eq!(of_type(&o.groups, "memory").len(), 1);
    assert_eq!(status(&o.groups), ("status".to_string(), 4));
}

/// A core without its hrDeviceDescr drops every core (the original pops them all).
#[tokio::test]
async fn arista_core_without_description_drops_all_cores() {
    let o = arista_outcome(&altered(
        "device_polling/arista",
        &["1.3.6.1.2.1.25.3.2.1.3.4"],
        &[],
    ))
    .await;
    assert_eq!(
        failures(&o),
        [(
            "cpu",
            DeviceStatus::InternalFailure,
            "hrDeviceDescr.4 (.1.3.6.1.2.1.25.3.2.1.3.4) is not in the walk of hrDeviceDescr"
                .to_string()
        )]
    );
    assert!(of_type(&o.groups, "cpu").is_empty());
}

/// A power supply without its input-current sensor fails the power part only: the
/// temperatures and fans still report, `environment` is PARTIAL.
#[tokio::test]
async fn arista_power_supply_without_current_sensor() {
    let o = arista_outcome(&altered(
        "device_polling/arista",
        &["1.3.6.1.2.1.99.1.1.1.4.100602212"],
        &[],
    ))
    .await;
    assert_eq!(
        failures(&o),
        [(
            "environment",
            DeviceStatus::InternalFailure,
            "entPhySensorValue.100602212 (.1.3.6.1.2.1.99.1.1.1.4.100602212) is not in the walk of entPhySensorEntry".to_string()
        )]
    );
    let env = of_type(&o.groups, "environment");
    assert_eq!(env.len(), 6, "{env:#?}");
    assert!(env.iter().all(|g| !g.contains("power_units")), "{env:#?}");
    assert!(
        env.contains(&" fans_ok=3,fans_total=4".to_string()),
        "{env:#?}"
    );
    assert_eq!(status(&o.groups), ("status".to_string(), 4));
}

/// An unreadable temperature leaves its sensor without a value: the groups before it are
/// out, the builder stops there (the original's KeyError), and the section is PARTIAL.
#[tokio::test]
async fn arista_unreadable_temperature_stops_the_temperatures() {
    let o = arista_outcome(&altered(
        "device_polling/arista",
        &["1.3.6.1.2.1.99.1.1.1.2.100006003"],
        &["1.3.6.1.2.1.99.1.1.1.2.100006003|4|milli"],
    ))
    .await;
    let f = failures(&o);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(
        f[0].2,
        "entPhySensorScale.100006003 (.1.3.6.1.2.1.99.1.1.1.2.100006003) is `milli`, not an integer"
    );
    assert_eq!(
        f[1].2,
        "temperature sensor 100006003 (`VRM 1 temp sensor`): its reading failed, so it has no temperature"
    );
    let temps: Vec<String> = of_type(&o.groups, "environment")
        .into_iter()
        .filter(|g| g.contains("temperature"))
        .collect();
    // Walk order: Cpu, Front-panel, then VRM 1 stops the loop.
    assert_eq!(
        temps,
        [
            "sensor=Cpu temp sensor temperature_fahrenheit=122.54",
            "sensor=Front-panel temp sensor temperature_fahrenheit=83.66"
        ]
    );
    // Two temperature groups, then the failure, then power and fans: PARTIAL.
    assert_eq!(status(&o.groups), ("status".to_string(), 4));
}

/// Storage rows whose type is neither flash nor virtual memory by exact value fail the
/// section after the row was entered: its builder stops there.
#[tokio::test]
async fn arista_storage_type_must_be_exact() {
    let o = arista_outcome(&altered(
        "device_polling/arista",
        &["1.3.6.1.2.1.25.2.3.1.2.10"],
        &["1.3.6.1.2.1.25.2.3.1.2.10|6|1.3.6.1.2.1.25.2.1.30"],
    ))
    .await;
    assert_eq!(
        failures(&o)
            .iter()
            .map(|(s, _, m)| (*s, m.as_str()))
            .collect::<Vec<_>>(),
        [
            ("storage", "hrStorageType.10 is `.1.3.6.1.2.1.25.2.1.30`: neither hrStorageFlashMemory nor hrStorageVirtualMemory"),
            ("storage", "storage `Swap space`: reading its hrStorage row failed"),
        ]
    );
    assert_eq!(
        of_type(&o.groups, "storage"),
        ["storage_entity=Flash,storage_type=flash storage_total=4095959040,storage_used=1502085120"]
    );
}

/// The CPU column and the intervals follow execute_frequency: the exact rows read show
/// in the values (see the recording: each interval row holds different numbers).
#[tokio::test]
async fn asr_frequency_picks_oids_and_intervals() {
    let text = recording("device_polling/asr");
    // 30 s: cpmCPUTotalMonIntervalValue, crypto interval 2, QFP interval 1.
    let o = asr_outcome(&text, 30).await;
    assert_eq!(
        of_type(&o.groups, "cpu"),
        [
            "cpu_name=Crypto Asic F0/0,cpu_no=9028,cpu_type=data cpu_utilization=3",
            "cpu_name=module 0,cpu_no=2,cpu_type=ctrl cpu_utilization=1",
            "cpu_name=module F0,cpu_no=9000,cpu_type=ctrl cpu_utilization=14",
            "cpu_name=module R0,cpu_no=7000,cpu_type=ctrl cpu_utilization=9",
        ]
    );
    assert_eq!(
        of_type(&o.groups, "crypto"),
        ["cpu_name=Crypto Asic F0/0,cpu_no=9028 packets_in=982311044,packets_out=977120871"]
    );
    assert_eq!(of_type(&o.groups, "load"), [" processing_load=9"]);

    // 120 s: cpmCPUTotal1minRev, crypto interval 3, QFP interval 2.
    let o = asr_outcome(&text, 120).await;
    assert_eq!(
        of_type(&o.groups, "cpu"),
        [
            "cpu_name=Crypto Asic F0/0,cpu_no=9028,cpu_type=data cpu_utilization=3",
            "cpu_name=module 0,cpu_no=2,cpu_type=ctrl cpu_utilization=2",
            "cpu_name=module F0,cpu_no=9000,cpu_type=ctrl cpu_utilization=12",
            "cpu_name=module R0,cpu_no=7000,cpu_type=ctrl cpu_utilization=7",
        ]
    );
    assert_eq!(
        of_type(&o.groups, "crypto"),
        ["cpu_name=Crypto Asic F0/0,cpu_no=9028 packets_in=982240115,packets_out=977050012"]
    );
    assert_eq!(of_type(&o.groups, "load"), [" processing_load=11"]);

    // 600 s: cpmCPUTotal5minRev, crypto interval 4 (not recorded), QFP interval 3. The
    // data CPU and the crypto counters are missing (the simulator, as snmpsim, answers
    // noSuchObject for any OID it does not hold): not integers.
    let o = asr_outcome(&text, 600).await;
    assert_eq!(
        of_type(&o.groups, "cpu"),
        [
            "cpu_name=module 0,cpu_no=2,cpu_type=ctrl cpu_utilization=2",
            "cpu_name=module F0,cpu_no=9000,cpu_type=ctrl cpu_utilization=11",
            "cpu_name=module R0,cpu_no=7000,cpu_type=ctrl cpu_utilization=6",
        ]
    );
    assert!(of_type(&o.groups, "crypto").is_empty());
    assert_eq!(of_type(&o.groups, "load"), [" processing_load=10"]);
    let f = failures(&o);
    assert!(f.contains(&(
        "cpu",
        DeviceStatus::InternalFailure,
        "cepStatsMeasurement.9028.4.1 (.1.3.6.1.4.1.9.9.756.1.3.1.2.9028.4.1) is `NOSUCHOBJECT`, not an integer".to_string()
    )), "{f:#?}");
    assert!(
        f.contains(&(
            "crypto",
            DeviceStatus::InternalFailure,
            "crypto engine 9028: reading its packet counters failed".to_string()
        )),
        "{f:#?}"
    );
}

/// The case's memory failure: the hard-coded pool 7000.1 is not on this device (the
/// original's fake session answered NOSUCHINSTANCE; our simulator says noSuchObject, the
/// same ValueError either way).
#[tokio::test]
async fn asr_dram_pool_is_hard_coded() {
    let o = asr_outcome(&recording("device_polling/asr"), 60).await;
    assert_eq!(
        failures(&o),
        [(
            "memory",
            DeviceStatus::InternalFailure,
            "cempMemPoolHCUsed.7000.1 (.1.3.6.1.4.1.9.9.221.1.1.1.1.18.7000.1) is `NOSUCHOBJECT`, not an integer".to_string()
        )]
    );
    // With the pool there, both groups come out.
    let o = asr_outcome(
        &altered(
            "device_polling/asr",
            &[],
            &[
                "1.3.6.1.4.1.9.9.221.1.1.1.1.18.7000.1|70|600",
                "1.3.6.1.4.1.9.9.221.1.1.1.1.20.7000.1|70|400",
            ],
        ),
        60,
    )
    .await;
    assert!(o.failures.is_empty(), "{:#?}", o.failures);
    assert_eq!(
        of_type(&o.groups, "memory"),
        [
            "memory_type=dram memory_total=1000,memory_used=600",
            "memory_type=qfp memory_total=4294967296,memory_used=438910976"
        ]
    );
    assert_eq!(status(&o.groups), ("polling_status".to_string(), 0));
}

/// Without a QFP entity the dram group still comes out, then the builder fails on the
/// empty QFP entry (memory INTERNAL_FAILURE), and `load` fails on the empty match.
#[tokio::test]
async fn asr_without_qfp() {
    let o = asr_outcome(
        &altered(
            "device_polling/asr",
            &[
                "1.3.6.1.2.1.47.1.1.1.1.2.9027",
                "1.3.6.1.2.1.47.1.1.1.1.4.9027",
                "1.3.6.1.2.1.47.1.1.1.1.5.9027",
                "1.3.6.1.2.1.47.1.1.1.1.7.9027",
            ],
            &[
                "1.3.6.1.4.1.9.9.221.1.1.1.1.18.7000.1|70|600",
                "1.3.6.1.4.1.9.9.221.1.1.1.1.20.7000.1|70|400",
            ],
        ),
        60,
    )
    .await;
    assert_eq!(
        of_type(&o.groups, "memory"),
        ["memory_type=dram memory_total=1000,memory_used=600"]
    );
    assert!(of_type(&o.groups, "load").is_empty());
    assert_eq!(
        failures(&o),
        [
            (
                "memory",
                DeviceStatus::InternalFailure,
                "memory_type qfp: no entity of class cpu has `qfp` or `QFP` in any entPhysicalEntry column, so there is no QFP memory to report".to_string()
            ),
            (
                "load",
                DeviceStatus::InternalFailure,
                "no entity of class cpu has `qfp` or `QFP` in any entPhysicalEntry column".to_string()
            ),
        ]
    );
}

/// A temperature sensor that is not celsius stops the temperature groups where the
/// builder reaches it (walk order), and the section is PARTIAL.
#[tokio::test]
async fn asr_non_celsius_temperature_sensor() {
    let o = asr_outcome(
        &altered(
            "device_polling/asr",
            &["1.3.6.1.4.1.9.9.91.1.1.1.1.1.7003"],
            &["1.3.6.1.4.1.9.9.91.1.1.1.1.1.7003|2|4"],
        ),
        60,
    )
    .await;
    assert_eq!(
        of_type(&o.groups, "environment"),
        [
            " power_units_on=1,power_units_total=2",
            "entity_name=Temp: Inlet R0 temperature_fahrenheit=80.6",
            "entity_name=subslot 0/0 transceiver 0 Temperature Sensor temperature_fahrenheit=93.2",
        ]
    );
    assert_eq!(
        failures(&o)
            .into_iter()
            .filter(|(s, _, _)| *s == "environment")
            .map(|(_, _, m)| m)
            .collect::<Vec<_>>(),
        ["temperature sensor 7003 (`Temp: CPU R0`): entSensorType is 4, not celsius(8): no temperature"]
    );
}

/// Crypto counters keep their SNMP width for the rate transform.
#[tokio::test]
async fn asr_crypto_counters_are_counter64() {
    let o = asr_outcome(&recording("device_polling/asr"), 60).await;
    let crypto = o
        .groups
        .iter()
        .find(|g| g.metrics_group_type == "crypto")
        .unwrap();
    for m in &crypto.metrics {
        assert_eq!(m.metric_type, panoptes::model::MetricType::Counter);
        assert_eq!(
            m.counter_width,
            panoptes::model::CounterWidth::Bits64,
            "{}",
            m.metric_name
        );
    }
}
