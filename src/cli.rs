//! The command line: `panoptes run | bench | simulate | walk | topic tail | topic list |
//! resources list | cluster status | plugin run | mib translate | mib check | config check |
//! config show | completions | manpages`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "panoptes",
    version,
    about = "Network telemetry collector compatible with Yahoo Panoptes, in one binary"
)]
pub struct Cli {
    /// A TOML file overriding the embedded defaults (conf/panoptes.toml); env
    /// PANOPTES__SECTION__KEY overrides both.
    #[arg(long, global = true, env = "PANOPTES_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format: human (default) or json. Overrides log.format.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: discovery, enrichment, polling, rates, topics, HTTP.
    Run,
    /// Measure poll throughput: poll a simulated fleet (run in a separate process) with
    /// the real pipeline and report polls/s, CPU, latency and memory.
    Bench(crate::bench::BenchArgs),
    /// Serve an .snmprec recording as SNMP v1/v2c/v3 agents (one or many devices).
    Simulate(crate::simulate::SimulateArgs),
    /// Walk a subtree of an SNMP agent and print it like `snmpbulkwalk` (names from the
    /// MIBs; `-On` numeric).
    Walk(crate::snmp::walk_cli::WalkArgs),
    /// Read topics of the running node.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// Read the resources the running node's resource manager holds.
    Resources {
        #[command(subcommand)]
        command: ResourcesCommand,
    },
    /// The running node's place in its site's cluster.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Run plugins by hand.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Translate MIB names and OIDs, check MIB files.
    Mib {
        #[command(subcommand)]
        command: MibCommand,
    },
    /// Check or show the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) of panoptes and its subcommands to a directory, one file
    /// each (panoptes.1, panoptes-run.1, ...).
    Manpages {
        /// Directory to write the pages to (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration, the secrets file, every plugin file and what the plugins
    /// name (discovery files, vendor definitions, DSL documents), and list every problem
    /// with its file, key and line. Exit status 1 on any problem.
    Check,
    /// Print the effective configuration (defaults, then --config, then PANOPTES__*
    /// variables), each value with where it came from; secrets masked.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum MibCommand {
    /// Like `snmptranslate`: a name (`IF-MIB::ifHCInOctets`, `ifDescr.3`) prints as its
    /// numeric OID, a numeric OID as `MODULE::name.suffix`; `-On` numeric, `-Of` full
    /// names. MIBs: the built-in ones, `[mibs] dirs` and `-M`.
    Translate(crate::mib::cli::TranslateArgs),
    /// Load every MIB file of a directory (importing from the built-in modules and the
    /// directory itself) and list the modules and files that fail, with the reason.
    /// Exit status 1 if any.
    Check(crate::mib::cli::CheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run one plugin once against one device and print its output as the original's
    /// JSON (exit status non-zero if the plugin cannot run).
    Run(crate::plugins::one_shot::PluginRunArgs),
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Print a topic's messages as JSON lines, following new ones.
    Tail {
        /// e.g. local-processed
        topic: String,
        /// Start at the oldest retained message instead of the end.
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many messages.
        #[arg(long, value_name = "N")]
        max: Option<usize>,
    },
    /// List topics with their partitions and offsets.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Members of the site's groups, what each owns (partitions, devices), generations
    /// and the sink's lag (a table, or the `/api/cluster` JSON with --json).
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// List resources (a table, or JSON lines with --json).
    List {
        #[arg(long)]
        json: bool,
    },
}
