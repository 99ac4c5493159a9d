//! Per-source, per-route and reserved budgets, and upstream selection with health checks.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use protostar_edge::Proxy;
use protostar_edge::clienthello::synth::HelloSpec;
use protostar_edge::config::{Balance, HealthConfig, UpstreamConfig};

/// A connection that started a hello and went quiet: it holds a per-source slot.
fn half_hello(addr: SocketAddr, source: &str) -> Result<std::net::TcpStream> {
    let mut s = connect_from(Some(source.parse()?), addr)?;
    let hello = HelloSpec::new("www.example.com").records(16384);
    s.write_all(hello.get(..20).unwrap_or_default())?;
    Ok(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_concurrency_and_rate_are_capped() -> Result<()> {
    let stack = Stack::start(|c| {
        c.limits.per_ip_max_connections = 3;
        c.limits.per_ip_rate = 0.1;
        c.limits.handshake_timeout_ms = 20_000;
        c.limits.per_ip_burst = 5.0;
    })
    .await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    let admin = stack
        .proxy
        .admin_addr()
        .ok_or_else(|| anyhow::anyhow!("admin"))?;
    let admitted = blocking(move || {
        // Four from one source: one is closed before a byte is read. Which one is up to the
        // kernel, which spreads connections over the workers' accept queues.
        let mut four: Vec<_> = (0..4)
            .map(|_| half_hello(addr, "127.0.0.21"))
            .collect::<Result<_>>()?;
        std::thread::sleep(Duration::from_millis(300));
        let mut held = Vec::new();
        let mut refused = 0;
        for mut s in four.drain(..) {
            if closed_within(&mut s, Duration::from_secs(1)) {
                refused += 1;
            } else {
                held.push(s);
            }
        }
        assert_eq!(refused, 1, "over the per-source cap");
        // Another source is unaffected.
        let other = ClientOpts {
            source: Some("127.0.0.22".parse()?),
            ..ClientOpts::default()
        };
        tls_via(addr, "www.example.com", &trusted, &other)?;
        drop(held);
        // Wait until the proxy has seen those three close and freed their slots.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !scrape(admin)?.contains("edge_handshakes_pending 0") {
            anyhow::ensure!(Instant::now() < deadline, "held connections never released");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        // Burst of 5 tokens, three spent above (a refused connection spends none); the
        // bucket refills one token per 10 s, so at most one more may appear meanwhile.
        let mut admitted = Vec::new();
        loop {
            let mut s = half_hello(addr, "127.0.0.21")?;
            if closed_within(&mut s, Duration::from_secs(3)) {
                break;
            }
            admitted.push(s);
            anyhow::ensure!(admitted.len() <= 3, "rate limit never applied");
        }
        assert!(
            (2..=3).contains(&admitted.len()),
            "admitted {}",
            admitted.len()
        );
        Ok(admitted.len())
    })
    .await?;
    // The last one was refused for the rate, unless a token came back meanwhile (a slow run):
    // then three are held and the concurrency cap, checked first, refused it.
    let (concurrency, rate) = if admitted == 3 {
        (2.0, 0.0)
    } else {
        (1.0, 1.0)
    };
    let text = stack.metrics()?;
    assert_eq!(
        metric(
            &text,
            "edge_rejections_total{reason=\"per_ip_concurrency\"}"
        ),
        concurrency,
        "{text}"
    );
    assert_eq!(
        metric(&text, "edge_rejections_total{reason=\"per_ip_rate\"}"),
        rate,
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_public_side_leaves_the_admin_reserve() -> Result<()> {
    let stack = Stack::start(|c| {
        // A shared pool of 3; the admin route reserves 2 slots outside it.
        c.limits.max_connections = 3;
        for r in &mut c.routes {
            if r.name == "admin" {
                (r.max_connections, r.reserved) = (2, 2);
            }
        }
    })
    .await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    let admin = stack
        .proxy
        .admin_addr()
        .ok_or_else(|| anyhow::anyhow!("admin"))?;
    blocking(move || {
        let opts = ClientOpts::default();
        let public: Vec<_> = (0..3)
            .map(|i| open_tls(addr, &format!("p{i}.example.com"), &trusted, &opts))
            .collect::<Result<_>>()?;
        assert!(
            open_tls(addr, "p9.example.com", &trusted, &opts).is_err(),
            "pool is full"
        );
        let admins: Vec<_> = (0..2)
            .map(|_| open_tls(addr, "admin.example.com", &trusted, &opts))
            .collect::<Result<_>>()?;
        assert!(
            open_tls(addr, "admin.example.com", &trusted, &opts).is_err(),
            "admin cap of 2"
        );
        for (_, mut s) in public.into_iter().chain(admins) {
            s.echo(b"still here")?;
        }
        // Once the proxy has seen them close, the public side gets in again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = scrape(admin)?;
            if metric(&text, "edge_connections_active{route=\"public\"}") == 0.0
                && metric(&text, "edge_connections_active{route=\"admin\"}") == 0.0
            {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "connections never released");
            std::thread::sleep(Duration::from_millis(50));
        }
        tls_via(addr, "p0.example.com", &trusted, &opts)?;
        Ok(())
    })
    .await?;
    assert_eq!(
        metric(
            &stack.metrics()?,
            "edge_rejections_total{reason=\"route_full\"}"
        ),
        2.0
    );
    Ok(())
}

async fn two_upstream_proxy(
    balance: Balance,
    first: SocketAddr,
    second: SocketAddr,
) -> Result<Proxy> {
    let admin = TlsUpstream::start("admin", &["admin.example.com"], true).await?;
    let mut cfg = config(admin.addr, first)?;
    cfg.upstreams.retain(|u| u.name != "public");
    cfg.upstreams.push(UpstreamConfig {
        name: "public".into(),
        addresses: vec![first, second],
        balance,
        health: HealthConfig {
            interval_ms: 100,
            timeout_ms: 500,
            fall: 1,
            rise: 1,
        },
    });
    Ok(Proxy::start(cfg).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_between_upstreams() -> Result<()> {
    let a = TlsUpstream::start("a", &["*.example.com"], true).await?;
    let b = TlsUpstream::start("b", &["*.example.com"], true).await?;
    let proxy = two_upstream_proxy(Balance::RoundRobin, a.addr, b.addr).await?;
    let addr = proxy
        .listen_addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("listener"))?;
    let trusted = vec![a.cert.clone(), b.cert.clone()];
    let labels = blocking(move || {
        (0..4)
            .map(|_| {
                Ok(
                    tls_via(addr, "www.example.com", &trusted, &ClientOpts::default())?
                        .label()
                        .to_owned(),
                )
            })
            .collect::<Result<Vec<_>>>()
    })
    .await?;
    assert_eq!(labels.iter().filter(|l| *l == "a").count(), 2, "{labels:?}");
    assert_eq!(labels.iter().filter(|l| *l == "b").count(), 2, "{labels:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_healthy_skips_a_dead_upstream() -> Result<()> {
    // A port that was just free: connecting to it is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let live = TlsUpstream::start("live", &["*.example.com"], true).await?;
    let proxy = two_upstream_proxy(Balance::FirstHealthy, dead, live.addr).await?;
    let addr = proxy
        .listen_addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("listener"))?;
    let admin = proxy.admin_addr().ok_or_else(|| anyhow::anyhow!("admin"))?;
    let trusted = vec![live.cert.clone()];
    blocking(move || {
        // Before the check notices, the failed connect falls through to the next address.
        assert_eq!(
            tls_via(addr, "www.example.com", &trusted, &ClientOpts::default())?.label(),
            "live"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let series = format!("edge_upstream_healthy{{upstream=\"public\",address=\"{dead}\"}}");
        loop {
            let text = scrape(admin)?;
            if text.contains(&format!("{series} 0")) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "dead upstream never marked down:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            tls_via(addr, "www.example.com", &trusted, &ClientOpts::default())?.label(),
            "live"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() -> Result<()> {
    let stack = Stack::start(|c| c.limits.idle_timeout_ms = 1000).await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    blocking(move || {
        let (_, mut busy) = open_tls(addr, "admin.example.com", &trusted, &ClientOpts::default())?;
        let (_, mut quiet) = open_tls(addr, "www.example.com", &trusted, &ClientOpts::default())?;
        // Traffic keeps a connection alive well past the timeout.
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(3000) {
            busy.echo(b"keepalive")?;
            std::thread::sleep(Duration::from_millis(100));
        }
        // The silent one was cut; the proxy closed it, so the echo fails.
        assert!(quiet.echo(b"too late").is_err(), "idle connection survived");
        busy.echo(b"still alive")?;
        Ok(())
    })
    .await
}
