//! Reload under load: established connections keep flowing, new ones are never refused, and
//! the new routes apply to new connections. Drain on shutdown honours its deadline.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use protostar_edge::config::{Config, RouteConfig};
use protostar_edge::{Proxy, config};

/// Version B of the config sends `ops.example.com` to the admin upstream; in version A it
/// falls under the public wildcard.
fn version(base: &Config, b: bool) -> Config {
    let mut c = base.clone();
    if b {
        c.routes.push(RouteConfig {
            name: "ops".into(),
            sni: vec!["ops.example.com".into()],
            upstream: "admin".into(),
            proxy_protocol: true,
            max_connections: 100,
            reserved: 0,
        });
        c.limits.idle_timeout_ms = 300_000;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_drops_and_refuses_nothing() -> Result<()> {
    let admin =
        TlsUpstream::start("admin", &["admin.example.com", "ops.example.com"], true).await?;
    let public = TlsUpstream::start("public", &["*.example.com"], true).await?;
    let base = config::Config::clone(&common::config(admin.addr, public.addr)?);
    let proxy = Arc::new(Proxy::start(version(&base, false)).await?);
    let addr = proxy
        .listen_addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("listener"))?;
    let trusted = vec![admin.cert.clone(), public.cert.clone()];

    let stop = Arc::new(AtomicBool::new(false));
    let echoes = Arc::new(AtomicUsize::new(0));
    let fresh = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    // Long-lived sessions echoing throughout.
    for i in 0..12 {
        let (stop, echoes, trusted) = (Arc::clone(&stop), Arc::clone(&echoes), trusted.clone());
        workers.push(std::thread::spawn(move || -> Result<()> {
            let name = if i % 2 == 0 {
                "admin.example.com"
            } else {
                "www.example.com"
            };
            let (_, mut session) = open_tls(addr, name, &trusted, &ClientOpts::default())?;
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                session
                    .echo(format!("{i}:{n}").as_bytes())
                    .map_err(|e| e.context(format!("session {i} after {n} echoes")))?;
                echoes.fetch_add(1, Ordering::Relaxed);
                n += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        }));
    }
    // New connections, back to back, each of which must succeed.
    for _ in 0..2 {
        let (stop, fresh, trusted) = (Arc::clone(&stop), Arc::clone(&fresh), trusted.clone());
        workers.push(std::thread::spawn(move || -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                tls_via(addr, "www.example.com", &trusted, &ClientOpts::default())
                    .map_err(|e| e.context("new connection during reloads"))?;
                fresh.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }

    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.reload(version(&base, i % 2 == 0))?;
    }
    // End on version B and prove it applies to new connections.
    proxy.reload(version(&base, true))?;
    let t = trusted.clone();
    let label = blocking(move || {
        Ok(
            tls_via(addr, "ops.example.com", &t, &ClientOpts::default())?
                .label()
                .to_owned(),
        )
    })
    .await?;
    assert_eq!(label, "admin", "the reloaded route applies");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    eprintln!(
        "{} echoes on established sessions, {} new connections",
        echoes.load(Ordering::Relaxed),
        fresh.load(Ordering::Relaxed)
    );
    assert!(
        echoes.load(Ordering::Relaxed) > 12 * 10,
        "established sessions kept flowing"
    );
    assert!(
        fresh.load(Ordering::Relaxed) > 5,
        "new connections kept being accepted"
    );
    let text = scrape(proxy.admin_addr().ok_or_else(|| anyhow::anyhow!("admin"))?)?;
    assert_eq!(metric(&text, "edge_reloads_total{result=\"ok\"}"), 21.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reload_keeps_the_running_config() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let mut bad = common::config(stack.admin.addr, stack.public.addr)?;
    bad.routes.push(RouteConfig {
        name: "x".into(),
        sni: vec!["x.org".into()],
        upstream: "missing".into(),
        proxy_protocol: false,
        max_connections: 1,
        reserved: 0,
    });
    assert!(stack.proxy.reload(bad).is_err());
    let (addr, trusted) = (stack.addr(), stack.trusted());
    blocking(move || tls_via(addr, "admin.example.com", &trusted, &ClientOpts::default())).await?;
    assert_eq!(
        metric(&stack.metrics()?, "edge_reloads_total{result=\"error\"}"),
        1.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_cuts_at_the_deadline() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    let (_, mut session) =
        blocking(move || open_tls(addr, "admin.example.com", &trusted, &ClientOpts::default()))
            .await?;
    let started = Instant::now();
    let cut = stack.proxy.shutdown(Duration::from_millis(1500)).await;
    let took = started.elapsed();
    assert_eq!(cut, 1, "the open session was cut at the deadline");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(15),
        "drain took {took:?}"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer accepting"
    );
    assert!(
        blocking(move || session.echo(b"after")).await.is_err(),
        "session closed"
    );
    Ok(())
}
