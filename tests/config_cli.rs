//! `panoptes config check` and `config show`: every problem of a broken configuration
//! listed at once with its file, key and line; the effective settings with their origins.

use std::path::Path;
use std::process::{Command, Output};

fn panoptes(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("PANOPTES") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

fn check(dir: &Path, config: &str) -> (i32, Vec<String>, String) {
    let file = dir.join("panoptes.toml");
    std::fs::write(&file, config).unwrap();
    let out = panoptes(
        dir,
        &["--config", file.to_str().unwrap(), "config", "check"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| l.replace(&dir.display().to_string(), "D"))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn write(dir: &Path, relative: &str, text: &str) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const PLUGIN_DIRS: &str =
    "[plugins]\ndiscovery = [\"d\"]\nenrichment = [\"e\"]\npolling = [\"p\"]\n";

fn polling_plugin(filter: &str) -> String {
    format!(
        "[Core]\nName = Interface\nModule = plugin_polling_device_interface_metrics\n\
         [main]\nexecute_frequency = 60\nresource_filter = {filter}\n"
    )
}

#[test]
fn a_clean_configuration_checks_ok_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    // No config at all, from an empty directory: the embedded defaults and plugins.
    let out = panoptes(dir.path(), &["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "configuration OK: 3 plugin files (1 discovery, 1 enrichment, 1 polling), 10 built-in vendor definitions"
    );
}

#[test]
fn settings_problems_are_all_listed_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (code, lines, summary) = check(
        dir.path(),
        "site = \"a b\"\n[snmp]\ntimeout = 500\nretries = 50\n[influxdb]\nbatch_size = 0\n",
    );
    assert_eq!(code, 1);
    assert_eq!(
        lines,
        vec![
            "D/panoptes.toml:1: site: `a b` must be non-empty and hold only letters, digits, `.`, `_` or `-` (it names topics)",
            "D/panoptes.toml:3: snmp.timeout: must be 1..120 seconds",
            "D/panoptes.toml:4: snmp.retries: must be 0..10",
            "D/panoptes.toml:6: influxdb.batch_size: must be 1..1000 points",
        ]
    );
    assert!(
        summary.starts_with("4 problems (read 3 plugin files"),
        "{summary}"
    );
}

#[test]
fn a_toml_syntax_error_names_the_line_and_not_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let (code, lines, _) = check(dir.path(), "site = \"a\"\n[snmp]\ncommunity = \"s3cret\n");
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("D/panoptes.toml:3: configuration: not valid TOML: line 3, column"),
        "{lines:?}"
    );
    assert!(!lines[0].contains("s3cret"), "{lines:?}");
}

#[test]
fn a_secrets_file_error_is_reported_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "secrets.toml",
        "[local]\ncommunity = \"hunter2\n",
    );
    let (code, lines, _) = check(dir.path(), "[snmp]\nsecrets_file = \"secrets.toml\"\n");
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("D/secrets.toml"), "{lines:?}");
    assert!(lines[0].contains("line 2"), "{lines:?}");
    assert!(!lines[0].contains("hunter2"), "{lines:?}");
}

#[test]
fn every_broken_plugin_file_is_listed_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "d/json.panoptes-plugin",
        "[Core]\nName = D\nModule = plugin_discovery_from_json_file\n[main]\nexecute_frequency = 60\nconfig_file = devices.json\n",
    );
    write(d, "d/devices.json", "[{\"resource_id\": ");
    write(
        d,
        "e/nomodule.panoptes-plugin",
        "[Core]\nName = E\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\n",
    );
    write(
        d,
        "e/unknown.panoptes-plugin",
        "[Core]\nName = U\nModule = plugin_enrichment_nothing_like_this\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\n",
    );
    write(
        d,
        "p/filter.panoptes-plugin",
        &polling_plugin("resource_class = \"network"),
    );
    write(
        d,
        "p/dsl.panoptes-plugin",
        "[Core]\nName = G\nModule = plugin_polling_generic_snmp\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\n[enrichment]\nfile = doc.json\n",
    );
    write(d, "p/doc.json", "{\"metrics_groups\": 7}");
    let (code, all, summary) = check(d, PLUGIN_DIRS);
    assert_eq!(code, 1, "{all:?}");
    // A filter's error shows where in the filter, on lines of its own.
    assert_eq!(
        all[all.len() - 2..],
        ["  | resource_class = \"network", "  |                  ^"]
    );
    let lines: Vec<&String> = all.iter().filter(|l| l.starts_with("D/")).collect();
    assert_eq!(lines.len(), 5, "{all:?}");
    assert!(
        lines[0].starts_with(
            "D/d/json.panoptes-plugin:6: [main] config_file: D/d/devices.json is not valid JSON"
        ),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "D/e/nomodule.panoptes-plugin:1: [Core] Module: is required"
    );
    assert!(
        lines[2].starts_with("D/e/unknown.panoptes-plugin:3: [Core] Module: `plugin_enrichment_nothing_like_this` is not a built-in enrichment plugin (known: "),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with(
            "D/p/dsl.panoptes-plugin:8: [enrichment] file: D/p/doc.json: DSL document: "
        ),
        "{lines:?}"
    );
    assert!(
        lines[4].starts_with("D/p/filter.panoptes-plugin:6: [main] resource_filter: resource filter: at column 18: expected a closing double quote"),
        "{lines:?}"
    );
    assert_eq!(
        summary,
        "5 problems (read 5 plugin files (1 discovery, 2 enrichment, 2 polling), 10 built-in vendor definitions)"
    );
}

#[test]
fn a_plugin_directory_the_user_named_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (code, lines, _) = check(dir.path(), "[plugins]\npolling = [\"not-here\"]\n");
    assert_eq!(code, 1);
    assert_eq!(
        lines,
        vec!["D/panoptes.toml:2: plugins.polling: D/not-here: cannot read plugin directory: No such file or directory (os error 2)"]
    );
}

#[test]
fn a_vendor_definition_named_by_a_plugin_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "d/.keep", "");
    write(d, "p/.keep", "");
    write(
        d,
        "e/vendor.panoptes-plugin",
        "[Core]\nName = V\nModule = plugin_enrichment_device_metrics\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\nvendor_definition = mine.json\n",
    );
    write(
        d,
        "e/mine.json",
        "{\"steps\": [{\"let\": \"a\", \"value\": \"b + 1\"}], \"document\": {}}",
    );
    let (code, lines, _) = check(d, PLUGIN_DIRS);
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("D/e/vendor.panoptes-plugin:7: [main] vendor_definition: "),
        "{lines:?}"
    );
    assert!(lines[0].contains("mine.json"), "{lines:?}");
}

#[test]
fn show_prints_origins_masks_secrets_and_resolves_paths_next_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("panoptes.toml");
    std::fs::write(
        &file,
        "data_dir = \"state\"\n[snmp]\ncommunity = \"s3cret\"\n[plugins]\npolling = [\"mine\"]\n\
         [mibs]\ndirs = [\"vendor-mibs\", \"/usr/share/snmp/mibs\"]\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.current_dir(dir.path())
        .args(["--config", file.to_str().unwrap(), "config", "show"])
        .env("PANOPTES__HTTP__LISTEN", "127.0.0.1:9999")
        .env("PANOPTES__TRAPS__COMMUNITIES", "trap-s3cret,other");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let f = file.display();
    let d = dir.path().display();
    for line in [
        format!("data_dir = \"{d}/state\"  # file {f}"),
        "site = \"local\"  # default".to_string(),
        format!("community = \"***\"  # file {f}"),
        "communities = \"***\"  # env PANOPTES__TRAPS__COMMUNITIES".to_string(),
        "listen = \"127.0.0.1:9999\"  # env PANOPTES__HTTP__LISTEN".to_string(),
        format!("polling = [\"{d}/mine\"]  # file {f}"),
        format!("dirs = [\"{d}/vendor-mibs\", \"/usr/share/snmp/mibs\"]  # file {f}"),
        "discovery = [\"(built-in)/conf/plugins/discovery\"]  # default".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn completions_and_man_pages_are_generated_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = panoptes(dir.path(), &["completions", "bash"]);
    assert!(out.status.success(), "{out:?}");
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("_panoptes()"), "{script}");
    assert!(script.contains("config"), "{script}");
    let out = panoptes(dir.path(), &["manpages", "man"]);
    assert!(out.status.success(), "{out:?}");
    let page = std::fs::read_to_string(dir.path().join("man/panoptes.1")).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH panoptes 1"), "{page}");
    assert!(dir.path().join("man/panoptes-config-check.1").is_file());
}
