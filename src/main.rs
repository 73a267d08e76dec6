use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};

use panoptes::cli::{
    Cli, ClusterCommand, Command, ConfigCommand, MibCommand, PluginCommand, ResourcesCommand,
    TopicCommand,
};
use panoptes::client::NodeClient;
use panoptes::config::Settings;

/// jemalloc rather than glibc malloc or mimalloc: see `panoptes::memory`.
#[global_allocator]
static GLOBAL: panoptes::memory::Counting<tikv_jemallocator::Jemalloc> =
    panoptes::memory::Counting(tikv_jemallocator::Jemalloc);

/// jemalloc's settings, read once at its start (`_RJEM_MALLOC_CONF` in the environment
/// overrides them): see [`panoptes::memory::JEMALLOC_CONF`].
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: panoptes::memory::MallocConf = panoptes::memory::JEMALLOC_CONF;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`panoptes walk ... | head`): stop quietly, with the status
        // a process killed by SIGPIPE has, as other command-line tools do.
        Err(e)
            if e.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(141)
        }
        Err(e) => {
            eprintln!("panoptes: {e:#}");
            if e.downcast_ref::<panoptes::store_watch::StorageFailed>()
                .is_some()
            {
                ExitCode::from(panoptes::store_watch::EXIT_STORAGE_FAILED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // These read no settings (or report their problems themselves).
    match &cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => return config_check(cli.config.as_deref()),
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            // Shown even when a value is wrong: `config check` says what.
            let settings = Settings::load_unchecked(cli.config.as_deref())?;
            print!("{}", panoptes::config_check::show(&settings)?);
            return Ok(());
        }
        Command::Mib {
            command: MibCommand::Check(args),
        } => {
            // Reads no settings: the directory alone, with the built-in modules.
            let clean = panoptes::mib::cli::check(&args.dir, &mut std::io::stdout().lock())?;
            if !clean {
                std::process::exit(1);
            }
            return Ok(());
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "panoptes", &mut std::io::stdout());
            return Ok(());
        }
        Command::Manpages { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
            return Ok(());
        }
        _ => {}
    }
    let settings = Settings::load(cli.config.as_deref())?;
    let log_format = cli
        .log_format
        .clone()
        .unwrap_or_else(|| settings.log.format.clone());
    match cli.command {
        Command::Run => {
            panoptes::logging::init(&log_format, &settings.log.level)?;
            install_mibs(None, &settings);
            panoptes::node::run(settings)
        }
        Command::Bench(args) => {
            // Warnings only: progress and the report are the output. The pool's "draining:
            // shedding" at the end is the benchmark stopping, not overload (shed work
            // during the run is counted in the report).
            panoptes::logging::init(&log_format, "warn,panoptes_actors::stats=error")?;
            panoptes::bench::run(args, settings)
        }
        Command::Simulate(args) => {
            panoptes::logging::init(&log_format, &settings.log.level)?;
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            if args.threads > 0 {
                rt.worker_threads(args.threads);
            }
            rt.enable_all()
                .build()?
                .block_on(panoptes::simulate::run_cli(args))
        }
        Command::Walk(args) => {
            panoptes::logging::init(&log_format, "warn")?;
            let mibs = install_mibs(args.mib_dirs.as_deref(), &settings);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(panoptes::snmp::walk_cli::run(
                args,
                &mibs,
                &mut std::io::stdout().lock(),
            ))
        }
        Command::Mib {
            command: MibCommand::Translate(args),
        } => {
            panoptes::logging::init(&log_format, "warn")?;
            let mibs = install_mibs(args.dirs.as_deref(), &settings);
            panoptes::mib::cli::translate(&mibs, &args, &mut std::io::stdout().lock())
        }
        Command::Topic { command } => {
            let client = NodeClient::new(&settings.http)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match command {
                TopicCommand::Tail {
                    topic,
                    from_beginning,
                    max,
                } => client.tail(&topic, from_beginning, max, &mut out),
                TopicCommand::List => client.topics(&mut out),
            }
        }
        Command::Plugin {
            command: PluginCommand::Run(args),
        } => {
            panoptes::logging::init(&log_format, &settings.log.level)?;
            install_mibs(None, &settings);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut out = std::io::stdout().lock();
            rt.block_on(panoptes::plugins::one_shot::run_cli(
                args,
                &settings.snmp,
                &mut out,
            ))
        }
        Command::Resources {
            command: ResourcesCommand::List { json },
        } => {
            let client = NodeClient::new(&settings.http)?;
            client.resources(json, &mut std::io::stdout().lock())
        }
        Command::Cluster {
            command: ClusterCommand::Status { json },
        } => {
            let client = NodeClient::new(&settings.http)?;
            client.cluster(json, &mut std::io::stdout().lock())
        }
        Command::Config { .. }
        | Command::Completions { .. }
        | Command::Manpages { .. }
        | Command::Mib {
            command: MibCommand::Check(_),
        } => Ok(()),
    }
}

/// Loads the MIBs (`-M` dirs first, then `[mibs] dirs`, then the built-in ones) and makes
/// them the process's, so DSL documents resolve names with them; what fails to load is a
/// warning (`panoptes config check` lists it too), the rest is used.
fn install_mibs(extra: Option<&str>, settings: &Settings) -> std::sync::Arc<panoptes::mib::Mibs> {
    let mibs = std::sync::Arc::new(panoptes::mib::cli::load(extra, &settings.mibs.dirs));
    for problem in mibs.problems() {
        panoptes::events::MibModuleFailed { problem }.emit();
    }
    panoptes::mib::install(mibs.clone());
    mibs
}

/// `panoptes config check`: every problem on stdout, a summary on stderr, exit 1 on any.
fn config_check(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let report = panoptes::config_check::check(file);
    for problem in &report.problems {
        println!("{problem}");
    }
    eprintln!("{}", report.summary());
    if report.problems.is_empty() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
