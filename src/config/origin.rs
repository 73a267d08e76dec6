//! Where each configuration value came from (the embedded defaults, the `--config` file or
//! a `PANOPTES__…` variable), and what follows from it: relative paths in a file resolve
//! next to that file, and plugin directories left at their defaults fall back to the files
//! built into the binary when they are not on disk.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::embedded;
use super::settings::Settings;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    /// The variable's name.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
        }
    }
}

/// The keys (`section.key`) the file and the environment set.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    file: Option<PathBuf>,
    file_keys: BTreeSet<String>,
    env_keys: BTreeMap<String, String>,
}

/// Keys whose values are paths (one, or a list), resolved next to the file that sets them.
const PATH_KEYS: &[&str] = &[
    "data_dir",
    "plugins.discovery",
    "plugins.enrichment",
    "plugins.polling",
    "snmp.secrets_file",
    "demo.recording",
    "http.tls_cert",
    "http.tls_key",
    "kafka.tls_cert",
    "kafka.tls_key",
    "kafka.client_tls_ca",
    "influxdb.tls_ca",
    "mibs.dirs",
];

impl Origins {
    /// `file`: the `--config` file and its parsed text; `vars`: the `PANOPTES…` variables.
    pub fn new(file: Option<(&Path, &toml::Table)>, vars: &HashMap<String, String>) -> Origins {
        let mut file_keys = BTreeSet::new();
        if let Some((_, table)) = file {
            flatten(table, "", &mut file_keys);
        }
        let env_keys = vars
            .keys()
            .filter_map(|var| {
                let rest = var.strip_prefix("PANOPTES__")?;
                let key = rest.split("__").collect::<Vec<_>>().join(".");
                Some((key.to_ascii_lowercase(), var.clone()))
            })
            .collect();
        Origins {
            file: file.map(|(p, _)| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
            file_keys,
            env_keys,
        }
    }

    /// The `--config` file, absolute.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Where `key` (`section.key`, or a key of a table below it) came from: the
    /// environment beats the file, which beats the defaults.
    pub fn of(&self, key: &str) -> Origin {
        let covers = |set_key: &str| set_key == key || key.starts_with(&format!("{set_key}."));
        if let Some((_, var)) = self.env_keys.iter().find(|(k, _)| covers(k)) {
            return Origin::Env(var.clone());
        }
        match &self.file {
            Some(file)
                if self
                    .file_keys
                    .iter()
                    .any(|k| covers(k) || k.starts_with(&format!("{key}."))) =>
            {
                Origin::File(file.clone())
            }
            _ => Origin::Default,
        }
    }

    /// Relative paths set in the file resolve against the file's directory; plugin
    /// directories left at their defaults and missing on disk become the built-in files.
    pub fn resolve_paths(&self, settings: &mut Settings) {
        let next_to_file = |key: &str, path: &mut PathBuf| {
            if let (Origin::File(file), true) = (self.of(key), path.is_relative()) {
                if !path.as_os_str().is_empty() {
                    if let Some(dir) = file.parent() {
                        *path = dir.join(&*path);
                    }
                }
            }
        };
        let next_to_file_str = |key: &str, value: &mut String| {
            let mut path = PathBuf::from(value.trim());
            next_to_file(key, &mut path);
            *value = path.display().to_string();
        };
        next_to_file("data_dir", &mut settings.data_dir);
        next_to_file_str("snmp.secrets_file", &mut settings.snmp.secrets_file);
        next_to_file_str("demo.recording", &mut settings.demo.recording);
        next_to_file_str("http.tls_cert", &mut settings.http.tls_cert);
        next_to_file_str("http.tls_key", &mut settings.http.tls_key);
        next_to_file_str("kafka.tls_cert", &mut settings.kafka.tls_cert);
        next_to_file_str("kafka.tls_key", &mut settings.kafka.tls_key);
        next_to_file_str("kafka.client_tls_ca", &mut settings.kafka.client_tls_ca);
        next_to_file_str("influxdb.tls_ca", &mut settings.influxdb.tls_ca);
        for dir in settings.mibs.dirs.iter_mut() {
            next_to_file("mibs.dirs", dir);
        }
        let p = &mut settings.plugins;
        for (kind, dirs) in [
            ("discovery", &mut p.discovery),
            ("enrichment", &mut p.enrichment),
            ("polling", &mut p.polling),
        ] {
            let key = format!("plugins.{kind}");
            if self.of(&key) == Origin::Default {
                for dir in dirs.iter_mut() {
                    if !dir.exists() {
                        *dir = embedded::dir(&dir.display().to_string());
                    }
                }
            } else {
                for dir in dirs.iter_mut() {
                    next_to_file(&key, dir);
                }
            }
        }
    }
}

/// Whether `key` holds a path.
pub fn is_path_key(key: &str) -> bool {
    PATH_KEYS.contains(&key)
}

fn flatten(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => flatten(inner, &key, out),
            _ => {
                out.insert(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(file_text: &str, vars: &[(&str, &str)]) -> Origins {
        let table: toml::Table = toml::from_str(file_text).unwrap();
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Origins::new(Some((Path::new("/etc/p/panoptes.toml"), &table)), &vars)
    }

    #[test]
    fn env_beats_file_beats_default() {
        let o = origins(
            "site = \"a\"\n[http]\nlisten = \"127.0.0.1:1\"\n",
            &[("PANOPTES__HTTP__LISTEN", "127.0.0.1:2")],
        );
        assert_eq!(
            o.of("site"),
            Origin::File(PathBuf::from("/etc/p/panoptes.toml"))
        );
        assert_eq!(
            o.of("http.listen"),
            Origin::Env("PANOPTES__HTTP__LISTEN".into())
        );
        assert_eq!(o.of("http.token"), Origin::Default);
        assert_eq!(
            o.of("http.listen").to_string(),
            "env PANOPTES__HTTP__LISTEN"
        );
        assert_eq!(o.of("site").to_string(), "file /etc/p/panoptes.toml");
        assert_eq!(o.of("data_dir").to_string(), "default");
    }

    #[test]
    fn a_table_set_in_the_file_covers_its_keys() {
        let o = origins("[kafka.acl]\nx = 1\n", &[]);
        assert_eq!(
            o.of("kafka.acl.x"),
            Origin::File(PathBuf::from("/etc/p/panoptes.toml"))
        );
        assert_eq!(
            o.of("kafka.acl"),
            Origin::File(PathBuf::from("/etc/p/panoptes.toml"))
        );
        assert_eq!(o.of("kafka.listen"), Origin::Default);
    }

    #[test]
    fn relative_paths_in_a_file_resolve_next_to_it_and_missing_default_plugin_dirs_are_built_in() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("panoptes.toml");
        std::fs::write(
            &file,
            "data_dir = \"state\"\n[plugins]\npolling = [\"mine\", \"/abs\"]\n[http]\ntls_cert = \"\"\n",
        )
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        // The test runs in the repository: make the default directories missing by
        // loading from a config whose defaults are looked up relative to the cwd, which
        // has conf/plugins; so check the fallback on a name that is not there.
        let table: toml::Table = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let o = Origins::new(Some((&file, &table)), &HashMap::new());
        let mut s = Settings::load(Some(&file)).unwrap();
        s.plugins.enrichment = vec![PathBuf::from("conf/plugins/enrichment-not-here")];
        s.data_dir = PathBuf::from("state");
        s.plugins.polling = vec![PathBuf::from("mine"), PathBuf::from("/abs")];
        o.resolve_paths(&mut s);
        assert_eq!(s.data_dir, dir.path().join("state"));
        assert_eq!(
            s.plugins.polling,
            vec![dir.path().join("mine"), PathBuf::from("/abs")]
        );
        assert_eq!(
            s.plugins.enrichment,
            vec![PathBuf::from("(built-in)/conf/plugins/enrichment-not-here")]
        );
        // Present on disk (relative to the cwd, the repository): kept as it is.
        assert_eq!(
            s.plugins.discovery,
            vec![PathBuf::from("conf/plugins/discovery")]
        );
        assert!(cwd.join("conf/plugins/discovery").is_dir());
        // An empty path stays empty (not the file's directory).
        assert_eq!(s.http.tls_cert, "");
    }
}
