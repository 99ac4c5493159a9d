//! Uploads against the real stack: every kind is accepted by its content whatever it claims to
//! be, the original lands in S3 byte for byte, and the row and its event commit together; every
//! refusal is problem+json and leaves no row, no object and no event behind.

mod common;

use common::fixtures;
use common::*;
use kernel::events::content::{self as wire, Uploaded, media_type};
use kernel::tokens::Role;
use serde_json::Value;

#[tokio::test]
async fn every_kind_is_accepted_by_its_content_and_stored_untouched() {
    let app = spawn().await;
    let me = app.protostar();
    // (bytes, the name the client sends, the type it declares, the type we must decide)
    let cases: Vec<(Vec<u8>, &str, &str, &str)> = vec![
        (
            fixtures::pdf_with_text(&["Jane Doe", "Backend engineer"]),
            "resume.pdf",
            "application/pdf",
            media_type::PDF,
        ),
        (
            fixtures::pdf_with_compressed_text("Jane Doe, engineer"),
            "resume-1.5.pdf",
            "application/pdf",
            media_type::PDF,
        ),
        (
            fixtures::docx("Jane Doe", &["Backend engineer at Acme."]),
            "resume.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            media_type::DOCX,
        ),
        (
            fixtures::docx("김민준", &["백엔드 개발자입니다."]),
            "이력서.docx",
            "application/octet-stream",
            media_type::DOCX,
        ),
        // Mislabelled: a Word document that claims to be a PDF is taken as what it is.
        (
            fixtures::docx("Jane Doe", &["Cover letter"]),
            "cover.pdf",
            "application/pdf",
            media_type::DOCX,
        ),
        (
            fixtures::MARKDOWN_EN.as_bytes().to_vec(),
            "profile.md",
            "text/markdown",
            media_type::MARKDOWN,
        ),
        (
            fixtures::MARKDOWN_KO.as_bytes().to_vec(),
            "이력서.md",
            "text/plain",
            media_type::MARKDOWN,
        ),
        (
            fixtures::HTML_EN.as_bytes().to_vec(),
            "about.txt",
            "text/plain",
            media_type::HTML,
        ),
        (
            fixtures::TEXT_EN.as_bytes().to_vec(),
            "letter.html",
            "text/html",
            media_type::TEXT,
        ),
        (
            fixtures::TEXT_KO.as_bytes().to_vec(),
            "자기소개서.txt",
            "text/plain",
            media_type::TEXT,
        ),
    ];
    for (bytes, name, declared, expected) in &cases {
        let res = app
            .upload_as(&me, bytes.clone(), name, declared, None)
            .await;
        assert_eq!(res.status(), 202, "{name}");
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["mediaType"], *expected, "{name}");
        assert_eq!(doc["status"], "queued");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["filename"], *name);
        assert_eq!(doc["sizeBytes"], bytes.len());
        let id = doc["id"].as_str().unwrap();
        assert_eq!(location, format!("/api/documents/{id}"));
        assert_eq!(doc["statusUrl"], location);

        let key = format!("originals/{}/{id}", me.id);
        let stored = app.blobs.get(&key).await.unwrap();
        assert_eq!(&stored.bytes[..], &bytes[..], "{name}: original changed");

        let shown = app.get(&me, &location).await;
        assert_eq!(shown.status(), 200);
        let shown: Value = shown.json().await.unwrap();
        assert_eq!(shown["id"], doc["id"]);
    }
    assert_eq!(app.rows().await, cases.len() as i64);
    assert_eq!(app.blob_keys().await.len(), cases.len());

    // One content.uploaded per document, with what ingestion needs.
    let events = app.outbox(wire::UPLOADED).await;
    assert_eq!(events.len(), cases.len());
    let list: Value = app.get(&me, "/api/documents").await.json().await.unwrap();
    let docs = list["documents"].as_array().unwrap();
    assert_eq!(docs.len(), cases.len());
    for e in &events {
        let u: Uploaded = e.data_as().unwrap();
        assert_eq!(
            e.subject.as_deref(),
            Some(u.document_id.to_string().as_str())
        );
        assert_eq!(u.owner_id, me.id);
        assert_eq!(u.version, 1);
        assert_eq!(u.blob_key, wire::original_key(me.id, u.document_id));
        let row = docs
            .iter()
            .find(|d| d["id"] == u.document_id.to_string())
            .unwrap();
        assert_eq!(row["mediaType"], u.media_type);
        assert_eq!(row["title"], u.title);
        assert_eq!(row["sizeBytes"], u.size_bytes);
    }
}

#[tokio::test]
async fn titles_come_from_the_form_or_the_file_name() {
    let app = spawn().await;
    let me = app.protostar();
    let res = app
        .upload_as(
            &me,
            fixtures::TEXT_KO.as_bytes().to_vec(),
            "C:\\Users\\me\\자기소개서.txt",
            "text/plain",
            Some("  김민준 자기소개서 "),
        )
        .await;
    assert_eq!(res.status(), 202);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["title"], "김민준 자기소개서");
    assert_eq!(doc["filename"], "자기소개서.txt");

    let res = app
        .upload(
            &me,
            fixtures::TEXT_EN.as_bytes().to_vec(),
            "cover letter.txt",
        )
        .await;
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["title"], "cover letter");
}

/// A refusal: what it is, the bytes and the name sent, the status, the problem type, and a word
/// the reason must contain.
type Refusal = (
    &'static str,
    Vec<u8>,
    &'static str,
    u16,
    &'static str,
    &'static str,
);

#[tokio::test]
async fn bad_files_are_refused_with_a_reason_and_nothing_is_stored() {
    let app = spawn_with(Options {
        extra: vec![
            ("PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES", "65536".into()),
            (
                "PROTOSTAR_CHAT__CONTENT__DOCX_MAX_EXPANDED_BYTES",
                (1024 * 1024).to_string(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let me = app.protostar();
    let pdf = fixtures::pdf_with_text(&["Jane Doe"]);
    let docx = fixtures::docx("Jane Doe", &["Engineer"]);
    let euc_kr = b"\xc0\xcc\xb7\xc2\xbc\xad: \xb1\xe8\xb9\xce\xc1\xd8\n".to_vec();
    let cases: Vec<Refusal> = vec![
        (
            "truncated pdf",
            pdf[..pdf.len() / 2].to_vec(),
            "cv.pdf",
            400,
            "invalid-request",
            "incomplete",
        ),
        (
            "pdf cut before %%EOF",
            pdf[..pdf.len() - 7].to_vec(),
            "cv.pdf",
            400,
            "invalid-request",
            "incomplete",
        ),
        (
            "encrypted pdf",
            fixtures::pdf_encrypted(),
            "cv.pdf",
            400,
            "invalid-request",
            "password",
        ),
        (
            "scanned pdf",
            fixtures::pdf_image_only(),
            "scan.pdf",
            400,
            "invalid-request",
            "scanned",
        ),
        (
            "truncated docx",
            docx[..docx.len() - 30].to_vec(),
            "cv.docx",
            400,
            "invalid-request",
            "damaged",
        ),
        (
            "zip bomb",
            fixtures::docx_bomb(8 * 1024 * 1024),
            "cv.docx",
            413,
            "payload-too-large",
            "zip bomb",
        ),
        (
            "zip named pdf",
            fixtures::plain_zip(),
            "cv.pdf",
            415,
            "unsupported-media-type",
            "ZIP",
        ),
        (
            "png named pdf",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "cv.pdf",
            415,
            "unsupported-media-type",
            "PNG",
        ),
        (
            "euc-kr text",
            euc_kr,
            "이력서.txt",
            415,
            "unsupported-media-type",
            "UTF-8",
        ),
        (
            "empty",
            Vec::new(),
            "cv.txt",
            400,
            "invalid-request",
            "empty",
        ),
        (
            "oversized",
            vec![b'a'; 65537],
            "big.txt",
            413,
            "payload-too-large",
            "64 KiB",
        ),
        // Beyond the request's own body limit, too: the multipart reader stops it.
        (
            "far oversized",
            vec![b'a'; 300 * 1024],
            "big.txt",
            413,
            "payload-too-large",
            "",
        ),
    ];
    for (what, bytes, name, status, kind, word) in cases {
        let res = app.upload(&me, bytes, name).await;
        let (got, body) = problem(res).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(
            body["type"],
            format!("https://protostar.dev/problems/{kind}"),
            "{what}"
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(word), "{what}: {detail}");
    }

    // Not multipart at all, and multipart without a file.
    let res = app
        .client
        .post(app.url("/api/documents"))
        .bearer_auth(&me.token)
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, 415);
    let res = app
        .client
        .post(app.url("/api/documents"))
        .bearer_auth(&me.token)
        .multipart(reqwest::multipart::Form::new().text("title", "no file"))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(res).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "file");

    // What was refused, and why, shows on /metrics.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (outcome, n) in [
        ("malformed", 5),
        ("encrypted", 1),
        ("no-text", 1),
        ("too-large", 3),
        ("unsupported", 4),
    ] {
        let line = format!("protostar_document_uploads_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
    assert!(!metrics.contains("outcome=\"accepted\""));

    assert_eq!(app.rows().await, 0, "a refused upload left a row");
    assert!(
        app.blob_keys().await.is_empty(),
        "a refused upload left an object"
    );
    assert!(app.outbox(wire::UPLOADED).await.is_empty());
}

#[tokio::test]
async fn only_protostars_upload() {
    let app = spawn().await;
    let stargazer = app.account(Role::Stargazer);
    let res = app
        .upload(&stargazer, fixtures::TEXT_EN.as_bytes().to_vec(), "cv.txt")
        .await;
    assert_eq!(problem(res).await.0, 403);
    let res = app
        .client
        .post(app.url("/api/documents"))
        .multipart(reqwest::multipart::Form::new().text("file", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, 401);
    assert_eq!(app.rows().await, 0);
}

/// The original is written before the transaction; when the commit fails, the original must not
/// stay behind. A deferred constraint trigger makes this one commit fail, as a lost connection
/// or a serialisation failure at commit would.
#[tokio::test]
async fn a_failed_commit_removes_the_original_it_stored() {
    let app = spawn().await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.title = 'doomed' THEN RAISE EXCEPTION 'commit refused for the test'; END IF;
           RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER refuse_doomed AFTER INSERT ON documents
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_doomed();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let me = app.protostar();
    let res = app
        .upload_as(
            &me,
            fixtures::MARKDOWN_EN.as_bytes().to_vec(),
            "cv.md",
            "text/markdown",
            Some("doomed"),
        )
        .await;
    let (status, _) = problem(res).await;
    assert_eq!(status, 500);
    assert_eq!(app.rows().await, 0);
    assert!(
        app.blob_keys().await.is_empty(),
        "the orphaned original stayed"
    );
    assert!(app.outbox(wire::UPLOADED).await.is_empty());

    // The same upload under another title goes through: the trigger is what failed.
    let res = app
        .upload_as(
            &me,
            fixtures::MARKDOWN_EN.as_bytes().to_vec(),
            "cv.md",
            "text/markdown",
            Some("fine"),
        )
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(app.blob_keys().await.len(), 1);
}

/// With one upload allowed at a time, a second waits (its body unread) until the first is done:
/// memory is bounded by `max_concurrent_uploads × max_upload_bytes`, however many clients send.
#[tokio::test]
async fn uploads_beyond_the_concurrency_limit_wait_their_turn() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(Options {
        extra: vec![(
            "PROTOSTAR_CHAT__CONTENT__MAX_CONCURRENT_UPLOADS",
            "1".into(),
        )],
        ..Default::default()
    })
    .await;
    let me = app.protostar();

    // The first upload by hand, so that it can stop half-way through its body.
    let body = format!(
        "--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n{}\r\n--XBOUNDARYX--\r\n",
        fixtures::TEXT_EN
    );
    let (first_half, second_half) = body.as_bytes().split_at(body.len() / 2);
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/documents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=XBOUNDARYX\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        me.token,
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(first_half).await.unwrap();
    slow.flush().await.unwrap();
    // Let the server take the first upload's permit (a few milliseconds; generous for a loaded
    // machine).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let second = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/api/documents");
        let token = me.token.clone();
        async move {
            let part = reqwest::multipart::Part::bytes(fixtures::TEXT_KO.as_bytes().to_vec())
                .file_name("b.txt");
            client
                .post(url)
                .bearer_auth(token)
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!second.is_finished(), "the second upload did not wait");
    assert_eq!(app.rows().await, 0);

    slow.write_all(second_half).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert_eq!(second.await.unwrap(), 202);
    assert_eq!(app.rows().await, 2);
}
