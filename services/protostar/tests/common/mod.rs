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

/// A fresh data folder under the temp dir, removed when dropped, whether the test passed or not
/// (declare it before the server that uses it, so that the server stops first).
pub struct DataDir(std::path::PathBuf);

impl std::ops::Deref for DataDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn data_dir(label: &str) -> DataDir {
    let dir = std::env::temp_dir().join(format!(
        "protostar-{label}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    DataDir(dir)
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

/// `protostar admin create-admin` with [`PASSWORD`], before the server starts.
pub fn create_admin(db: &TestDb, data: &std::path::Path, email: &str) {
    let password_file = data.join("admin-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let out = command(db, data)
        .args(["admin", "create-admin", "--email", email, "--password-file"])
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `multipart/form-data` body with one file part, written out by hand.
pub fn multipart(filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("protostar-{}", uuid::Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The public and admin API of one deployment, as people's browsers and scripts use it.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub public: String,
    pub admin: String,
}

impl Api {
    pub fn new(public: &str, admin: &str) -> Self {
        Self {
            client: kernel::http::client(Duration::from_secs(60)),
            public: public.to_owned(),
            admin: admin.to_owned(),
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.public))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.public))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn ready(&self) {
        until("readiness", Duration::from_secs(90), || async {
            self.client
                .get(format!("{}/readyz", self.public))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    pub async fn guest(&self) -> String {
        let res = self.post("/api/auth/guest", None, Value::Null).await;
        assert_eq!(res.status(), 201);
        token(res).await
    }

    pub async fn login(&self, email: &str) -> String {
        let res = self
            .post(
                "/api/auth/login",
                None,
                serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), 200, "login of {email}");
        token(res).await
    }

    /// A stargazer: access and refresh token.
    pub async fn signup(&self, email: &str, name: &str) -> (String, String) {
        let res = self
            .post(
                "/api/auth/signup",
                None,
                serde_json::json!({"email": email, "password": PASSWORD, "displayName": name}),
            )
            .await;
        assert_eq!(res.status(), 201, "sign-up of {email}");
        let v: Value = res.json().await.unwrap();
        (
            v["accessToken"].as_str().unwrap().to_owned(),
            v["refreshToken"].as_str().unwrap().to_owned(),
        )
    }

    /// A protostar: signs up, redeems an invite the admin creates, and refreshes until the
    /// token says so. Returns the protostar's access token.
    pub async fn protostar(&self, admin_token: &str, email: &str, name: &str) -> String {
        let res = self
            .client
            .post(format!("{}/admin/api/invites", self.admin))
            .bearer_auth(admin_token)
            .json(&serde_json::json!({"count": 1, "uses": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let code = res.json::<Value>().await.unwrap()["invites"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let (access, mut refresh) = self.signup(email, name).await;
        until("the profile", Duration::from_secs(30), || async {
            self.get("/api/users/me", &access).await.status() == 200
        })
        .await;
        let res = self
            .post(
                "/api/invites/redeem",
                Some(&access),
                serde_json::json!({"code": code}),
            )
            .await;
        assert_eq!(res.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v: Value = self
                .post(
                    "/api/auth/refresh",
                    None,
                    serde_json::json!({"refreshToken": refresh}),
                )
                .await
                .json()
                .await
                .unwrap();
            refresh = v["refreshToken"].as_str().unwrap().to_owned();
            if v["role"] == "protostar" {
                return v["accessToken"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "the role never became protostar");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /api/documents` with one file.
    pub async fn upload(&self, token: &str, filename: &str, bytes: &[u8]) -> reqwest::Response {
        let (content_type, body) = multipart(filename, bytes);
        self.client
            .post(format!("{}/api/documents", self.public))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Uploads a document and waits until it is `ready`; its id.
    pub async fn upload_ready(&self, token: &str, filename: &str, bytes: &[u8]) -> String {
        let res = self.upload(token, filename, bytes).await;
        assert_eq!(res.status(), 202, "{filename}");
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let v: Value = self
                .get(&format!("/api/documents/{id}"), token)
                .await
                .json()
                .await
                .unwrap();
            match v["status"].as_str() {
                Some("ready") => return id,
                Some("failed") => panic!("{filename} failed: {}", v["reason"]),
                _ => {}
            }
            assert!(Instant::now() < deadline, "{filename} never became ready");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn token(res: reqwest::Response) -> String {
    res.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}
