//! Test fixtures over the real stack that `make test` (scripts/stack.sh) starts: each test gets
//! its own fresh database on the shared PostgreSQL server, and tests that must break a broker
//! start a private one.

use crate::db::DatabaseConfig;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection};
use std::process::Command;
use std::str::FromStr;

const TEMPLATE: &str = "protostar_test_template";

/// An environment variable the stack script sets; a clear message when a test runs outside it.
pub fn stack_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run tests through `make test` (or `scripts/stack.sh run -- cargo nextest run`), \
             which starts PostgreSQL, RabbitMQ, Redis and S3 for them"
        )
    })
}

/// A database of its own for one test, made from a template that already has the extensions,
/// and dropped when the value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
    server_url: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let server_url = stack_env("PROTOSTAR_TEST_DATABASE_URL");
        let mut admin = PgConnection::connect(&server_url)
            .await
            .expect("connect to the test server");
        ensure_template(&mut admin, &server_url).await;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE DATABASE {name} TEMPLATE {TEMPLATE}"
            )))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = with_database(&server_url, &name);
        Self {
            name,
            url,
            server_url,
        }
    }

    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig::new(self.url.clone())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server_url.clone();
        let name = self.name.clone();
        // Drop cannot await; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = PgConnection::connect(&server).await {
                        let _ = c
                            .execute(AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// A free loopback port for a peer a test starts itself. Picked below the range the kernel
/// hands out as source ports of outgoing connections (`ip_local_port_range`): a port from
/// binding port 0 lies in that range, and under parallel tests some connection could take it
/// as its source port before the peer binds it. `scripts/stack.sh` picks the same way.
pub fn free_port() -> u16 {
    use rand::Rng;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut rng = rand::rng();
    for _ in 0..200 {
        if low <= 10_000 {
            break;
        }
        let port = rng.random_range(10_000..low);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn with_database(server_url: &str, db: &str) -> String {
    let opts = PgConnectOptions::from_str(server_url).expect("valid test database url");
    opts.database(db).to_url_lossy().to_string()
}

async fn ensure_template(admin: &mut PgConnection, server_url: &str) {
    // Parallel test processes race to create the template; an advisory lock lets one win.
    admin
        .execute("SELECT pg_advisory_lock(727274)")
        .await
        .expect("lock for the test template");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(TEMPLATE)
            .fetch_one(&mut *admin)
            .await
            .expect("look up the template");
    if !exists {
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {TEMPLATE}")))
            .await
            .expect("create the template");
        let mut t = PgConnection::connect(&with_database(server_url, TEMPLATE))
            .await
            .expect("connect to the template");
        t.execute("CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS pg_trgm;")
            .await
            .expect("extensions vector and pg_trgm (the stack's PostgreSQL carries both)");
        t.close().await.ok();
    }
    admin
        .execute("SELECT pg_advisory_unlock(727274)")
        .await
        .expect("unlock");
}

/// A RabbitMQ of one test's own, for tests that stop and start the broker.
pub struct PrivateBroker {
    dir: std::path::PathBuf,
    pub url: String,
}

impl PrivateBroker {
    pub fn start() -> Self {
        let dir = std::path::PathBuf::from(format!(
            "/var/tmp/protostar-broker-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let b = Self {
            dir,
            url: String::new(),
        };
        b.run("start");
        let port = std::fs::read_to_string(b.dir.join("ports/amqp")).expect("broker port");
        Self {
            url: format!("amqp://guest:guest@127.0.0.1:{}/%2f", port.trim()),
            dir: b.dir.clone(),
        }
    }

    pub fn stop(&self) {
        self.run("stop");
    }

    pub fn restart(&self) {
        self.run("start");
    }

    fn run(&self, verb: &str) {
        let script = stack_env("PROTOSTAR_TEST_STACK_SCRIPT");
        let status = Command::new("bash")
            .arg(&script)
            .arg(verb)
            .arg("--dir")
            .arg(&self.dir)
            .arg("rabbitmq")
            .status()
            .expect("run the stack script");
        assert!(status.success(), "stack.sh {verb} rabbitmq failed");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if self.url.is_empty() {
            return;
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An Ed25519 signing key with a `kid`, to mint access tokens (genuine or forged) in tests.
pub struct TestKey {
    pub kid: String,
    pub signing: ed25519_dalek::SigningKey,
}

impl TestKey {
    pub fn new(kid: &str) -> Self {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
        Self {
            kid: kid.into(),
            signing: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// The public half, as the JWKS publishes it.
    pub fn jwk(&self) -> jsonwebtoken::jwk::Jwk {
        use base64::Engine;
        use jsonwebtoken::jwk::{
            AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, OctetKeyPairParameters,
            OctetKeyPairType,
        };
        Jwk {
            common: CommonParameters {
                key_id: Some(self.kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(self.signing.verifying_key().as_bytes()),
            }),
        }
    }

    pub fn sign(&self, claims: &crate::tokens::Claims) -> String {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let der = self.signing.to_pkcs8_der().expect("a fresh key encodes");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("signing with a fresh key works")
    }
}

/// Claims of a token valid for `ttl_secs` (negative: expired that long ago).
pub fn claims(sub: &str, role: crate::tokens::Role, ttl_secs: i64) -> crate::tokens::Claims {
    let now = chrono::Utc::now().timestamp();
    crate::tokens::Claims {
        sub: sub.into(),
        role,
        iss: "protostar".into(),
        aud: "protostar".into(),
        exp: now + ttl_secs,
        iat: now,
        nbf: None,
        jti: uuid::Uuid::new_v4().to_string(),
    }
}

/// Log output captured in memory, for tests that read the lines a subscriber wrote: hand it to
/// `tracing_subscriber::fmt().with_writer(..)` and read [`CapturedLines::text`] afterwards.
#[derive(Clone, Default)]
pub struct CapturedLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLines {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLines {
    type Writer = CapturedLines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
