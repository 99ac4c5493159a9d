//! The quota rules on the real PostgreSQL: exact under concurrency, days in the configured time
//! zone, a refused or failed ask costing nothing, and a fresh guest token from the same address
//! not starting a fresh count.

use chat::ask::quota::{Asker, Kind, QuotaConfig, Quotas};
use chrono::{DateTime, TimeZone, Utc};
use kernel::db::Database;
use kernel::testing::TestDb;
use kernel::tokens::Role;
use std::net::IpAddr;
use uuid::Uuid;

async fn quotas(config: QuotaConfig) -> (TestDb, Quotas) {
    let db = TestDb::new().await;
    let chat = Database::connect_lazy(&db.config(), chat::SCHEMA).unwrap();
    chat.migrate(Some(&chat::MIGRATOR)).await.unwrap();
    (db, Quotas::new(chat, config))
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn a_guest_gets_exactly_three_however_many_race() {
    let (_db, q) = quotas(QuotaConfig {
        guest_ip_per_day: 1000,
        ..Default::default()
    })
    .await;
    let bot = Uuid::now_v7();
    let now = Utc::now();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move {
                let ip: IpAddr = format!("10.0.0.{}", i % 7).parse().unwrap();
                let asker = Asker {
                    subject: "guest-one",
                    role: Role::Guest,
                    address: Some(ip),
                };
                q.reserve(&asker, bot, now).await.unwrap()
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                granted += 1;
                assert_eq!(r.view.limit, Some(3));
                assert_eq!(r.view.period, "total");
            }
            Err(e) => {
                assert_eq!(e.kind, Kind::GuestTotal);
                assert_eq!(e.limit, 3);
                assert!(e.resets_at.is_none(), "a guest's questions never come back");
            }
        }
    }
    assert_eq!(granted, 3);
    let asker = Asker {
        subject: "guest-one",
        role: Role::Guest,
        address: None,
    };
    let view = q.view(&asker, bot, now).await.unwrap();
    assert_eq!((view.used, view.remaining), (3, Some(0)));
}

#[tokio::test]
async fn a_fresh_guest_token_from_the_same_address_keeps_the_count() {
    let (test_db, q) = quotas(QuotaConfig {
        guest_ip_per_day: 3,
        ..Default::default()
    })
    .await;
    let bot = Uuid::now_v7();
    let now = utc("2026-12-07T03:00:00Z");
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    for i in 0..3 {
        let a = Asker {
            subject: if i < 2 { "guest-a" } else { "guest-b" },
            role: Role::Guest,
            address: Some(ip),
        };
        assert!(q.reserve(&a, bot, now).await.unwrap().is_ok());
    }
    let rotated = Asker {
        subject: "guest-c",
        role: Role::Guest,
        address: Some(ip),
    };
    let refused = q.reserve(&rotated, bot, now).await.unwrap().unwrap_err();
    assert_eq!(refused.kind, Kind::GuestAddressDay);
    // The refusal took nothing from guest-c's own three, and left no counter of its own behind
    // (one fresh token after another must not leave a row each).
    let view = q.view(&rotated, bot, now).await.unwrap();
    assert_eq!((view.used, view.remaining), (0, Some(0)));
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM quota_counters WHERE scope = 'subject:guest-c'")
            .fetch_one(
                Database::connect_lazy(&test_db.config(), chat::SCHEMA)
                    .unwrap()
                    .pool(),
            )
            .await
            .unwrap();
    assert_eq!(left, 0);
    // Another address is another count.
    let elsewhere = Asker {
        address: Some("198.51.100.1".parse().unwrap()),
        ..rotated
    };
    assert!(q.reserve(&elsewhere, bot, now).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_stargazer_gets_ten_a_day_and_the_day_starts_in_seoul() {
    let (_db, q) = quotas(QuotaConfig::default()).await;
    let bot = Uuid::now_v7();
    let me = Uuid::now_v7().to_string();
    let asker = Asker {
        subject: &me,
        role: Role::Stargazer,
        address: Some("203.0.113.9".parse().unwrap()),
    };
    // 23:30 in Seoul is 14:30 UTC; the day ends at 15:00 UTC.
    let late = utc("2026-12-07T14:30:00Z");
    for n in 1..=10 {
        let r = q.reserve(&asker, bot, late).await.unwrap().unwrap();
        assert_eq!(r.view.used, n);
        assert_eq!(r.view.remaining, Some(10 - n));
    }
    let refused = q.reserve(&asker, bot, late).await.unwrap().unwrap_err();
    assert_eq!(refused.kind, Kind::StargazerDay);
    let midnight_seoul = Utc.with_ymd_and_hms(2026, 12, 7, 15, 0, 0).unwrap();
    assert_eq!(refused.resets_at, Some(midnight_seoul));
    let view = q.view(&asker, bot, late).await.unwrap();
    assert_eq!(
        (view.used, view.remaining, view.resets_at, view.period),
        (10, Some(0), Some(midnight_seoul), "day")
    );
    // One second before midnight in Seoul it is still today; at midnight a new day begins,
    // although it is the same UTC date.
    assert!(
        q.reserve(&asker, bot, utc("2026-12-07T14:59:59Z"))
            .await
            .unwrap()
            .is_err()
    );
    let next = q
        .reserve(&asker, bot, utc("2026-12-07T15:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.view.used, 1);
}

#[tokio::test]
async fn a_failed_answer_gives_its_question_back_and_owners_are_unlimited() {
    let (_db, q) = quotas(QuotaConfig::default()).await;
    let bot = Uuid::now_v7();
    let now = Utc::now();
    let guest = Asker {
        subject: "guest-refund",
        role: Role::Guest,
        address: Some("203.0.113.10".parse().unwrap()),
    };
    for _ in 0..3 {
        let r = q.reserve(&guest, bot, now).await.unwrap().unwrap();
        q.refund(&r).await.unwrap();
    }
    assert_eq!(q.view(&guest, bot, now).await.unwrap().used, 0);
    for kind in [Role::Protostar, Role::Admin] {
        let who = Asker {
            subject: "someone",
            role: kind,
            address: None,
        };
        for _ in 0..20 {
            let r = q.reserve(&who, bot, now).await.unwrap().unwrap();
            assert_eq!(r.view.period, "unlimited");
            assert_eq!(r.view.remaining, None);
        }
    }
}

#[tokio::test]
async fn a_chatbot_answers_at_most_its_daily_ceiling() {
    let (_db, q) = quotas(QuotaConfig {
        chatbot_per_day: 4,
        ..Default::default()
    })
    .await;
    let bot = Uuid::now_v7();
    let now = Utc::now();
    let mut refused = None;
    for i in 0..6 {
        let s = format!("stargazer-{i}");
        let a = Asker {
            subject: &s,
            role: Role::Stargazer,
            address: None,
        };
        if let Err(e) = q.reserve(&a, bot, now).await.unwrap() {
            refused = Some((i, e.kind));
            break;
        }
    }
    assert_eq!(refused, Some((4, Kind::ChatbotDay)));
    // The refusal rolled back the asker's own unit too.
    let a = Asker {
        subject: "stargazer-4",
        role: Role::Stargazer,
        address: None,
    };
    assert_eq!(q.view(&a, bot, now).await.unwrap().used, 0);
}

#[tokio::test]
async fn an_unknown_time_zone_is_named() {
    let (_db, q) = quotas(QuotaConfig {
        timezone: "Mars/Olympus_Mons".into(),
        ..Default::default()
    })
    .await;
    let e = q.check_timezone().await.unwrap_err();
    assert!(e.contains("chat.quotas.timezone"), "{e}");
}

#[tokio::test]
async fn past_days_are_forgotten_and_totals_kept() {
    let (_db, q) = quotas(QuotaConfig::default()).await;
    let bot = Uuid::now_v7();
    let guest = Asker {
        subject: "guest-old",
        role: Role::Guest,
        address: Some("203.0.113.20".parse().unwrap()),
    };
    // Three days ago, yesterday and today in Seoul.
    for at in [
        "2026-12-04T03:00:00Z",
        "2026-12-06T03:00:00Z",
        "2026-12-07T03:00:00Z",
    ] {
        let s = format!("stargazer-{at}");
        let a = Asker {
            subject: &s,
            role: Role::Stargazer,
            address: None,
        };
        assert!(q.reserve(&a, bot, utc(at)).await.unwrap().is_ok());
    }
    assert!(
        q.reserve(&guest, bot, utc("2026-12-04T03:00:00Z"))
            .await
            .unwrap()
            .is_ok()
    );
    let now = utc("2026-12-07T04:00:00Z");
    // Three days ago: one stargazer's, the guest address's and the chatbot's counters.
    assert_eq!(q.prune(now).await.unwrap(), 3);
    assert_eq!(q.prune(now).await.unwrap(), 0);
    // The guest's total stays: a guest's three never come back.
    let view = q.view(&guest, bot, now).await.unwrap();
    assert_eq!(view.used, 1);
    // Yesterday's and today's stay.
    let s = "stargazer-2026-12-06T03:00:00Z".to_owned();
    let y = Asker {
        subject: &s,
        role: Role::Stargazer,
        address: None,
    };
    assert_eq!(
        q.view(&y, bot, utc("2026-12-06T04:00:00Z"))
            .await
            .unwrap()
            .used,
        1
    );
}
