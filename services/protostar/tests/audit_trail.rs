//! The audit target in the real binary, killed with SIGKILL while it writes, then restarted:
//! every event is in the trail exactly once and the chain verifies (`protostar audit verify`).

use kernel::events::{Bus, Event};
use kernel::testing::{PrivateBroker, TestDb};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_protostar");

fn start(db: &TestDb, broker: &str, dir: &Path) -> Child {
    Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PROTOSTAR_PUBLIC_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_ADMIN_ADDR", "127.0.0.1:0")
        .env("PROTOSTAR_DATABASE__URL", &db.url)
        .env("PROTOSTAR_BROKER__URL", broker)
        .env("PROTOSTAR_AUDIT__DIR", dir)
        .env("PROTOSTAR_LOG__FILTER", "warn")
        .args(["serve", "--target", "audit"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start protostar")
}

fn lines(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_batch_then_restart_loses_and_repeats_nothing() {
    const N: usize = 3000;
    let broker = PrivateBroker::start();
    let db = TestDb::new().await;
    let dir = std::env::temp_dir().join(format!(
        "protostar-audit-kill-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut first = start(&db, &broker.url, &dir);

    // Events published with confirms straight to the exchange, as the services' relays do.
    let bus = Bus::rabbit(&broker.url);
    let events: Vec<Event> = (0..N)
        .map(|i| {
            Event::new(
                "audit.role_changed",
                "user",
                serde_json::json!({"actor": "admin:1", "subject": format!("user-{i}"), "outcome": "success"}),
            )
            .unwrap()
        })
        .collect();
    // Wait until the audit consumer has declared its queue, or early events would be unroutable.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        bus.publish(&events[..1]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !lines(&dir).is_empty() || Instant::now() > deadline {
            break;
        }
    }
    for chunk in events[1..].chunks(250) {
        bus.publish(chunk).await.unwrap();
    }

    // Kill it while it is writing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&dir).len() < N / 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = lines(&dir).len();
    assert!(
        at_kill < N,
        "the kill came too late to test anything ({at_kill} lines)"
    );

    let mut second = start(&db, &broker.url, &dir);
    let deadline = Instant::now() + Duration::from_secs(120);
    while lines(&dir).len() < N && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.kill().ok();
    second.wait().ok();

    let all = lines(&dir);
    let ids: HashSet<String> = all
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["eventId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        all.len(),
        N,
        "lines after the restart (killed at {at_kill})"
    );
    assert_eq!(ids.len(), N, "distinct events");

    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{N} lines")));

    // Tampering is named by the command, with the file and line.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut ls: Vec<String> = text.lines().map(str::to_owned).collect();
    ls[41] = ls[41].replace("success", "failure");
    std::fs::write(&file, ls.join("\n") + "\n").unwrap();
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:42:", file.display())), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
