//! Each SNI reaches its own upstream, proved by the certificate the client sees; the default
//! action handles unknown and missing names; PROXY v2 carries the client's address.

mod common;

use common::*;
use protostar_edge::config::DefaultAction;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_name_reaches_its_upstream_with_the_client_address() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    let cases = [
        ("admin.example.com", "admin"),
        ("www.example.com", "public"),
        ("API.example.com", "public"),
    ];
    for (name, label) in cases {
        let (t, source) = (trusted.clone(), Some("127.0.0.7".parse()?));
        let seen = blocking(move || {
            tls_via(
                addr,
                name,
                &t,
                &ClientOpts {
                    source,
                    ..ClientOpts::default()
                },
            )
        })
        .await?;
        let want_cert = if label == "admin" {
            &stack.admin.cert
        } else {
            &stack.public.cert
        };
        assert_eq!(
            &seen.cert, want_cert,
            "{name} must be answered by the {label} upstream"
        );
        assert_eq!(seen.label(), label);
        assert_eq!(
            seen.reported_client(),
            seen.local.to_string(),
            "PROXY v2 source for {name}"
        );
        assert!(seen.local.ip().to_string() == "127.0.0.7");
    }
    let text = blocking({
        let admin = stack.proxy.admin_addr();
        move || scrape(admin.ok_or_else(|| anyhow::anyhow!("admin"))?)
    })
    .await?;
    assert_eq!(
        metric(&text, "edge_connections_total{route=\"admin\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "edge_connections_total{route=\"public\"}"),
        2.0,
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_name_is_rejected_by_default() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    let r =
        blocking(move || tls_via(addr, "www.other.org", &trusted, &ClientOpts::default())).await;
    let err = r.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        err.contains("UnrecognisedName") || err.contains("nrecogni"),
        "expected an unrecognized_name alert, got {err:?}"
    );
    // Deeper names are not covered by the single-label wildcard either.
    let trusted = stack.trusted();
    assert!(
        blocking(move || tls_via(addr, "a.b.example.com", &trusted, &ClientOpts::default()))
            .await
            .is_err()
    );
    let text = stack.metrics()?;
    assert_eq!(
        metric(&text, "edge_rejections_total{reason=\"no_route\"}"),
        2.0,
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_route_takes_unknown_and_missing_names() -> Result<()> {
    // The fallback's certificate also covers 127.0.0.1, so a client connecting by IP (which
    // sends no SNI at all) can verify it.
    let fallback = TlsUpstream::start("fallback", &["www.other.org", "127.0.0.1"], false).await?;
    let fb_addr = fallback.addr;
    let stack = Stack::start(move |c| {
        c.upstreams.push(protostar_edge::config::UpstreamConfig {
            name: "fallback".into(),
            addresses: vec![fb_addr],
            balance: Default::default(),
            health: protostar_edge::config::HealthConfig {
                interval_ms: 0,
                ..Default::default()
            },
        });
        c.routes.push(protostar_edge::config::RouteConfig {
            name: "fallback".into(),
            sni: vec![],
            upstream: "fallback".into(),
            proxy_protocol: false,
            max_connections: 100,
            reserved: 0,
        });
        c.default = DefaultAction::Route {
            route: "fallback".into(),
        };
    })
    .await?;
    let addr = stack.addr();
    for name in ["www.other.org", "127.0.0.1"] {
        let trusted = vec![fallback.cert.clone()];
        let seen = blocking(move || tls_via(addr, name, &trusted, &ClientOpts::default())).await?;
        assert_eq!(seen.cert, fallback.cert, "{name}");
        assert_eq!(seen.line, "fallback -", "no PROXY header on this route");
    }
    let text = stack.metrics()?;
    assert_eq!(
        metric(&text, "edge_connections_total{route=\"fallback\"}"),
        2.0,
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splice_copy_mode_relays_too() -> Result<()> {
    let stack = Stack::start(|c| c.copy = protostar_edge::config::CopyMode::Splice).await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    let seen =
        blocking(move || tls_via(addr, "admin.example.com", &trusted, &ClientOpts::default()))
            .await?;
    assert_eq!(seen.cert, stack.admin.cert);
    Ok(())
}
