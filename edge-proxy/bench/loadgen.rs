//! Load generator and upstream for `bench/run.sh`: one program so the TLS stack on both
//! ends is the same whichever proxy (or none) sits between them.
//!
//! Protocol over TLS: the client writes a big-endian u64 `n`, the server answers `n` bytes;
//! with the top bit set, the server then closes. `serve` listens on two ports, one expecting a
//! PROXY v2 header first.
//!
//! The connection-rate test lets the server close first, as an HTTP server with
//! `Connection: close` does: TIME_WAIT then sits on listening ports, and tens of thousands of
//! short connections do not exhaust the ephemeral ports of the client and the proxy (which
//! otherwise slows every later connect and makes the figures drift).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use protostar_edge::proxy_protocol::{Decoded, decode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// TLS upstream: `plain` without, `pp` with a PROXY v2 header. Writes its cert to `cert`.
    Serve {
        plain: SocketAddr,
        pp: SocketAddr,
        cert: PathBuf,
    },
    /// Throughput of one established connection downloading `mib` MiB, best of `rounds`.
    Bulk {
        addr: SocketAddr,
        sni: String,
        cert: PathBuf,
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// New TLS connections per second (handshake + 1-byte exchange + close).
    Rate {
        addr: SocketAddr,
        sni: String,
        cert: PathBuf,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Round-trip latency of 1-byte requests on one connection: p50 and p99 in µs.
    Latency {
        addr: SocketAddr,
        sni: String,
        cert: PathBuf,
        #[arg(long, default_value_t = 20000)]
        count: usize,
    },
    /// Opens `count` TLS connections, exchanges a byte on each, then holds them.
    Idle {
        addr: SocketAddr,
        sni: String,
        cert: PathBuf,
        #[arg(long, default_value_t = 10000)]
        count: usize,
        #[arg(long, default_value_t = 60)]
        hold_secs: u64,
    },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Serve { plain, pp, cert } => serve(plain, pp, cert).await,
        Cmd::Bulk {
            addr,
            sni,
            cert,
            mib,
            rounds,
        } => {
            let c = connector(&cert)?;
            let mut best = 0f64;
            for _ in 0..rounds {
                let mut s = open(&c, addr, &sni).await?;
                let started = Instant::now();
                let total = fetch(&mut s, mib << 20).await?;
                let rate = total as f64 / started.elapsed().as_secs_f64() / f64::from(1 << 20);
                best = best.max(rate);
            }
            println!("{best:.0}");
            Ok(())
        }
        Cmd::Rate {
            addr,
            sni,
            cert,
            secs,
            concurrency,
        } => {
            let c = connector(&cert)?;
            let done = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            let until = Instant::now() + Duration::from_secs(secs);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..concurrency {
                let (c, sni, done, errors) = (
                    c.clone(),
                    sni.clone(),
                    Arc::clone(&done),
                    Arc::clone(&errors),
                );
                tasks.spawn(async move {
                    while Instant::now() < until {
                        let r = async {
                            let mut s = open(&c, addr, &sni).await?;
                            fetch(&mut s, CLOSE_AFTER | 1).await?;
                            let mut rest = Vec::new();
                            // The server's close_notify and FIN.
                            let _ = s.read_to_end(&mut rest).await;
                            anyhow::Ok(())
                        }
                        .await;
                        let counter = if r.is_ok() { &done } else { &errors };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            let n = done.load(Ordering::Relaxed);
            let e = errors.load(Ordering::Relaxed);
            if e > 0 {
                eprintln!("rate: {e} failed connections");
            }
            println!("{:.0}", n as f64 / secs as f64);
            Ok(())
        }
        Cmd::Latency {
            addr,
            sni,
            cert,
            count,
        } => {
            let c = connector(&cert)?;
            let mut s = open(&c, addr, &sni).await?;
            for _ in 0..1000 {
                fetch(&mut s, 1).await?;
            }
            let mut times = Vec::with_capacity(count);
            for _ in 0..count {
                let started = Instant::now();
                fetch(&mut s, 1).await?;
                times.push(started.elapsed());
            }
            times.sort();
            let pct = |p: usize| {
                times
                    .get(times.len() * p / 100)
                    .copied()
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1e6
            };
            println!("{:.1} {:.1}", pct(50), pct(99));
            Ok(())
        }
        Cmd::Idle {
            addr,
            sni,
            cert,
            count,
            hold_secs,
        } => {
            let c = connector(&cert)?;
            let sem = Arc::new(tokio::sync::Semaphore::new(64));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..count {
                let (c, sni, sem) = (c.clone(), sni.clone(), Arc::clone(&sem));
                tasks.spawn(async move {
                    let permit = sem.acquire_owned().await?;
                    let mut s = open(&c, addr, &sni).await?;
                    fetch(&mut s, 1).await?;
                    drop(permit);
                    anyhow::Ok(s)
                });
            }
            let mut held = Vec::with_capacity(count);
            while let Some(r) = tasks.join_next().await {
                held.push(r??);
            }
            println!("ready {}", held.len());
            tokio::time::sleep(Duration::from_secs(hold_secs)).await;
            Ok(())
        }
    }
}

fn connector(cert: &PathBuf) -> anyhow::Result<TlsConnector> {
    let der = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(der))?;
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(cfg)))
}

async fn open(
    c: &TlsConnector,
    addr: SocketAddr,
    sni: &str,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(c.connect(ServerName::try_from(sni.to_owned())?, tcp)
        .await?)
}

/// Request flag: close the connection after answering.
const CLOSE_AFTER: u64 = 1 << 63;

async fn fetch(
    s: &mut tokio_rustls::client::TlsStream<TcpStream>,
    request: u64,
) -> anyhow::Result<u64> {
    s.write_all(&request.to_be_bytes()).await?;
    let n = request & !CLOSE_AFTER;
    s.flush().await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < n {
        let want = usize::try_from((n - got).min(buf.len() as u64))?;
        let r = s.read(buf.get_mut(..want).unwrap_or_default()).await?;
        if r == 0 {
            bail!("server closed after {got} of {n} bytes");
        }
        got += r as u64;
    }
    Ok(got)
}

async fn serve(plain: SocketAddr, pp: SocketAddr, cert_out: PathBuf) -> anyhow::Result<()> {
    let ck = rcgen::generate_simple_self_signed(vec![
        "admin.example.com".to_owned(),
        "*.example.com".to_owned(),
    ])?;
    std::fs::write(&cert_out, ck.cert.der())?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)?;
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let (a, b) = (
        TcpListener::bind(plain).await?,
        TcpListener::bind(pp).await?,
    );
    println!("serving");
    tokio::try_join!(
        accept(a, acceptor.clone(), false),
        accept(b, acceptor, true)
    )?;
    Ok(())
}

async fn accept(l: TcpListener, acceptor: TlsAcceptor, pp: bool) -> anyhow::Result<()> {
    loop {
        let (s, _) = l.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = answer(s, acceptor, pp).await;
        });
    }
}

async fn answer(mut s: TcpStream, acceptor: TlsAcceptor, pp: bool) -> anyhow::Result<()> {
    s.set_nodelay(true)?;
    if pp {
        let mut head = vec![0u8; 16];
        s.read_exact(&mut head).await?;
        let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
        let mut rest = vec![0u8; len];
        s.read_exact(&mut rest).await?;
        head.extend(rest);
        if !matches!(decode(&head)?, Decoded::Proxy { .. }) {
            bail!("expected a PROXY command");
        }
    }
    let mut tls = acceptor.accept(s).await?;
    let zeros = vec![0u8; 64 * 1024];
    loop {
        let mut n = [0u8; 8];
        if tls.read_exact(&mut n).await.is_err() {
            return Ok(());
        }
        let request = u64::from_be_bytes(n);
        let mut left = request & !CLOSE_AFTER;
        while left > 0 {
            let chunk = usize::try_from(left.min(zeros.len() as u64))?;
            tls.write_all(zeros.get(..chunk).unwrap_or_default())
                .await?;
            left -= chunk as u64;
        }
        tls.flush().await?;
        if request & CLOSE_AFTER != 0 {
            tls.shutdown().await?;
            return Ok(());
        }
    }
}
