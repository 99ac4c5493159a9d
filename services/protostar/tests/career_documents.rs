//! Career documents end to end through the real binary (`serve --target all`: in-process events,
//! the local blob store, the local embedding model that `scripts/models.sh` provisions): an
//! account becomes a protostar through an invite, uploads a Korean Markdown résumé and an
//! English cover letter, and both reach `ready` with their chunks counted by the ai service.
//! Deleting one takes it off the list; another account never sees either.

mod common;

use common::{Api, BIN, create_admin, data_dir, serve};
use kernel::testing::TestDb;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const RESUME_KO: &str = "# 김민준 — 백엔드 개발자\n\n\
Rust와 PostgreSQL로 결제 시스템을 만들어 온 6년 차 백엔드 개발자입니다.\n\n\
## 경력\n\n### 토스페이먼츠 (2021–2024)\n\n\
- 초당 3천 건의 결제 승인을 처리하는 정산 파이프라인을 Rust로 다시 작성해 지연 시간을 절반으로 줄였습니다.\n\
- 장애 대응 절차를 정리하고 온콜 교대를 운영했습니다.\n\n\
### 네이버 (2018–2021)\n\n- 검색 색인 파이프라인의 배치 작업을 Kafka 기반 스트리밍으로 옮겼습니다.\n\n\
## 학력\n\n서울대학교 컴퓨터공학부 졸업 (2018).\n";

const COVER_LETTER_EN: &str = "Cover letter\n\nDear hiring team,\n\n\
I am a backend engineer with six years of experience building payment systems in Rust and \
PostgreSQL. At Toss Payments I rewrote the settlement pipeline that approves three thousand \
payments per second, halving its latency, and I ran the on-call rotation.\n\n\
I would like to bring the same care for reliability to your platform team.\n\n\
Kind regards,\nMinjun Kim\n";

#[tokio::test]
async fn an_upload_becomes_ready_through_the_binary() {
    let db = TestDb::new().await;
    let data = data_dir("documents");
    create_admin(&db, &data, "root@example.org");
    let server = serve(&db, &data);
    let s = Api::new(&server.public, &server.admin);
    s.ready().await;
    let admin = s.login("root@example.org").await;

    // A stargazer may not upload; an invite from the admin makes Minjun a protostar.
    let (stargazer, _) = s.signup("visitor@example.org", "Visitor").await;
    let res = s.upload(&stargazer, "a.md", b"x").await;
    assert_eq!(res.status(), 403, "a stargazer token must not upload");
    let token = s
        .protostar(&admin, "minjun@example.org", "Minjun Kim")
        .await;

    let accepted = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 202);
        res.json::<Value>().await.unwrap()
    };
    let resume = accepted(s.upload(&token, "이력서.md", RESUME_KO.as_bytes()).await).await;
    let letter = accepted(
        s.upload(&token, "cover-letter.txt", COVER_LETTER_EN.as_bytes())
            .await,
    )
    .await;
    assert_eq!(resume["mediaType"], "text/markdown");
    assert_eq!(letter["mediaType"], "text/plain");

    // Loading the embedding model the first time takes a while on 2 cores.
    for doc in [&resume, &letter] {
        let url = doc["statusUrl"].as_str().unwrap().to_owned();
        let mut last = Value::Null;
        let deadline = Instant::now() + Duration::from_secs(240);
        while Instant::now() < deadline {
            last = s.get(&url, &token).await.json().await.unwrap();
            if last["status"] == "ready" || last["status"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(last["status"], "ready", "{last}");
        assert!(last["chunkCount"].as_i64().unwrap() >= 1, "{last}");
        assert_eq!(last["version"], 1);
    }

    // Someone else sees none of it.
    let (other, _) = s.signup("someone@example.org", "Someone").await;
    let url = resume["statusUrl"].as_str().unwrap();
    assert_eq!(s.get(url, &other).await.status(), 404);

    let res = s
        .client
        .delete(format!("{}{url}", server.public))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let list: Value = s.get("/api/documents", &token).await.json().await.unwrap();
    let ids: Vec<&Value> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["id"])
        .collect();
    assert_eq!(ids, [&letter["id"]]);
}

/// `check-config` checks the `chat.content` section too: out-of-range and unknown keys are
/// named, with their variables.
#[test]
fn bad_content_settings_are_named_by_check_config() {
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES", "0")
        .env("PROTOSTAR_CHAT__CONTENT__MAX_UPLOADS", "3")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chat.content") && err.contains("max_uploads"),
        "{err}"
    );
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES", "0")
        .arg("check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chat.content.max_upload_bytes")
            && err.contains("PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES"),
        "{err}"
    );
}
