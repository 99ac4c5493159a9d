//! The web side through real listeners: the gateway answers the widget, pages and assets itself
//! (no upstream sees them), keeps `/internal/*` and the other listener's pages out, and forwards
//! the admin pages' sign-in on the admin listener to the auth target's public endpoint.

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use kernel::config::ConfigSource;
use kernel::service::Platform;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn serve(router: Router, platform: &Platform) -> String {
    let app = kernel::http::standard_layers(
        router,
        "test",
        platform.metrics.clone(),
        kernel::http::DEFAULT_BODY_LIMIT,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kernel::http::serve(listener, app, platform.stop.clone()));
    format!("http://{addr}")
}

/// An upstream that names the listener side it is and the path it was sent, and counts requests.
fn echo(side: &'static str, hits: Arc<AtomicUsize>) -> Router {
    Router::new().route(
        "/{*path}",
        any(move |req: Request| {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "side": side, "path": req.uri().path() }))
            }
        }),
    )
}

#[tokio::test]
async fn the_gateway_serves_the_web_itself_and_admins_sign_in_on_the_admin_listener() {
    let stop = CancellationToken::new();
    let platform =
        Platform::from_config(ConfigSource::from_vars(Vec::new()).unwrap(), stop.clone()).unwrap();
    let public_hits = Arc::new(AtomicUsize::new(0));
    let routes = gateway::front(
        &platform,
        gateway::LocalTargets {
            names: vec!["auth"],
            public: echo("public", public_hits.clone()),
            admin: echo("admin", Arc::new(AtomicUsize::new(0))),
        },
    )
    .await
    .unwrap();
    let public = serve(routes.public, &platform).await;
    let admin = serve(routes.admin, &platform).await;
    let c = kernel::http::client(Duration::from_secs(10));

    for (base, path, kind) in [
        (&public, "/widget.js", "text/javascript"),
        (&public, "/dashboard", "text/html"),
        (&public, "/c/ada", "text/html"),
        (&admin, "/admin", "text/html"),
    ] {
        let res = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
    }
    let asset = gateway::web::asset_name("widget-loader.js").unwrap();
    let res = c
        .get(format!("{admin}/admin/assets/{asset}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        public_hits.load(Ordering::SeqCst),
        0,
        "no upstream sees the web"
    );

    for (base, path) in [
        (&public, "/internal/chat/widget-origins"),
        (&admin, "/internal/chat/widget-origins"),
        (&public, "/admin"),
        (&admin, "/dashboard"),
        (&admin, "/widget.js"),
    ] {
        let res = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }

    // The admin pages' sign-in reaches the auth target's public side, as `/api/auth/login`.
    let res = c
        .post(format!("{admin}/admin/api/auth/login"))
        .json(&json!({"email": "root@example.org", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen, json!({"side": "public", "path": "/api/auth/login"}));
    // Other auth paths on the admin listener stay the auth target's admin side.
    let seen: Value = c
        .post(format!("{admin}/admin/api/auth/keys/rotate"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["side"], "admin");
    stop.cancel();
}
