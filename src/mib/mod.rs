//! MIB modules: names for OIDs wherever a user writes or reads one (`IF-MIB::ifHCInOctets`
//! in a DSL document, `panoptes walk host ifXTable`, `panoptes mib translate`).
//!
//! Parsing and resolving SMIv1/SMIv2 is `mib-rs`'s work (IMPORTS across modules, type
//! chains with DISPLAY-HINTs and enums, the OID tree); this module is the small surface
//! the rest of Panoptes sees: [`Mibs`] loads the built-in standard modules
//! ([`builtin`]) and the `[mibs] dirs` of the settings, turns names into [`Oid`]s and back,
//! and keeps every module that failed to load as a [`ModuleProblem`] instead of failing
//! the whole load: one vendor's broken file must not take IF-MIB away from the others.
//!
//! A process has one set of MIBs ([`install`], [`installed`]): it is read once at start,
//! and a DSL document resolves its names once, when it is compiled.

pub mod builtin;
pub mod cli;
mod hint;
mod render;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use mib_rs::{DiagnosticConfig, Loader, ReportingLevel, Severity};

pub use render::{OutputOptions, Renderer};

use crate::snmp::Oid;

/// The loaded MIB modules and where they came from.
pub struct Mibs {
    mib: mib_rs::Mib,
    dirs: Vec<PathBuf>,
    problems: Vec<ModuleProblem>,
}

impl fmt::Debug for Mibs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mibs")
            .field("dirs", &self.dirs)
            .field("modules", &self.mib.modules().count())
            .field("problems", &self.problems.len())
            .finish()
    }
}

/// A module (or a file, or a directory) that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleProblem {
    /// The module's name, or the file or directory when no module could be read from it.
    pub module: String,
    /// The file the module was read from (`built-in` for the shipped ones).
    pub file: String,
    /// What went wrong, in the order the resolver found it.
    pub reasons: Vec<String>,
}

impl ModuleProblem {
    /// The first reason, and how many more there are.
    pub fn summary(&self) -> String {
        match self.reasons.as_slice() {
            [] => "cannot be loaded".into(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (and {} more problems)", rest.len()),
        }
    }
}

impl fmt::Display for ModuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.module, self.file, self.summary())
    }
}

/// A name that is neither a numeric OID nor known to the loaded MIBs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a numeric OID nor a name in the loaded MIBs: {reason} (MIB search path: {search_path})")]
pub struct ResolveError {
    pub text: String,
    pub reason: String,
    pub search_path: String,
}

/// The diagnostics that make a module unusable: errors and worse. Style and
/// warnings (a missing DESCRIPTION, an odd name) are what real vendor MIBs are full of.
fn is_failure(severity: Severity) -> bool {
    severity <= Severity::Error
}

impl Mibs {
    /// The built-in modules only.
    pub fn builtin() -> Mibs {
        Mibs::load(&[])
    }

    /// The built-in modules and every module in `dirs` (a module in a directory wins over
    /// a built-in one of the same name; an earlier directory over a later one). Problems
    /// are kept, not returned: see [`Mibs::problems`].
    pub fn load(dirs: &[PathBuf]) -> Mibs {
        let mut problems = Vec::new();
        let mut sources = Vec::new();
        for dir in dirs {
            match mib_rs::source::dir(dir) {
                Ok(source) => sources.push(source),
                Err(e) => problems.push(ModuleProblem {
                    module: dir.display().to_string(),
                    file: dir.display().to_string(),
                    reasons: vec![format!("cannot read the MIB directory: {e}")],
                }),
            }
        }
        sources.push(builtin::source());
        let mib = match load_sources(sources) {
            Ok(mib) => mib,
            Err(e) => {
                problems.push(ModuleProblem {
                    module: "(all)".into(),
                    file: search_path_text(dirs),
                    reasons: vec![format!("{e}: only the built-in modules are loaded")],
                });
                // Compiled-in text, held to loading by the tests: not input from outside.
                load_sources(vec![builtin::source()]).expect("the built-in MIB modules load")
            }
        };
        problems.extend(module_problems(&mib));
        Mibs {
            mib,
            dirs: dirs.to_vec(),
            problems,
        }
    }

    /// Loads `dir` alone (with the built-in modules to import from) and lists what in it
    /// cannot be loaded, including files that hold no module: `panoptes mib check`.
    pub fn check_dir(dir: &Path) -> Vec<ModuleProblem> {
        let mibs = Mibs::load(&[dir.to_path_buf()]);
        let mut problems: Vec<ModuleProblem> = mibs
            .problems
            .iter()
            .filter(|p| p.file != "built-in")
            .cloned()
            .collect();
        // Files mib-rs found no `NAME DEFINITIONS ::= BEGIN` in are skipped by it silently.
        let read: Vec<String> = mibs
            .mib
            .modules()
            .filter_map(|m| m.source_label().map(str::to_owned))
            .collect();
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && looks_like_a_mib_file(p))
                .collect();
            files.sort();
            for file in files {
                let shown = file.display().to_string();
                if !read.iter().any(|label| Path::new(label) == file) {
                    problems.push(ModuleProblem {
                        module: file
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        file: shown,
                        reasons: vec![
                            "no MIB module found in it (expected `NAME DEFINITIONS ::= BEGIN`)"
                                .into(),
                        ],
                    });
                }
            }
        }
        problems
    }

    /// What could not be loaded: unreadable directories and modules with errors.
    pub fn problems(&self) -> &[ModuleProblem] {
        &self.problems
    }

    /// The directories searched, then the built-in modules, for error messages.
    pub fn search_path(&self) -> String {
        search_path_text(&self.dirs)
    }

    /// The names of the loaded modules, sorted.
    pub fn module_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.mib.modules().map(|m| m.name().to_owned()).collect();
        names.sort();
        names
    }

    /// A numeric OID (`.1.3.6.1.2.1.31.1.1.1.6`, leading dot optional) or a name
    /// (`IF-MIB::ifHCInOctets`, `ifHCInOctets`, either with an instance suffix `.3`).
    pub fn resolve(&self, text: &str) -> Result<Oid, ResolveError> {
        let trimmed = text.trim();
        let error = |reason: String| ResolveError {
            text: text.to_owned(),
            reason,
            search_path: self.search_path(),
        };
        let numeric = trimmed.strip_prefix('.').unwrap_or(trimmed);
        if numeric.starts_with(|c: char| c.is_ascii_digit()) {
            return numeric.parse::<Oid>().map_err(|e| error(e.reason.into()));
        }
        if trimmed.is_empty() {
            return Err(error("empty".into()));
        }
        // Quoted string indexes, as net-snmp prints them: `acmeUserLogins."alice"`.
        let (base, quoted) = match trimmed
            .find(".\"")
            .into_iter()
            .chain(trimmed.find(".'"))
            .min()
        {
            Some(at) => trimmed.split_at(at),
            None => (trimmed, ""),
        };
        let oid = self
            .mib
            .resolve_oid(base)
            .map_err(|e| error(e.to_string()))?;
        let mut arcs = oid.to_vec();
        arcs.extend(quoted_index(quoted).map_err(error)?);
        Ok(Oid::new(arcs))
    }

    /// `MODULE::name.suffix` for the deepest named node above `oid` (what net-snmp prints
    /// by default), or the numeric form with a leading dot when nothing is named.
    pub fn name(&self, oid: &Oid) -> String {
        let numeric = mib_rs::Oid::from(oid.components());
        let lookup = self.mib.lookup_instance(&numeric);
        if lookup.node().name().is_empty() {
            return oid.to_dotted_leading();
        }
        match index_text(&lookup) {
            Some(index) => {
                let module = lookup
                    .node()
                    .module()
                    .map(|m| format!("{}::", m.name()))
                    .unwrap_or_default();
                format!("{module}{}{index}", lookup.node().name())
            }
            None => self.mib.format_oid(&numeric),
        }
    }

    /// `(module, name)` of the node `oid` names exactly (no instance suffix), if any.
    pub fn exact_name(&self, oid: &Oid) -> Option<(String, String)> {
        let numeric = mib_rs::Oid::from(oid.components());
        let lookup = self.mib.lookup_instance(&numeric);
        let node = lookup.node();
        if node.name().is_empty() || !lookup.suffix().is_empty() {
            return None;
        }
        let module = node
            .module()
            .map(|m| m.name().to_string())
            .unwrap_or_default();
        Some((module, node.name().to_string()))
    }

    /// [`Mibs::name`] when the MIBs name a node above `oid`, else `None`.
    pub fn known_name(&self, oid: &Oid) -> Option<String> {
        let name = self.name(oid);
        (!name.starts_with('.')).then_some(name)
    }

    /// Every name from the root down, as `snmptranslate -Of` prints:
    /// `.iso.org.dod.internet.mgmt.mib-2.interfaces.ifTable`, then the index as [`Mibs::name`]
    /// prints it.
    pub fn full_name(&self, oid: &Oid) -> String {
        let numeric = mib_rs::Oid::from(oid.components());
        let lookup = self.mib.lookup_instance(&numeric);
        let mut names = Vec::new();
        let mut node = Some(lookup.node());
        while let Some(n) = node {
            if n.parent().is_none() {
                break;
            }
            names.push(if n.name().is_empty() {
                n.arc().to_string()
            } else {
                n.name().to_owned()
            });
            node = n.parent();
        }
        names.reverse();
        let mut out = String::new();
        for name in names {
            out.push('.');
            out.push_str(&name);
        }
        match index_text(&lookup) {
            Some(index) => out.push_str(&index),
            None => {
                for arc in lookup.suffix() {
                    out.push('.');
                    out.push_str(&arc.to_string());
                }
            }
        }
        out
    }

    /// The object `oid` is an instance of (a scalar's `.0`, a column's row), if any.
    fn object_of(&self, oid: &Oid) -> Option<mib_rs::Object<'_>> {
        let numeric = mib_rs::Oid::from(oid.components());
        let lookup = self.mib.lookup_instance(&numeric);
        let object = lookup.node().object()?;
        // Only leaves carry values: a table or row name above a value says nothing of it.
        (object.is_scalar() || object.is_column()).then_some(object)
    }
}

/// The arcs of an index written as net-snmp prints it: `."text"` (length, then the
/// bytes), `.'text'` (the bytes alone: IMPLIED or fixed size) and `.N`, in any order.
fn quoted_index(mut text: &str) -> Result<Vec<u32>, String> {
    let mut arcs = Vec::new();
    while !text.is_empty() {
        let rest = text
            .strip_prefix('.')
            .ok_or_else(|| format!("expected `.` before `{text}` in the index"))?;
        match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let body = &rest[1..];
                let end = body
                    .find(quote)
                    .ok_or_else(|| format!("unclosed {quote} in the index"))?;
                let bytes = &body.as_bytes()[..end];
                if quote == '"' {
                    arcs.push(u32::try_from(bytes.len()).map_err(|e| e.to_string())?);
                }
                arcs.extend(bytes.iter().map(|&b| u32::from(b)));
                text = &body[end + 1..];
            }
            _ => {
                let end = rest.find('.').unwrap_or(rest.len());
                let arc = &rest[..end];
                arcs.push(
                    arc.parse()
                        .map_err(|_| format!("`{arc}` is not a number in the index"))?,
                );
                text = &rest[end..];
            }
        }
    }
    Ok(arcs)
}

/// A column instance's index as net-snmp prints it: numbers for integers and addresses,
/// `."text"` for a length-prefixed string, `.'text'` for an IMPLIED or fixed-size one
/// (bytes that do not print as `.`). `None` when the suffix is not a valid index of the
/// column (it prints as numbers then).
fn index_text(lookup: &mib_rs::OidLookup<'_>) -> Option<String> {
    use mib_rs::{ConstraintMode, DecodeOptions, IndexValue, VariableFraming};
    let object = lookup.node().object()?;
    if !object.is_column() || lookup.suffix().is_empty() {
        return None;
    }
    let schema = mib_rs::IndexSchema::compile(object).ok()?;
    let options = DecodeOptions::new(mib_rs::MAX_INSTANCE_OID_ARCS)
        .with_constraint_mode(ConstraintMode::Report);
    let decoded = lookup.decode_indexes_exact(&schema, options).ok()?;
    let mut out = String::new();
    for component in decoded.components() {
        let quote = match component.schema().wire_type().framing() {
            Some(VariableFraming::LengthPrefixed) => '"',
            _ => '\'',
        };
        match component.value() {
            IndexValue::OctetString(bytes) => {
                out.push('.');
                out.push(quote);
                out.extend(bytes.iter().map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        char::from(b)
                    } else {
                        '.'
                    }
                }));
                out.push(quote);
            }
            _ => {
                for arc in component.raw_arcs() {
                    out.push('.');
                    out.push_str(&arc.to_string());
                }
            }
        }
    }
    Some(out)
}

fn diagnostics() -> DiagnosticConfig {
    DiagnosticConfig {
        reporting: ReportingLevel::Quiet,
        // Never fail the whole load: problems are listed per module instead.
        fail_at: Severity::Fatal,
        ..DiagnosticConfig::default()
    }
}

fn load_sources(sources: Vec<Box<dyn mib_rs::Source>>) -> Result<mib_rs::Mib, mib_rs::LoadError> {
    Loader::new()
        .source(mib_rs::source::chain(sources))
        .diagnostic_config(diagnostics())
        // One thread: the node loads MIBs once at start, on a machine it shares.
        .parallelism(1)
        .load()
}

/// Failing diagnostics grouped by module, in the module order of the diagnostics.
fn module_problems(mib: &mib_rs::Mib) -> Vec<ModuleProblem> {
    let mut by_module: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in mib.diagnostics() {
        if !is_failure(d.severity) {
            continue;
        }
        let module = d
            .module
            .clone()
            .unwrap_or_else(|| "(unknown module)".into());
        let reasons = by_module.entry(module).or_default();
        if !reasons.contains(&d.message) {
            reasons.push(d.message.clone());
        }
    }
    by_module
        .into_iter()
        .map(|(module, reasons)| {
            let file = mib
                .module(&module)
                .and_then(|m| m.source_label().map(str::to_owned))
                .map(|label| {
                    if label.starts_with("<memory:") {
                        "built-in".to_owned()
                    } else {
                        label
                    }
                })
                .unwrap_or_else(|| "?".into());
            ModuleProblem {
                module,
                file,
                reasons,
            }
        })
        .collect()
}

/// The files a MIB directory is read for (mib-rs's extensions: none, `.mib`, `.smi`,
/// `.txt`, `.my`); a README.md or a dotfile beside the modules is not a broken module.
fn looks_like_a_mib_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with('.') {
        return false;
    }
    mib_rs::source::DEFAULT_EXTENSIONS
        .iter()
        .any(|ext| match path.extension() {
            None => ext.is_empty(),
            Some(e) => !ext.is_empty() && ext[1..].eq_ignore_ascii_case(&e.to_string_lossy()),
        })
}

fn search_path_text(dirs: &[PathBuf]) -> String {
    let mut parts: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    parts.push("built-in".into());
    parts.join(", ")
}

static INSTALLED: RwLock<Option<Arc<Mibs>>> = RwLock::new(None);
static BUILTIN: OnceLock<Arc<Mibs>> = OnceLock::new();

/// Makes `mibs` the process's MIBs (at start, from `[mibs] dirs`).
pub fn install(mibs: Arc<Mibs>) {
    match INSTALLED.write() {
        Ok(mut slot) => *slot = Some(mibs),
        Err(poisoned) => *poisoned.into_inner() = Some(mibs),
    }
}

/// A numeric OID or a name, resolved with the process's MIBs ([`installed`]); a numeric
/// OID never loads them, so programs that use no names never parse a MIB.
pub fn resolve(text: &str) -> Result<Oid, ResolveError> {
    let trimmed = text.trim();
    let numeric = trimmed.strip_prefix('.').unwrap_or(trimmed);
    if numeric.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(oid) = numeric.parse::<Oid>() {
            return Ok(oid);
        }
    }
    installed().resolve(text)
}

/// The process's MIBs: what [`install`] set, else the built-in modules alone.
pub fn installed() -> Arc<Mibs> {
    let current = match INSTALLED.read() {
        Ok(slot) => slot.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    current.unwrap_or_else(|| BUILTIN.get_or_init(|| Arc::new(Mibs::builtin())).clone())
}

#[cfg(test)]
mod tests;
