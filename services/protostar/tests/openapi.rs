//! The API description through the real binary (`serve --target all`): `/api/openapi.json` is
//! served as compiled in, and every (method, path) it documents exists in the running process.
//! Each one is called without a token, path parameters filled with a fresh UUID (or each value
//! of an enum): the answer must not be the "nothing at this address" 404 nor a 405; an
//! operation that documents a required role must say `401`; and whatever the status, the
//! document must list it for that operation.

use kernel::testing::TestDb;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_protostar");
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

struct Server {
    child: Child,
    public: String,
    admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &TestDb, data: &std::path::Path) -> Server {
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PROTOSTAR_PUBLIC_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_ADMIN_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_DATABASE__URL", &db.url)
        .env("PROTOSTAR_DATA_DIR", data)
        .args(["serve", "--target", "all"])
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

/// The documented path with its parameters filled in: every value of an enum, a UUID otherwise.
fn concrete_paths(template: &str, op: &Value) -> Vec<String> {
    let mut out = vec![template.to_owned()];
    for p in op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "path")
    {
        let placeholder = format!("{{{}}}", p["name"].as_str().unwrap());
        let values: Vec<String> = match p["schema"]["enum"].as_array() {
            Some(e) => e.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            None => vec![uuid::Uuid::new_v4().to_string()],
        };
        out = out
            .iter()
            .flat_map(|path| values.iter().map(|v| path.replace(&placeholder, v)))
            .collect();
    }
    assert!(!out.iter().any(|p| p.contains('{')), "{template}");
    out
}

#[tokio::test]
async fn every_documented_route_exists_in_the_binary() {
    let db = TestDb::new().await;
    let data = std::env::temp_dir().join(format!(
        "protostar-openapi-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&data).unwrap();
    let server = serve(&db, &data);
    let client = kernel::http::client(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{}/readyz", server.public))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let res = client
        .get(format!("{}/api/openapi.json", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let served = res.text().await.unwrap();
    assert_eq!(served, gateway::openapi::DOCUMENT);
    let doc: Value = serde_json::from_str(&served).unwrap();
    // The description is the public listener's to give, not the admin's.
    let res = client
        .get(format!("{}/api/openapi.json", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let mut calls = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let base = match item["x-listener"].as_str() {
            Some("admin") => &server.admin,
            _ => &server.public,
        };
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let needs_token = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            for path in concrete_paths(template, op) {
                calls += 1;
                let what = format!("{} {path}", method.to_uppercase());
                let mut req = client.request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{base}{path}"),
                );
                if json_body {
                    req = req.json(&serde_json::json!({}));
                }
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                assert_ne!(status, 405, "{what}: the method is not served ({body})");
                assert!(
                    !(status == 404
                        && (body.is_empty() || body.contains("nothing at this address"))),
                    "{what} is documented but nothing answers it ({body})"
                );
                if needs_token {
                    assert_eq!(status, 401, "{what} without a token: {body}");
                } else {
                    assert!(status < 500, "{what}: {status} {body}");
                }
                assert!(
                    op["responses"].get(status.to_string()).is_some(),
                    "{what} answered {status}, which its description does not list ({body})"
                );
            }
        }
    }
    assert!(calls > 30, "{calls}");
    let _ = std::fs::remove_dir_all(&data);
}
