//! The `protostar-operator` binary end to end, over real HTTP: it reads a kubeconfig, takes
//! the leader Lease, serves its probes and metrics, and reconciles a Protostar. The API server
//! is the stand-in (`fake_api`) behind a loopback listener, since no real one can run here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use protostar_operator::fake_api::{FakeApi, collection};
use serde_json::{Value, json};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_leads_serves_metrics_and_reconciles() {
    let fake = FakeApi::default();
    let server = fake.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let server = server.clone();
        async move {
            if uri
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true"))
            {
                // A quiet watch: held open, no events.
                futures::future::pending::<()>().await;
            }
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (code, value) = server.serve(method.as_str(), &uri, body);
            (
                StatusCode::from_u16(code.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(value),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let api_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut ps: Value = serde_norway::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../gitops/instances/homelab/protostar.yaml"
        ))
        .expect("example"),
    )
    .expect("example parses");
    ps["metadata"]["uid"] = json!("smoke-uid");
    ps["metadata"]["generation"] = json!(1);
    fake.insert(ps);

    let dir = std::env::temp_dir().join(format!("protostar-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: http://127.0.0.1:{api_port}\n\
         contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: nobody\n    namespace: default\n\
         current-context: stand-in\nusers:\n- name: nobody\n  user: {{}}\n"
    )).expect("kubeconfig");
    let http_port = free_port();
    let _child = Killed(
        Command::new(env!("CARGO_BIN_EXE_protostar-operator"))
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAMESPACE", "protostar-system")
            .env("POD_NAME", "smoke-0")
            .env("OPERATOR_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("RUST_LOG", "info")
            .stdout(
                std::fs::File::create(dir.join("log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .stderr(Stdio::null())
            .spawn()
            .expect("the operator binary starts"),
    );

    let protostars = collection("protostar.dev/v1alpha1", "protostars", "protostar");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = Value::Null;
    while Instant::now() < deadline {
        status = fake
            .get(&protostars, "home")
            .map(|p| p["status"].clone())
            .unwrap_or(Value::Null);
        if status["observedGeneration"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert_eq!(
        status["observedGeneration"], 1,
        "the binary reconciled the example: {status}\n{log}"
    );
    let lease = fake.get(
        &collection("coordination.k8s.io/v1", "leases", "protostar-system"),
        "protostar-operator",
    );
    assert_eq!(
        lease.map(|l| l["spec"]["holderIdentity"].clone()),
        Some(json!("smoke-0"))
    );

    let health = tokio::task::spawn_blocking(move || http_get(http_port, "/healthz"))
        .await
        .expect("join");
    assert!(health.is_some_and(|h| h.starts_with("HTTP/1.1 200")));
    let metrics = tokio::task::spawn_blocking(move || http_get(http_port, "/metrics"))
        .await
        .expect("join")
        .unwrap_or_default();
    assert!(
        metrics.contains("protostar_operator_reconciles_total"),
        "{metrics}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
