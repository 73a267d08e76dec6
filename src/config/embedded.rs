//! The shipped plugin files and the demo's discovery file, built into the binary: used when
//! the plugin directories are the defaults and do not exist (`panoptes run` from a
//! directory other than the repository's, or an installed binary with no `/etc` files).
//!
//! They live under a virtual directory, [`ROOT`]: paths below it name embedded files in
//! logs and errors, and [`read_to_string`] / [`list_dir`] serve them like files on disk.

use std::path::{Path, PathBuf};

/// The virtual directory the embedded files live under.
pub const ROOT: &str = "(built-in)";

/// Every file of `conf/plugins`, by its path in the repository.
const FILES: &[(&str, &str)] = &[
    (
        "conf/plugins/discovery/from_json_file.panoptes-plugin",
        include_str!("../../conf/plugins/discovery/from_json_file.panoptes-plugin"),
    ),
    (
        "conf/plugins/discovery/localhost.json",
        include_str!("../../conf/plugins/discovery/localhost.json"),
    ),
    (
        "conf/plugins/enrichment/interface.panoptes-plugin",
        include_str!("../../conf/plugins/enrichment/interface.panoptes-plugin"),
    ),
    (
        "conf/plugins/polling/interface.panoptes-plugin",
        include_str!("../../conf/plugins/polling/interface.panoptes-plugin"),
    ),
];

/// The embedded copy of a repository directory (e.g. `conf/plugins/polling`).
pub fn dir(repo_path: &str) -> PathBuf {
    Path::new(ROOT).join(repo_path)
}

/// The repository path of an embedded file or directory, if `path` names one.
fn inner(path: &Path) -> Option<&Path> {
    path.strip_prefix(ROOT).ok()
}

pub fn is_embedded(path: &Path) -> bool {
    inner(path).is_some()
}

/// An embedded file's text.
fn file(path: &Path) -> Option<&'static str> {
    let inner = inner(path)?;
    FILES
        .iter()
        .find(|(name, _)| Path::new(name) == inner)
        .map(|(_, text)| *text)
}

/// A file's text, embedded or on disk.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    if is_embedded(path) {
        return file(path).map(str::to_owned).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file built into the binary",
            )
        });
    }
    std::fs::read_to_string(path)
}

/// The files directly in a directory, embedded or on disk, sorted by name.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = match inner(dir) {
        Some(inner) => {
            let found: Vec<PathBuf> = FILES
                .iter()
                .map(|(name, _)| Path::new(name))
                .filter(|name| name.parent() == Some(inner))
                .map(|name| Path::new(ROOT).join(name))
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such directory built into the binary",
                ));
            }
            found
        }
        None => std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
    };
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `conf/plugins` is embedded (a file added there and not here fails).
    #[test]
    fn the_embedded_files_are_exactly_those_of_conf_plugins() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for kind in ["discovery", "enrichment", "polling"] {
            for entry in std::fs::read_dir(repo.join("conf/plugins").join(kind)).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(repo).unwrap().to_path_buf();
                assert_eq!(
                    std::fs::read_to_string(&path).unwrap(),
                    read_to_string(&Path::new(ROOT).join(&relative)).unwrap(),
                    "{}",
                    relative.display()
                );
                on_disk.push(relative);
            }
        }
        on_disk.sort();
        let mut embedded: Vec<PathBuf> = FILES.iter().map(|(n, _)| PathBuf::from(n)).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn embedded_directories_list_and_read_like_directories() {
        let polling = dir("conf/plugins/polling");
        assert_eq!(
            list_dir(&polling).unwrap(),
            vec![PathBuf::from(
                "(built-in)/conf/plugins/polling/interface.panoptes-plugin"
            )]
        );
        let discovery = list_dir(&dir("conf/plugins/discovery")).unwrap();
        assert_eq!(discovery.len(), 2);
        assert!(read_to_string(&discovery[1])
            .unwrap()
            .contains("\"resource_endpoint\""));
        let missing = list_dir(&dir("conf/plugins/nothing")).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "no such directory built into the binary"
        );
        let missing = read_to_string(&dir("conf/plugins/polling/x")).unwrap_err();
        assert_eq!(missing.to_string(), "no such file built into the binary");
    }
}
