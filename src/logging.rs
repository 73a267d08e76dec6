//! Log setup: human-readable by default, JSON with `--log-format json`; `RUST_LOG` wins
//! over `log.level` when set. Colours only on a terminal: a log file or the journal gets
//! plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(format: &str, level: &str) -> anyhow::Result<()> {
    let mut filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .map_err(|e| anyhow::anyhow!("log.level `{level}`: {e}"))?;
    // mib-rs reports each phase of a MIB load at info; what failed is our own
    // MibModuleFailed warning. A level that names mib_rs keeps its say.
    let named = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_owned());
    if !named.contains("mib_rs") {
        if let Ok(directive) = "mib_rs=warn".parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        "json" => builder.json().try_init(),
        "human" => builder.try_init(),
        other => anyhow::bail!("log format `{other}`: expected human or json"),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
