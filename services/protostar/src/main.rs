//! `protostar`: the whole platform in one binary. `serve --target all` runs every service in one
//! process (a single machine); `serve --target chat` runs one (a Kubernetes Deployment).

mod admin;
mod jobs;
mod serve;
mod targets;

use clap::{Parser, Subcommand};
use kernel::config::ConfigSource;
use kernel::telemetry::{LogConfig, init_logging};
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the gateway allocates on every request it forwards, and
/// with glibc, malloc and free were 13 % of its profile under load. mimalloc gave 14–24 % more
/// requests a second in two paired runs, for about 10 MiB more resident memory
/// (docs/benchmarks.md, Gateway).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "protostar",
    version,
    about = "Protostar — Forge Your Future: a career chatbot platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the given targets (comma-separated, or `all`) until SIGTERM.
    Serve {
        #[arg(long, default_value = "all")]
        target: Vec<String>,
    },
    /// Apply the database migrations of the given targets, then exit (the Kubernetes Job).
    Migrate {
        #[arg(long, default_value = "all")]
        target: Vec<String>,
    },
    /// List the targets this binary can run.
    Targets,
    /// Read and check the configuration, report every problem, and exit.
    CheckConfig,
    /// One-off administration (`admin create-admin --email ...` bootstraps the first admin).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run one periodic job (`noti-digest`), then exit: what the CronJobs call.
    Job { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every line's hash, the hash chain and the sequence; name the first broken line.
    Verify { dir: std::path::PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("protostar: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Config errors name their keys; print them plainly where a person will look.
            eprintln!("protostar: {e:#}");
            tracing::error!(error = format!("{e:#}"), "exiting");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let registry = targets::registry();
    if let Command::Targets = cli.command {
        println!("{:<10} every target below, in one process", targets::ALL);
        for t in &registry {
            println!("{:<10} {}", t.name, t.about);
        }
        println!("\njobs (`protostar job NAME`):");
        for (name, about) in jobs::JOBS {
            println!("{name:<12} {about}");
        }
        return Ok(());
    }
    if let Command::Audit(AuditCommand::Verify { dir }) = &cli.command {
        let intact = audit::verify::verify(dir)?;
        println!(
            "{}: {} lines in {} files, chain intact",
            dir.display(),
            intact.lines,
            intact.files
        );
        return Ok(());
    }
    let config = ConfigSource::from_env()?;
    let log: LogConfig = config.section("log")?;
    init_logging(&log)?;
    serve::validate(&config)?;
    match cli.command {
        Command::Serve { target } => {
            let selected = targets::select(&registry, &target).map_err(anyhow::Error::msg)?;
            serve::run(config, selected).await
        }
        Command::Migrate { target } => {
            let selected = targets::select(&registry, &target).map_err(anyhow::Error::msg)?;
            serve::migrate(config, selected).await
        }
        Command::Admin(command) => admin::run(config, command).await,
        Command::Job { name } => jobs::run(config, &name).await,
        Command::CheckConfig => {
            println!("configuration is valid");
            Ok(())
        }
        Command::Targets | Command::Audit(_) => Ok(()),
    }
}
