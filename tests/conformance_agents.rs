//! discovery/from_json_file, resource_manager/reconcile and kafka_topics/site_and_global:
//! the agents' behaviour on the original's inputs.

use std::path::PathBuf;

use panoptes::agent::polling::topics_for;
use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::{canonical, ResourceSet};
use panoptes::plugins::discovery_json::discover;
use panoptes::resource_manager::ResourceStore;
use panoptes_storage::Store;
use serde_json::Value;

fn case(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(rel)
}

fn load(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(case(rel)).unwrap()).unwrap()
}

const FROZEN: f64 = 1512629517.03121;

#[test]
fn discovery_from_json_file_matches_results() {
    let (set, rejected) = discover(&case("discovery/from_json_file/test.json"), FROZEN).unwrap();
    assert!(rejected.is_empty());
    assert_eq!(
        canonical(&serde_json::to_value(&set).unwrap()),
        canonical(&load("discovery/from_json_file/results.json"))
    );
}

#[test]
fn discovery_skips_bad_entries_and_fails_without_good_ones() {
    let count = |f: &str| {
        discover(&case(&format!("discovery/from_json_file/{f}")), FROZEN)
            .map(|(s, r)| (s.resources.len(), r.len()))
    };
    assert_eq!(count("one_bad_resource.json").unwrap(), (2, 1));
    assert_eq!(count("one_bad_resource_in_middle.json").unwrap(), (3, 1));
    let e = count("bad.json").unwrap_err().to_string();
    assert!(
        e.contains("bad.json") && e.contains("not valid JSON"),
        "{e}"
    );
    let e = count("bad_resource.json").unwrap_err().to_string();
    assert!(e.contains("no valid resource"), "{e}");
    let e = count("does-not-exist.json").unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read ")
            && e.contains("discovery/from_json_file/does-not-exist.json: "),
        "{e}"
    );
}

fn reconcile(files: &[&str]) -> ResourceStore {
    let store = ResourceStore::new(Store::temporary().unwrap().keyspace("resources").unwrap());
    for f in files {
        let set =
            ResourceSet::from_json(&load(&format!("resource_manager/reconcile/{f}.json"))).unwrap();
        store.reconcile("key:foo:foo", &set).unwrap();
    }
    store
}

#[test]
fn resource_manager_reconcile_matches_the_readme() {
    let all = |files: &[&str]| reconcile(files).all().unwrap();
    assert_eq!(all(&["resource_one"]).len(), 1);
    let newer = all(&["resource_one", "resource_one_updated"]);
    assert_eq!(newer.len(), 1);
    assert_eq!(newer[0].creation_timestamp.seconds(), 1526331464.49);
    let kept = all(&["resource_one_updated", "resource_one"]);
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].creation_timestamp.seconds(),
        1526331464.49,
        "an older set does not overwrite"
    );
    let replaced = all(&["resource_one", "resource_two"]);
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].id, "test_id_2");
}

#[test]
fn kafka_topics_site_only_and_site_and_global() {
    let plugin = PluginConfig::load(
        &case("rate_transform/interface_counter_sequence/plugin.conf"),
        PluginKind::Polling,
    )
    .unwrap();
    let group = &load("kafka_topics/site_and_global/metrics_group_set.json")[0];
    let site = &panoptes::model::Site::new(group["resource"]["resource_site"].as_str().unwrap());
    let mut kafka = panoptes::config::Settings::load(None).unwrap().kafka;
    kafka.publish_to_site_topic = true;
    kafka.publish_to_global_topic = false;
    kafka.global_topic_name = "panoptes-metrics".into();
    assert_eq!(
        topics_for(&kafka, &plugin, site),
        vec!["test_site-processed"]
    );
    kafka.publish_to_global_topic = true;
    assert_eq!(
        topics_for(&kafka, &plugin, site),
        vec!["test_site-processed", "panoptes-metrics"]
    );
}
