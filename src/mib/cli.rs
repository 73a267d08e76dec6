//! `panoptes mib translate` (like net-snmp's `snmptranslate`) and `panoptes mib check`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Mibs, ModuleProblem, OutputOptions};

/// `-M DIRS`: MIB directories separated by `:`, searched before `[mibs] dirs`.
pub fn parse_dirs(text: &str) -> Vec<PathBuf> {
    text.split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[derive(clap::Args, Debug, Clone)]
pub struct TranslateArgs {
    /// Output: `-On` numeric OIDs, `-Of` every name from the root. By default a name
    /// prints as its numeric OID and a numeric OID as `MODULE::name.suffix`.
    #[arg(short = 'O', value_name = "n|f")]
    pub output: Option<String>,
    /// MIB directories separated by `:`, searched before `[mibs] dirs`.
    #[arg(short = 'M', value_name = "DIRS")]
    pub dirs: Option<String>,
    /// Names (`IF-MIB::ifHCInOctets`, `ifDescr.3`) or numeric OIDs (`.1.3.6.1.2.1.2.2.1.2`).
    #[arg(required = true, value_name = "NAME|OID")]
    pub oids: Vec<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// A directory of MIB files.
    pub dir: PathBuf,
}

/// The MIBs of `-M` and the settings: `-M` first.
pub fn load(extra: Option<&str>, configured: &[PathBuf]) -> Mibs {
    let mut dirs = extra.map(parse_dirs).unwrap_or_default();
    dirs.extend(configured.iter().cloned());
    Mibs::load(&dirs)
}

/// One line per OID; the first that does not resolve is the error.
pub fn translate(mibs: &Mibs, args: &TranslateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let flags = args.output.as_deref().unwrap_or("");
    let full = flags.contains('f');
    let options = OutputOptions::parse(&flags.replace('f', "")).map_err(anyhow::Error::msg)?;
    for text in &args.oids {
        let oid = mibs.resolve(text)?;
        let numeric_input = text
            .trim()
            .trim_start_matches('.')
            .starts_with(|c: char| c.is_ascii_digit());
        let line = if full {
            mibs.full_name(&oid)
        } else if options.numeric_oids || !numeric_input {
            oid.to_dotted_leading()
        } else {
            mibs.name(&oid)
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Every problem of `dir`, one line per reason: `FILE: MODULE: REASON`. `Ok(false)` when
/// there is any.
pub fn check(dir: &Path, out: &mut impl Write) -> anyhow::Result<bool> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let problems: Vec<ModuleProblem> = Mibs::check_dir(dir);
    for problem in &problems {
        for reason in &problem.reasons {
            writeln!(out, "{}: {}: {reason}", problem.file, problem.module)?;
        }
    }
    out.flush()?;
    Ok(problems.is_empty())
}
