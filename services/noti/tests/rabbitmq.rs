//! The must-hold, over the real RabbitMQ and PostgreSQL: a Discord that answers 429 and
//! 500 for a while, then recovers, gets every notification exactly once, and the e-mail sent
//! alongside each is not repeated while Discord is retried. Every event is then published a
//! second time (a producer's relay repeating itself): nothing is sent again.

mod common;

use common::{Answer, FakeDiscord, Smtp, noti_db, notifier};
use kernel::db::Database;
use kernel::events::{Bus, Event, outbox, relay};
use kernel::testing::stack_env;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_discord_gets_every_question_exactly_once() {
    let n: usize = std::env::var("NOTI_QUESTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let _ = kernel::telemetry::init_logging(&kernel::telemetry::LogConfig {
        filter: std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        format: kernel::telemetry::LogFormat::Text,
    });
    let smtp = Smtp::start(0);
    // 429s (Discord's own body and header) and 500s for a while, then it recovers.
    let mut script = Vec::new();
    for i in 0..30 {
        script.push(if i % 3 == 0 {
            Answer::ServerError
        } else {
            Answer::RateLimited { secs: 0.05 }
        });
    }
    let discord = FakeDiscord::start(script).await;
    let (test_db, db) = noti_db().await;
    let producer = Database::connect_lazy(&test_db.config(), "chat").unwrap();
    producer.migrate(None).await.unwrap();

    let owner = Uuid::now_v7();
    let mut conn = db.pool().acquire().await.unwrap();
    let registered: noti::events::Registered = serde_json::from_value(
        json!({"userId": owner, "email": "owner@example.org", "displayName": "Owner"}),
    )
    .unwrap();
    noti::store::upsert_recipient(&mut conn, &registered)
        .await
        .unwrap();
    noti::store::save_settings(
        &mut conn,
        owner,
        &noti::store::Settings {
            mode: noti::store::Mode::Instant,
            email: true,
            discord_webhook_url: Some(discord.webhook("owner")),
            locale: Some("ko".into()),
        },
    )
    .await
    .unwrap();
    drop(conn);

    // A consumer queue of this test's own, on the shared broker.
    let name = format!("noti_{}", Uuid::new_v4().simple());
    let bus = Bus::rabbit(&stack_env("PROTOSTAR_TEST_BROKER_URL"));
    let stop = CancellationToken::new();
    let mut sub = noti::subscription(notifier(&db, Some(&smtp), &[]));
    sub.name = name.clone();
    bus.start_consumer(sub, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    relay::spawn(
        producer.clone(),
        bus.clone(),
        relay::RelayConfig::default(),
        stop.clone(),
    );

    let started = Instant::now();
    let mut events = Vec::new();
    let mut tx = producer.begin().await.unwrap();
    for i in 0..n {
        let e = Event::new(
            "chat.question_asked",
            "chat",
            json!({"chatbotSlug": format!("bot-{i}"), "ownerId": owner, "question": format!("question {i}"), "askerRole": "guest", "answerId": null, "askedAt": chrono::Utc::now()}),
        )
        .unwrap();
        outbox::enqueue(&mut tx, &e).await.unwrap();
        events.push(e);
    }
    tx.commit().await.unwrap();
    // Publishing returns at once: nothing a slow Discord does reaches the producer.
    let publish_took = started.elapsed();

    let posts = discord.wait_for(n, Duration::from_secs(120)).await;
    let mails = smtp.wait_for(n, Duration::from_secs(30)).await;
    let all_delivered = started.elapsed();

    // The same events again, as a relay that lost its confirmations would publish them.
    eprintln!(
        "after the first delivery: {} posts, {} mails, {} discord requests",
        posts.len(),
        mails.len(),
        discord.requests()
    );
    bus.publish(&events).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let posts_after = discord.delivered();
    let mails_after = smtp.messages();
    stop.cancel();
    eprintln!(
        "noti figures: {n} questions, discord requests {} (of which {} delivered), all delivered in {:.2} s; publishing took {} ms",
        discord.requests(),
        posts.len(),
        all_delivered.as_secs_f64(),
        publish_took.as_millis()
    );
    assert_eq!(posts_after.len(), n, "discord messages");
    assert_eq!(mails_after.len(), n, "mails");
    let slugs: HashSet<String> = posts_after
        .iter()
        .map(|p| p["embeds"][0]["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(slugs.len(), n, "each question posted once");
    let subjects: HashSet<String> = mails_after
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects.len(), n, "each question mailed once");
    assert!(
        discord.requests() > n,
        "the stand-in did refuse some requests"
    );
    assert!(
        kernel::events::dead_letter::list(&db, false)
            .await
            .unwrap()
            .is_empty()
    );
}
