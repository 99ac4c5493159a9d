//! Real peers for noti's tests: an SMTP server (aiosmtpd, installed by `scripts/stack.sh
//! install`) and a local HTTP server that answers like Discord's webhook API. Discord itself
//! cannot run here, so that one is a stand-in: it speaks the same request and response format
//! (JSON `content` + `embeds`, `?wait=true`, 429 with `retry_after` and `Retry-After`).

#![allow(dead_code)]

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kernel::config::ConfigSource;
use kernel::db::Database;
use kernel::testing::TestDb;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kernel::testing::free_port;

/// aiosmtpd on a free loopback port, writing each message it accepts into its own folder.
pub struct Smtp {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Smtp {
    pub fn start(fail_first: u32) -> Self {
        Self::start_with(fail_first, None)
    }

    /// With `tls` (certificate and key PEM files) the server offers STARTTLS.
    pub fn start_with(fail_first: u32, tls: Option<(&std::path::Path, &std::path::Path)>) -> Self {
        let tools =
            std::env::var("PROTOSTAR_TOOLS").unwrap_or_else(|_| "/var/tmp/protostar-tools".into());
        let python = PathBuf::from(tools).join("smtp/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `scripts/stack.sh install smtp`",
            python.display()
        );
        let dir = std::env::temp_dir().join(format!("noti-smtp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/smtp_sink.py");
        let mut child = Command::new(python)
            .args([script, "--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .args(["--fail-first", &fail_first.to_string()])
            .args(
                tls.map(|(c, k)| vec![c.as_os_str().to_owned(), k.as_os_str().to_owned()])
                    .map(|v| vec!["--cert".into(), v[0].clone(), "--key".into(), v[1].clone()])
                    .unwrap_or_default(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Self { port, dir, child }
    }

    /// Every message received so far, decoded by Python's MIME parser: `subject`, `to`,
    /// `rcpt_tos`, `content_type`, `parts` (`type`, `body`).
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
            .collect()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let end = Instant::now() + within;
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > end {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the stand-in answers its next requests.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// 429 with `retry_after` in the body and `Retry-After` in the headers.
    RateLimited {
        secs: f64,
    },
    ServerError,
    NotFound,
    Ok,
}

#[derive(Default)]
struct Inner {
    /// Answers for the next requests, in order; once empty, every request succeeds.
    script: Vec<Answer>,
    requests: usize,
    delivered: Vec<serde_json::Value>,
}

#[derive(Clone)]
pub struct FakeDiscord {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeDiscord {
    pub async fn start(script: Vec<Answer>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            script: script.into_iter().rev().collect(),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/api/webhooks/{id}/{token}", post(webhook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, inner }
    }

    pub fn webhook(&self, id: &str) -> String {
        format!("{}/api/webhooks/{id}/token-{id}", self.base)
    }

    pub fn delivered(&self) -> Vec<serde_json::Value> {
        self.inner.lock().unwrap().delivered.clone()
    }

    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let end = Instant::now() + within;
        loop {
            let d = self.delivered();
            if d.len() >= n || Instant::now() > end {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn webhook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut s = inner.lock().unwrap();
    s.requests += 1;
    let json: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v)
            if headers
                .get("content-type")
                .is_some_and(|c| c == "application/json") =>
        {
            v
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                r#"{"message":"Cannot send an empty message","code":50006}"#,
            )
                .into_response();
        }
    };
    match s.script.pop().unwrap_or(Answer::Ok) {
        Answer::RateLimited { secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", format!("{}", secs.ceil() as u64)),
                ("content-type", "application/json".into()),
            ],
            format!(
                r#"{{"message":"You are being rate limited.","retry_after":{secs},"global":false}}"#
            ),
        )
            .into_response(),
        Answer::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "upstream trouble").into_response()
        }
        Answer::NotFound => (
            StatusCode::NOT_FOUND,
            r#"{"message":"Unknown Webhook","code":10015}"#,
        )
            .into_response(),
        Answer::Ok => {
            let bad = json.get("content").is_none() && json.get("embeds").is_none();
            if bad || query.get("wait").map(String::as_str) != Some("true") {
                return StatusCode::BAD_REQUEST.into_response();
            }
            s.delivered.push(json.clone());
            axum::Json(serde_json::json!({"id": s.delivered.len().to_string(), "content": json["content"]})).into_response()
        }
    }
}

fn db_url(db: &Database) -> String {
    use sqlx::ConnectOptions;
    let opts = db.pool().connect_options();
    opts.to_url_lossy().to_string()
}

/// A migrated noti schema in a fresh database.
pub async fn noti_db() -> (TestDb, Database) {
    let test_db = TestDb::new().await;
    let db = Database::connect_lazy(&test_db.config(), noti::SCHEMA).unwrap();
    db.migrate(Some(&noti::MIGRATOR)).await.unwrap();
    (test_db, db)
}

/// The noti section as environment variables would give it; short retries for tests.
pub fn notifier(db: &Database, smtp: Option<&Smtp>, extra: &[(&str, String)]) -> noti::Notifier {
    let mut vars: Vec<(String, String)> = vec![
        (
            "PROTOSTAR_NOTI__DISCORD__WEBHOOK_HOSTS".into(),
            "127.0.0.1".into(),
        ),
        ("PROTOSTAR_NOTI__DISCORD__ALLOW_HTTP".into(), "true".into()),
        ("PROTOSTAR_NOTI__DISCORD__TIMEOUT_SECS".into(), "5".into()),
        (
            "PROTOSTAR_NOTI__APP_URL".into(),
            "https://app.example.org".into(),
        ),
        ("PROTOSTAR_NOTI__RETRY__MAX_ATTEMPTS".into(), "8".into()),
        ("PROTOSTAR_NOTI__RETRY__FIRST_DELAY_MS".into(), "20".into()),
        ("PROTOSTAR_NOTI__RETRY__MAX_DELAY_SECS".into(), "1".into()),
    ];
    if let Some(s) = smtp {
        vars.push(("PROTOSTAR_NOTI__SMTP__HOST".into(), "127.0.0.1".into()));
        vars.push(("PROTOSTAR_NOTI__SMTP__PORT".into(), s.port.to_string()));
        vars.push((
            "PROTOSTAR_NOTI__SMTP__FROM".into(),
            "Protostar <noreply@example.org>".into(),
        ));
        vars.push(("PROTOSTAR_NOTI__SMTP__TIMEOUT_SECS".into(), "5".into()));
    }
    for (k, v) in extra {
        vars.push(((*k).to_owned(), v.clone()));
    }
    let config = noti::config::NotiConfig::load(&ConfigSource::from_vars(vars).unwrap()).unwrap();
    // The ledger's own pool, as `noti::init` makes it.
    let ledger =
        Database::connect_lazy(&kernel::db::DatabaseConfig::new(db_url(db)), noti::SCHEMA).unwrap();
    noti::Notifier::new(db.clone(), ledger, config).unwrap()
}
