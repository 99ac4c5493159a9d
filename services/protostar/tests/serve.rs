//! The real `protostar` binary: it starts, answers on both listeners, stops cleanly on SIGTERM,
//! and refuses bad configuration with messages that name the key.

mod common;

use common::{DataDir, data_dir};
use kernel::testing::TestDb;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_protostar");

struct Running {
    child: Child,
    public: String,
    admin: String,
    /// The process's data folder, removed after `drop` has stopped the process.
    _data: DataDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_env(cmd: &mut Command, db: &TestDb, data: &std::path::Path) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PROTOSTAR_PUBLIC_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_ADMIN_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_DATABASE__URL", &db.url)
        .env("PROTOSTAR_DATA_DIR", data);
}

/// Starts `serve --target all` and reads its JSON log until the "listening" line.
fn start(db: &TestDb) -> Running {
    start_with(db, &[])
}

fn start_with(db: &TestDb, extra: &[(&str, &str)]) -> Running {
    let data = data_dir("serve");
    let mut cmd = Command::new(BIN);
    base_env(&mut cmd, db, &data);
    cmd.envs(extra.iter().copied());
    let mut child = cmd
        .args(["serve", "--target", "all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start protostar");
    let stdout = child.stdout.take().unwrap();
    // Held from here on, so that a start that fails below still stops the process and removes
    // its folder.
    let mut running = Running {
        child,
        public: String::new(),
        admin: String::new(),
        _data: data,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
            {
                let _ = tx.send((
                    v["public"].as_str().unwrap().to_owned(),
                    v["admin"].as_str().unwrap().to_owned(),
                ));
            }
        }
    });
    (running.public, running.admin) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("protostar never said it was listening");
    running
}

fn client() -> reqwest::Client {
    kernel::http::client(Duration::from_secs(10))
}

/// `/readyz` until it answers 200 (migrations run in the background after "listening") or the
/// limit passes; returns the last answer.
async fn ready(addr: &str, limit: Duration) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + limit;
    loop {
        let res = client()
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if status == 200 || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serves_health_on_both_listeners_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let mut p = start(&db);
    for addr in [&p.public, &p.admin] {
        let res = client()
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (status, body) = ready(addr, Duration::from_secs(30)).await;
        assert_eq!(status, 200, "{body}");
    }
    let res = client()
        .get(format!("http://{}/api/nothing-here", p.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let metrics = client()
        .get(format!("http://{}/metrics", p.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("protostar_http_requests_total"),
        "{metrics}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = p.child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "protostar did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_and_fail(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run protostar");
    assert!(
        !out.status.success(),
        "expected a failure, got {}",
        out.status
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_is_refused_naming_every_key() {
    let err = run_and_fail(
        &["check-config"],
        &[
            ("PROTOSTAR_DATABSE__URL", "postgres://x"),
            ("PROTOSTAR_BROKER__PREFETCH", "lots"),
            ("PROTOSTAR_LOG__FORMAT", "json"),
        ],
    );
    assert!(
        err.contains("`databse`") && err.contains("PROTOSTAR_DATABSE"),
        "{err}"
    );
    assert!(
        err.contains("broker.prefetch") || err.contains("broker.url"),
        "{err}"
    );

    let err = run_and_fail(&["serve"], &[("PROTOSTAR_LOG__FILTER", "info,[[[")]);
    assert!(err.contains("log.filter"), "{err}");

    let err = run_and_fail(
        &["serve"],
        &[("PROTOSTAR_CONFIG", "/nonexistent/protostar.toml")],
    );
    assert!(err.contains("/nonexistent/protostar.toml"), "{err}");

    let err = run_and_fail(&["serve", "--target", "chta"], &[]);
    assert!(err.contains("unknown target `chta`"), "{err}");

    let err = run_and_fail(&["migrate"], &[]);
    assert!(err.contains("database.url"), "{err}");
}

#[test]
fn a_busy_port_names_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = run_and_fail(
        &["serve"],
        &[
            ("PROTOSTAR_PUBLIC_ADDR", addr.as_str()),
            ("PROTOSTAR_ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    assert!(err.contains("public_addr") && err.contains(&addr), "{err}");
}

#[tokio::test]
async fn migrate_applies_and_exits() {
    let db = TestDb::new().await;
    let out = Command::new(BIN)
        .env_clear()
        .env("PROTOSTAR_DATABASE__URL", &db.url)
        .args(["migrate", "--target", "all"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn readiness_names_the_broker_when_it_is_down() {
    let db = TestDb::new().await;
    let up = start_with(
        &db,
        &[(
            "PROTOSTAR_BROKER__URL",
            &kernel::testing::stack_env("PROTOSTAR_TEST_BROKER_URL"),
        )],
    );
    let (status, body) = ready(&up.public, Duration::from_secs(30)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["broker"]["status"], "ok", "{body}");

    // Nothing listens on port 1: the process still starts, and says what is missing.
    let down = start_with(
        &db,
        &[(
            "PROTOSTAR_BROKER__URL",
            "amqp://guest:guest@127.0.0.1:1/%2f",
        )],
    );
    // Everything else becomes ready; the broker never does.
    let (status, body) = ready(&down.public, Duration::from_secs(5)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["broker"]["status"], "failing", "{body}");
}
