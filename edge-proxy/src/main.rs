//! `protostar-edge --config edge.toml`: serve until SIGTERM/SIGINT (drain, then exit);
//! SIGHUP re-reads the config file. `--check` validates a config and exits.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use protostar_edge::{Config, Proxy};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(version, about = "L4 TLS-passthrough edge proxy routing by SNI")]
struct Args {
    /// Path to the TOML configuration.
    #[arg(long, short, env = "PROTOSTAR_EDGE_CONFIG")]
    config: PathBuf,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging();
    let config = Config::load(&args.config).context("loading configuration")?;
    if args.check {
        protostar_edge::runtime::Runtime::compile(config, &Default::default())
            .context("checking configuration")?;
        println!("configuration ok");
        return Ok(());
    }
    raise_fd_limit();
    // The control plane only (signals, reloads, health checks, metrics): connections are
    // served by the proxy's own worker threads, `threads` of them.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args, config))
}

async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let drain = config.drain_timeout();
    let proxy = Proxy::start(config).await?;
    for addr in proxy.listen_addrs() {
        tracing::info!(%addr, "listening");
    }
    if let Some(addr) = proxy.admin_addr() {
        tracing::info!(%addr, "admin listening");
    }
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut drain = drain;
    loop {
        tokio::select! {
            _ = hup.recv() => match Config::load(&args.config) {
                Ok(c) => {
                    let next_drain = c.drain_timeout();
                    match proxy.reload(c) {
                        Ok(()) => drain = next_drain,
                        Err(e) => tracing::error!(error = %e, "reload rejected; keeping the running configuration"),
                    }
                }
                Err(e) => {
                    proxy.metrics().reloaded(false);
                    tracing::error!(error = %e, "reload rejected; keeping the running configuration");
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    proxy.shutdown(drain).await;
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .init();
}

/// Each proxied connection needs two descriptors (three or more with splice): take the hard
/// limit the service manager granted rather than the small default soft one.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
