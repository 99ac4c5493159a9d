//! Starting the real `protostar` binary for the end-to-end tests: a command with a test
//! database and data folder, `serve --target ...` read until its "listening" log line, and a
//! poll helper. One copy, so that every binary test starts it the same way.
#![allow(dead_code)]

use kernel::testing::TestDb;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_protostar");
pub const PASSWORD: &str = "a long enough passphrase";

/// A running `serve`; killed when dropped. Addresses are `http://` URLs.
pub struct Server {
    child: Child,
    pub public: String,
    pub admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with nothing but a test database, a data folder and free ports.
pub fn command(db: &TestDb, data: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PROTOSTAR_PUBLIC_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_ADMIN_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_DATABASE__URL", &db.url)
        .env("PROTOSTAR_DATA_DIR", data)
        // The flows are under test here, not the hashing cost.
        .env("PROTOSTAR_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("PROTOSTAR_AUTH__ARGON2_ITERATIONS", "1");
    cmd
}

/// A fresh data folder under the temp dir.
pub fn data_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "protostar-{label}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `serve --target all`.
pub fn serve(db: &TestDb, data: &std::path::Path) -> Server {
    serve_targets(db, data, "all", &[])
}

/// `serve --target <targets>` with extra variables, once it logs that it listens. Its
/// warnings and errors are echoed into the test's output.
pub fn serve_targets(
    db: &TestDb,
    data: &std::path::Path,
    targets: &str,
    env: &[(&str, String)],
) -> Server {
    let mut child = command(db, data)
        .args(["serve", "--target", targets])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start protostar");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"WARN\"") || line.contains("\"ERROR\"") {
                eprintln!("protostar: {line}");
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "listening"
            {
                let _ = tx.send((
                    v["public"].as_str().unwrap_or_default().to_owned(),
                    v["admin"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    });
    let (public, admin) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("protostar never said it was listening");
    Server {
        child,
        public: format!("http://{public}"),
        admin: format!("http://{admin}"),
    }
}

/// Polls `check` until it holds; fails the test after `limit`.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
