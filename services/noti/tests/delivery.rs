//! noti against a real SMTP server (aiosmtpd) and real PostgreSQL, each event handed to the
//! kernel's consumer logic directly: mails in the account's language, exactly once even when a
//! delivery is repeated behind the consumer's back, failures parked with their reason.

mod common;

use common::{Answer, FakeDiscord, Smtp, noti_db, notifier};
use kernel::events::consumer::{Disposition, process, process_batch};
use kernel::events::{Event, Handler, dead_letter};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn event(kind: &str, data: Value) -> Event {
    Event::new(kind, "test", data).unwrap()
}

fn text_part(mail: &Value) -> String {
    mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "text/plain")
        .map(|p| p["body"].as_str().unwrap().to_owned())
        .expect("a text/plain part")
}

#[tokio::test]
async fn account_mails_arrive_once_in_the_accounts_language() {
    let smtp = Smtp::start(0);
    let (_t, db) = noti_db().await;
    let n = notifier(&db, Some(&smtp), &[]);
    let sub = noti::subscription(n.clone());
    let (ko, en) = (Uuid::now_v7(), Uuid::now_v7());
    let events = [
        event(
            "user.registered",
            json!({"userId": ko, "email": "minji@example.org", "displayName": "민지", "role": "stargazer", "locale": "ko-KR"}),
        ),
        event(
            "user.registered",
            json!({"userId": en, "email": "sam@example.org", "displayName": "Sam", "role": "stargazer"}),
        ),
        event(
            "user.password_reset_requested",
            json!({"userId": ko, "email": "minji@example.org", "token": "tok-123", "expiresAt": "2026-11-25T18:00:00Z"}),
        ),
        event(
            "invite.redeemed",
            json!({"userId": en, "inviteId": Uuid::now_v7()}),
        ),
    ];
    for e in &events {
        assert_eq!(process(&sub, &e.to_bytes()).await, Disposition::Ack);
    }
    // Redelivered by the broker: the consumer's own record stops these.
    for e in &events {
        assert_eq!(process(&sub, &e.to_bytes()).await, Disposition::Ack);
    }
    // Delivered again as if the consumer's commit had been lost after the mail went out: only
    // the delivery ledger stands between this and a second mail.
    for e in &events {
        let mut tx = db.begin().await.unwrap();
        n.handle(&mut tx, e).await.unwrap();
        tx.rollback().await.unwrap();
    }
    let mails = smtp.wait_for(5, Duration::from_secs(2)).await;
    assert_eq!(mails.len(), 4, "{mails:#?}");

    let to =
        |addr: &str| -> Vec<&Value> { mails.iter().filter(|m| m["rcpt_tos"][0] == addr).collect() };
    let minji = to("minji@example.org");
    assert_eq!(minji.len(), 2);
    assert!(
        minji
            .iter()
            .any(|m| m["subject"].as_str().unwrap().contains("환영합니다"))
    );
    let reset = minji
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("비밀번호"))
        .expect("the Korean reset mail");
    assert!(text_part(reset).contains("https://app.example.org/reset-password?token=tok-123"));
    assert_eq!(reset["content_type"], "multipart/alternative");
    assert_eq!(reset["parts"][1]["type"], "text/html");
    assert!(
        reset["to"].as_str().unwrap().contains("민지"),
        "{}",
        reset["to"]
    );
    let sam = to("sam@example.org");
    assert_eq!(sam.len(), 2);
    assert!(sam.iter().any(|m| m["subject"] == "[Protostar] Welcome"));
    assert!(
        sam.iter()
            .any(|m| m["subject"] == "[Protostar] You are a protostar now")
    );
    assert_eq!(noti::ledger::count(db.pool(), "sent").await.unwrap(), 4);
}

#[tokio::test]
async fn smtp_refusals_retry_or_park_by_their_code() {
    // The server answers 451 twice, then takes mail: retried, delivered once.
    let smtp = Smtp::start(2);
    let (_t, db) = noti_db().await;
    let sub = noti::subscription(notifier(&db, Some(&smtp), &[]));
    let ok = event(
        "user.password_reset_requested",
        json!({"userId": Uuid::now_v7(), "email": "a@example.org", "token": "t", "expiresAt": "2026-11-25T18:00:00Z"}),
    );
    assert_eq!(process(&sub, &ok.to_bytes()).await, Disposition::Ack);
    assert_eq!(smtp.messages().len(), 1);
    assert!(dead_letter::list(&db, false).await.unwrap().is_empty());

    // 550 for the recipient: permanent, parked at once with the server's words.
    let bounce = event(
        "user.password_reset_requested",
        json!({"userId": Uuid::now_v7(), "email": "bounce@example.org", "token": "t", "expiresAt": "2026-11-25T18:00:00Z"}),
    );
    assert_eq!(process(&sub, &bounce.to_bytes()).await, Disposition::Ack);
    let parked = dead_letter::list(&db, false).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event_id, Some(bounce.id));
    assert_eq!(parked[0].attempts, 1);
    assert!(parked[0].reason.contains("550"), "{}", parked[0].reason);
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn an_unknown_webhook_parks_and_the_alert_reaches_the_admins() {
    let discord = FakeDiscord::start(vec![Answer::NotFound]).await;
    let (_t, db) = noti_db().await;
    let admin = discord.webhook("admins");
    let n = notifier(
        &db,
        None,
        &[("PROTOSTAR_NOTI__DISCORD__ADMIN_WEBHOOK_URL", admin)],
    );
    let sub = noti::subscription(n.clone());
    let owner = Uuid::now_v7();
    let mut conn = db.pool().acquire().await.unwrap();
    noti::store::save_settings(
        &mut conn,
        owner,
        &noti::store::Settings {
            mode: noti::store::Mode::Instant,
            email: false,
            discord_webhook_url: Some(discord.webhook("gone")),
            locale: None,
        },
    )
    .await
    .unwrap();
    let asked = event(
        "chat.question_asked",
        json!({"chatbotSlug": "jane", "ownerId": owner, "question": "Why Rust? @everyone", "askerRole": "guest", "answerId": null, "askedAt": "2026-11-25T15:00:00Z"}),
    );
    assert_eq!(process(&sub, &asked.to_bytes()).await, Disposition::Ack);
    let parked = dead_letter::list(&db, false).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].reason.contains("404"), "{}", parked[0].reason);
    assert!(
        !parked[0].reason.contains("token-gone"),
        "the webhook token leaked: {}",
        parked[0].reason
    );

    // Parking put system.dead_lettered in noti's outbox; hand it to noti as the bus would.
    let payload: Value =
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE event_type = 'system.dead_lettered'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    let alert: Event = serde_json::from_value(payload).unwrap();
    assert_eq!(process(&sub, &alert.to_bytes()).await, Disposition::Ack);
    let got = discord.wait_for(1, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0]["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .contains("404")
    );
    assert_eq!(got[0]["allowed_mentions"]["parse"], json!([]));
}

#[tokio::test]
async fn a_send_that_may_have_happened_is_parked_not_repeated_until_an_admin_retries() {
    let smtp = Smtp::start(0);
    let (_t, db) = noti_db().await;
    let sub = noti::subscription(notifier(&db, Some(&smtp), &[]));
    let e = event(
        "user.password_reset_requested",
        json!({"userId": Uuid::now_v7(), "email": "a@example.org", "token": "t", "expiresAt": "2026-11-25T18:00:00Z"}),
    );
    // What a process that died between the SMTP server's 250 and the ledger's update leaves.
    sqlx::query("INSERT INTO deliveries (id, channel, recipient, state, attempts) VALUES ($1, 'email', 'a@example.org', 'sending', 1)")
        .bind(e.id)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(process(&sub, &e.to_bytes()).await, Disposition::Ack);
    assert!(
        smtp.messages().is_empty(),
        "sent again although it may have gone out"
    );
    let parked = dead_letter::list(&db, false).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("may have delivered"),
        "{}",
        parked[0].reason
    );
    // The admin looked and retries the dead letter: now it is sent, once.
    assert_eq!(
        process(&sub, parked[0].payload.as_bytes()).await,
        Disposition::Ack
    );
    assert_eq!(
        process(&sub, parked[0].payload.as_bytes()).await,
        Disposition::Ack
    );
    assert_eq!(smtp.wait_for(2, Duration::from_secs(1)).await.len(), 1);
}

#[tokio::test]
async fn the_digest_sends_each_owner_their_waiting_questions_once() {
    let smtp = Smtp::start(0);
    let discord = FakeDiscord::start(vec![Answer::ServerError]).await;
    let (_t, db) = noti_db().await;
    let n = notifier(&db, Some(&smtp), &[]);
    let sub = noti::subscription(n.clone());
    let owner = Uuid::now_v7();
    let registered = event(
        "user.registered",
        json!({"userId": owner, "email": "owner@example.org", "displayName": "Owner", "locale": "en"}),
    );
    assert_eq!(
        process(&sub, &registered.to_bytes()).await,
        Disposition::Ack
    );
    let mut conn = db.pool().acquire().await.unwrap();
    noti::store::save_settings(
        &mut conn,
        owner,
        &noti::store::Settings {
            mode: noti::store::Mode::Digest,
            email: true,
            discord_webhook_url: Some(discord.webhook("owner")),
            locale: None,
        },
    )
    .await
    .unwrap();
    drop(conn);
    for i in 0..3 {
        let q = event(
            "chat.question_asked",
            json!({"chatbot_slug": "owner-bot", "owner_id": owner, "question": format!("question {i}"), "asker_role": "stargazer", "answer_id": null, "asked_at": "2026-11-25T15:00:00Z"}),
        );
        assert_eq!(process(&sub, &q.to_bytes()).await, Disposition::Ack);
    }
    // Nothing instant in digest mode, besides the welcome mail.
    assert_eq!(smtp.messages().len(), 1);

    // Discord fails on the first run: the mail goes, the digest stays for the next run.
    let first = noti::digest::run(&n).await.unwrap();
    assert_eq!(
        (first.gathered, first.sent, first.failed.len()),
        (1, 0, 1),
        "{first:?}"
    );
    let second = noti::digest::run(&n).await.unwrap();
    assert_eq!(
        (second.gathered, second.sent, second.failed.len()),
        (0, 1, 0),
        "{second:?}"
    );
    let third = noti::digest::run(&n).await.unwrap();
    assert_eq!((third.gathered, third.sent), (0, 0));

    let mails = smtp.wait_for(3, Duration::from_secs(1)).await;
    assert_eq!(mails.len(), 2, "welcome + one digest");
    let digest = text_part(&mails[1]);
    for i in 0..3 {
        assert!(digest.contains(&format!("question {i}")), "{digest}");
    }
    let posts = discord.delivered();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["embeds"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_batch_reads_its_owners_at_once_and_a_registration_inside_it_counts() {
    let smtp = Smtp::start(0);
    let (_t, db) = noti_db().await;
    let n = notifier(&db, Some(&smtp), &[]);
    let sub = noti::subscription(n.clone());
    let (instant, off, newcomer) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    for (who, mail) in [(instant, "instant@example.org"), (off, "off@example.org")] {
        let r = event(
            "user.registered",
            json!({"userId": who, "email": mail, "displayName": "Owner", "locale": "en"}),
        );
        assert_eq!(process(&sub, &r.to_bytes()).await, Disposition::Ack);
    }
    let mut conn = db.pool().acquire().await.unwrap();
    let quiet = noti::store::Settings {
        mode: noti::store::Mode::Off,
        ..Default::default()
    };
    noti::store::save_settings(&mut conn, off, &quiet)
        .await
        .unwrap();
    drop(conn);
    let question = |owner: Uuid, text: &str| {
        event(
            "chat.question_asked",
            json!({"chatbotSlug": "bot", "ownerId": owner, "question": text, "askerRole": "guest", "answerId": null, "askedAt": "2026-11-25T15:00:00Z"}),
        )
    };
    // The newcomer registers inside the batch, after the owners were read: their question
    // must see the address (with it unknown, a mail server configured, it would be refused).
    let batch = [
        question(instant, "first?"),
        question(off, "unheard?"),
        question(instant, "second?"),
        event(
            "user.registered",
            json!({"userId": newcomer, "email": "new@example.org", "displayName": "New", "locale": "en"}),
        ),
        question(newcomer, "welcome?"),
    ];
    let payloads: Vec<Vec<u8>> = batch.iter().map(Event::to_bytes).collect();
    let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    assert_eq!(
        process_batch(&sub, &payloads).await,
        vec![Disposition::Ack; batch.len()]
    );
    // Applied as one batch, not one by one after a failure: one transaction wrote them all.
    let ids: Vec<Uuid> = batch.iter().map(|e| e.id).collect();
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM processed_events WHERE event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(transactions, 1);
    assert!(dead_letter::list(&db, false).await.unwrap().is_empty());
    // Two welcomes before, then: two questions to the instant owner, none to the one who
    // turned them off, a welcome and a question to the newcomer.
    let mails = smtp.wait_for(6, Duration::from_secs(5)).await;
    let to = |addr: &str| mails.iter().filter(|m| m["rcpt_tos"][0] == addr).count();
    assert_eq!(
        (
            to("instant@example.org"),
            to("off@example.org"),
            to("new@example.org")
        ),
        (3, 1, 2),
        "{mails:#?}"
    );
}

#[tokio::test]
async fn mail_goes_over_starttls_when_offered_and_required_refuses_plain_servers() {
    let dir = std::env::temp_dir().join(format!("noti-tls-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, pem_key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&pem_key, key.signing_key.serialize_pem()).unwrap();
    let ca = (
        "PROTOSTAR_NOTI__SMTP__CA_PEM_FILE",
        cert.display().to_string(),
    );

    // The server offers STARTTLS: the default (`opportunistic`) takes it.
    let smtp = Smtp::start_with(0, Some((&cert, &pem_key)));
    let (_t, db) = noti_db().await;
    let sub = noti::subscription(notifier(&db, Some(&smtp), std::slice::from_ref(&ca)));
    let e = event(
        "user.password_reset_requested",
        json!({"userId": Uuid::now_v7(), "email": "a@example.org", "token": "t", "expiresAt": "2026-11-25T18:00:00Z"}),
    );
    assert_eq!(process(&sub, &e.to_bytes()).await, Disposition::Ack);
    let mails = smtp.wait_for(1, Duration::from_secs(2)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0]["tls"], true,
        "sent in the clear although STARTTLS was offered"
    );

    // A server without STARTTLS and `tls = "required"`: nothing goes out in the clear.
    let plain = Smtp::start(0);
    let (_t2, db2) = noti_db().await;
    let sub = noti::subscription(notifier(
        &db2,
        Some(&plain),
        &[
            ca,
            ("PROTOSTAR_NOTI__SMTP__TLS", "required".into()),
            ("PROTOSTAR_NOTI__RETRY__MAX_ATTEMPTS", "2".into()),
        ],
    ));
    assert_eq!(process(&sub, &e.to_bytes()).await, Disposition::Ack);
    assert!(plain.messages().is_empty());
    let parked = dead_letter::list(&db2, false).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("STARTTLS is not supported"),
        "{}",
        parked[0].reason
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Without a mail server (a one-machine install), informational mails are skipped, not parked,
/// and the account's address is still remembered: a registration whose welcome mail could not
/// go used to be rolled back whole, so every later question to that owner was parked as "no
/// address known". A password-reset link, which someone waits for, is parked with the reason.
#[tokio::test]
async fn without_a_mail_server_information_is_skipped_and_addresses_kept() {
    let (_t, db) = noti_db().await;
    let n = notifier(&db, None, &[]);
    let sub = noti::subscription(n.clone());
    let owner = Uuid::now_v7();
    let events = [
        event(
            "user.registered",
            json!({"userId": owner, "email": "owner@example.org", "displayName": "Owner", "role": "stargazer"}),
        ),
        event(
            "invite.redeemed",
            json!({"userId": owner, "inviteId": Uuid::now_v7()}),
        ),
        event(
            "chat.question_asked",
            json!({"chatbotSlug": "owner-bot", "ownerId": owner, "question": "Why Rust?", "askerRole": "guest", "answerId": null, "askedAt": "2026-11-25T15:00:00Z"}),
        ),
    ];
    for e in &events {
        assert_eq!(process(&sub, &e.to_bytes()).await, Disposition::Ack);
    }
    assert!(dead_letter::list(&db, false).await.unwrap().is_empty());
    let mut conn = db.pool().acquire().await.unwrap();
    let known = noti::store::recipient(&mut conn, owner).await.unwrap();
    assert_eq!(known.map(|r| r.email).as_deref(), Some("owner@example.org"));
    drop(conn);

    let reset = event(
        "user.password_reset_requested",
        json!({"userId": owner, "email": "owner@example.org", "token": "tok-1", "expiresAt": "2026-11-25T18:00:00Z"}),
    );
    assert_eq!(process(&sub, &reset.to_bytes()).await, Disposition::Ack);
    let parked = dead_letter::list(&db, false).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event_id, Some(reset.id));
    assert!(
        parked[0].reason.contains("noti.smtp"),
        "{}",
        parked[0].reason
    );
}
