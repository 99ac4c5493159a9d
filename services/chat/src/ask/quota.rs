//! The product's question quotas, exact under any concurrency.
//!
//! Each ask reserves one unit on every counter that applies to it, in one statement (the
//! `take_quota` function, see its migration): `INSERT … ON CONFLICT DO UPDATE SET used = used +
//! 1 WHERE used < limit` per counter, always in the same order. The row lock makes racing
//! requests take turns, and a counter at its limit returns no row, which undoes the units
//! already taken on the others. The locks are held only while that statement runs, so asks
//! sharing a counter (the chatbot's day) do not queue behind each other's round trips. An answer that then fails gives its units back
//! ([`Quotas::refund`]), so a model outage costs nobody a question. (A process that dies between
//! the two keeps the unit: the rule errs on the side of never giving a fourth answer.)
//!
//! | asker | counters |
//! |---|---|
//! | guest | its subject, in total (`guest_total`); its address, per day (`guest_ip_per_day`), so a fresh guest token does not start a fresh count; the chatbot, per day |
//! | stargazer | its subject, per day (`stargazer_per_day`); the chatbot, per day |
//! | protostar, admin | none |
//!
//! Days are calendar days in `chat.quotas.timezone` (PostgreSQL's time zone database decides
//! where they start).

use chrono::{DateTime, Utc};
use kernel::ConfigError;
use kernel::db::Database;
use kernel::tokens::Role;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::net::IpAddr;

/// Config key `chat.quotas`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    #[serde(default = "default_guest_total")]
    pub guest_total: u32,
    #[serde(default = "default_stargazer_per_day")]
    pub stargazer_per_day: u32,
    /// Guest questions from one address per day, whatever tokens it uses: the ceiling for
    /// someone who throws away their guest token. An office behind one address shares it.
    #[serde(default = "default_guest_ip_per_day")]
    pub guest_ip_per_day: u32,
    /// Questions one chatbot answers per day to guests and stargazers together.
    #[serde(default = "default_chatbot_per_day")]
    pub chatbot_per_day: u32,
    /// Where a quota day starts: an IANA zone name.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_guest_total() -> u32 {
    3
}
fn default_stargazer_per_day() -> u32 {
    10
}
fn default_guest_ip_per_day() -> u32 {
    10
}
fn default_chatbot_per_day() -> u32 {
    500
}
fn default_timezone() -> String {
    "Asia/Seoul".into()
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            guest_total: default_guest_total(),
            stargazer_per_day: default_stargazer_per_day(),
            guest_ip_per_day: default_guest_ip_per_day(),
            chatbot_per_day: default_chatbot_per_day(),
            timezone: default_timezone(),
        }
    }
}

impl QuotaConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        for (key, v) in [
            ("chat.quotas.guest_total", self.guest_total),
            ("chat.quotas.stargazer_per_day", self.stargazer_per_day),
            ("chat.quotas.guest_ip_per_day", self.guest_ip_per_day),
            ("chat.quotas.chatbot_per_day", self.chatbot_per_day),
        ] {
            if v > 1_000_000 {
                errors.push(ConfigError::key(key, "must be at most 1000000"));
            }
        }
        let tz = self.timezone.trim();
        // PostgreSQL is the judge of zone names; this only keeps out what cannot be one.
        if tz.is_empty()
            || tz.len() > 64
            || !tz
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        {
            errors.push(ConfigError::key(
                "chat.quotas.timezone",
                "must be a time zone name like Asia/Seoul or UTC",
            ));
        }
        ConfigError::collect(errors)
    }
}

/// What one counter limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GuestTotal,
    GuestAddressDay,
    StargazerDay,
    ChatbotDay,
}

#[derive(Debug, Clone)]
struct Counter {
    kind: Kind,
    scope: String,
    daily: bool,
    limit: u32,
}

/// Where an asker stands, as `GET …/quota` and every answer show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QuotaView {
    /// `null`: unlimited.
    pub limit: Option<u32>,
    pub used: u32,
    pub remaining: Option<u32>,
    pub resets_at: Option<DateTime<Utc>>,
    /// `total`, `day` or `unlimited`.
    pub period: &'static str,
}

/// A refused reservation: which counter is full, and when it empties.
#[derive(Debug, Clone)]
pub struct Exceeded {
    pub kind: Kind,
    pub limit: u32,
    pub resets_at: Option<DateTime<Utc>>,
}

impl Exceeded {
    pub fn problem(&self) -> kernel::Problem {
        let detail = match self.kind {
            Kind::GuestTotal => format!(
                "Guests can ask {} questions. Sign up to ask more every day.",
                self.limit
            ),
            Kind::GuestAddressDay => {
                "Too many guest questions came from your network today. Sign up to keep asking."
                    .to_owned()
            }
            Kind::StargazerDay => format!(
                "You have asked your {} questions for today; more tomorrow.",
                self.limit
            ),
            Kind::ChatbotDay => {
                "This chatbot has answered as many questions as it can today.".to_owned()
            }
        };
        kernel::Problem::QuotaExceeded {
            detail,
            limit: self.limit,
            resets_at: self.resets_at,
        }
    }
}

/// Units taken by one ask, to give back if its answer fails.
#[derive(Debug, Clone)]
pub struct Reservation {
    taken: Vec<(String, String)>,
    pub view: QuotaView,
}

/// Who is asking, as far as quotas care.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    pub subject: &'a str,
    pub role: Role,
    pub address: Option<IpAddr>,
}

#[derive(Clone)]
pub struct Quotas {
    db: Database,
    config: QuotaConfig,
}

/// The day `now` falls in, and when the next begins, in the configured zone.
struct Day {
    period: String,
    next: DateTime<Utc>,
}

impl Quotas {
    pub fn new(db: Database, config: QuotaConfig) -> Self {
        Self { db, config }
    }

    fn counters(&self, asker: &Asker<'_>, chatbot_id: uuid::Uuid) -> Vec<Counter> {
        let c = &self.config;
        let chatbot = Counter {
            kind: Kind::ChatbotDay,
            scope: format!("chatbot:{chatbot_id}"),
            daily: true,
            limit: c.chatbot_per_day,
        };
        match asker.role {
            Role::Guest => {
                let mut v = vec![Counter {
                    kind: Kind::GuestTotal,
                    scope: format!("subject:{}", asker.subject),
                    daily: false,
                    limit: c.guest_total,
                }];
                if let Some(ip) = asker.address {
                    v.push(Counter {
                        kind: Kind::GuestAddressDay,
                        scope: format!("ip:{}", ip.to_canonical()),
                        daily: true,
                        limit: c.guest_ip_per_day,
                    });
                }
                v.push(chatbot);
                v
            }
            Role::Stargazer => vec![
                Counter {
                    kind: Kind::StargazerDay,
                    scope: format!("subject:{}", asker.subject),
                    daily: true,
                    limit: c.stargazer_per_day,
                },
                chatbot,
            ],
            Role::Protostar | Role::Admin => Vec::new(),
        }
    }

    async fn day(
        &self,
        conn: &mut sqlx::PgConnection,
        now: DateTime<Utc>,
    ) -> Result<Day, sqlx::Error> {
        let row = sqlx::query("SELECT day, next_day FROM quota_day($1, $2)")
            .bind(now)
            .bind(&self.config.timezone)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Day {
            period: row.try_get(0)?,
            next: row.try_get(1)?,
        })
    }

    /// Takes one unit on every counter of this asker at `now`, or none at all.
    pub async fn reserve(
        &self,
        asker: &Asker<'_>,
        chatbot_id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<Result<Reservation, Exceeded>, sqlx::Error> {
        let counters = self.counters(asker, chatbot_id);
        if counters.is_empty() {
            return Ok(Ok(Reservation {
                taken: Vec::new(),
                view: unlimited(),
            }));
        }
        // One statement (see the `take_quota` migration): the counters' row locks are held
        // only while it runs. They are taken in the order `counters` lists them, the same in
        // every reservation (the asker's own counters first, the shared chatbot counter last),
        // so two reservations never wait on each other in a cycle.
        let scopes: Vec<&str> = counters.iter().map(|c| c.scope.as_str()).collect();
        let daily: Vec<bool> = counters.iter().map(|c| c.daily).collect();
        let limits: Vec<i64> = counters.iter().map(|c| i64::from(c.limit)).collect();
        let row =
            sqlx::query("SELECT refused, taken, day, next_day FROM take_quota($1, $2, $3, $4, $5)")
                .bind(now)
                .bind(&self.config.timezone)
                .bind(&scopes)
                .bind(&daily)
                .bind(&limits)
                .fetch_one(self.db.pool())
                .await?;
        let refused: i32 = row.try_get(0)?;
        let used: Vec<i32> = row.try_get(1)?;
        let day = Day {
            period: row.try_get(2)?,
            next: row.try_get(3)?,
        };
        if let Some(c) = usize::try_from(refused)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| counters.get(i))
        {
            return Ok(Err(Exceeded {
                kind: c.kind,
                limit: c.limit,
                resets_at: c.daily.then_some(day.next),
            }));
        }
        if used.len() != counters.len() {
            return Err(sqlx::Error::Protocol(format!(
                "take_quota took {} of {} counters",
                used.len(),
                counters.len()
            )));
        }
        let mut taken = Vec::new();
        let mut used_first = 0;
        // What the tightest counter leaves: the asker's own limit may not be what stops them.
        let mut remaining = u32::MAX;
        let mut binding: Option<&Counter> = None;
        for (i, (c, used)) in counters.iter().zip(used).enumerate() {
            let period = if c.daily {
                day.period.clone()
            } else {
                "total".into()
            };
            let used = used.max(0) as u32;
            if i == 0 {
                used_first = used;
            }
            let left = c.limit.saturating_sub(used);
            if left < remaining {
                remaining = left;
                binding = Some(c);
            }
            taken.push((c.scope.clone(), period));
        }
        let first = &counters[0];
        let resets = binding.unwrap_or(first);
        Ok(Ok(Reservation {
            taken,
            view: QuotaView {
                limit: Some(first.limit),
                used: used_first,
                remaining: Some(remaining),
                resets_at: resets.daily.then_some(day.next),
                period: if first.daily { "day" } else { "total" },
            },
        }))
    }

    /// Gives back what `r` took (its answer failed). One statement per counter, each its own
    /// transaction: a statement touching several rows would lock them in whatever order its plan
    /// picks, and could wait in a cycle with a reservation locking them in order.
    pub async fn refund(&self, r: &Reservation) -> Result<(), sqlx::Error> {
        for (scope, period) in &r.taken {
            sqlx::query(
                "UPDATE quota_counters SET used = used - 1 \
                 WHERE scope = $1 AND period = $2 AND used > 0",
            )
            .bind(scope)
            .bind(period)
            .execute(self.db.pool())
            .await?;
        }
        Ok(())
    }

    /// Where the asker stands at `now`: the asker's own limit, with `remaining` lowered when a
    /// shared ceiling (their address, the chatbot) would stop them sooner.
    pub async fn view(
        &self,
        asker: &Asker<'_>,
        chatbot_id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<QuotaView, sqlx::Error> {
        let counters = self.counters(asker, chatbot_id);
        if counters.is_empty() {
            return Ok(unlimited());
        }
        let mut conn = self.db.pool().acquire().await?;
        let day = self.day(&mut conn, now).await?;
        let mut remaining = u32::MAX;
        let mut used_first = 0;
        let mut binding: Option<&Counter> = None;
        for (i, c) in counters.iter().enumerate() {
            let period = if c.daily {
                day.period.as_str()
            } else {
                "total"
            };
            let used: Option<i32> = sqlx::query_scalar(
                "SELECT used FROM quota_counters WHERE scope = $1 AND period = $2",
            )
            .bind(&c.scope)
            .bind(period)
            .fetch_optional(&mut *conn)
            .await?;
            let used = used.unwrap_or(0).max(0) as u32;
            if i == 0 {
                used_first = used;
            }
            let left = c.limit.saturating_sub(used);
            if left < remaining {
                remaining = left;
                binding = Some(c);
            }
        }
        let first = &counters[0];
        let resets = binding.unwrap_or(first);
        Ok(QuotaView {
            limit: Some(first.limit),
            used: used_first,
            remaining: Some(remaining),
            resets_at: resets.daily.then_some(day.next),
            period: if first.daily { "day" } else { "total" },
        })
    }

    /// Forgets an account's own counters (`user.deleted`).
    pub async fn forget(
        &self,
        tx: &mut sqlx::PgConnection,
        subject: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM quota_counters WHERE scope = $1")
            .bind(format!("subject:{subject}"))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Forgets the daily counters of days before yesterday (in the configured zone): they no
    /// longer limit anything, and the per-address ones hold client addresses. Totals stay.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(
            "DELETE FROM quota_counters WHERE period <> 'total' \
             AND period < to_char(($1::timestamptz AT TIME ZONE $2)::date - 1, 'YYYY-MM-DD')",
        )
        .bind(now)
        .bind(&self.config.timezone)
        .execute(self.db.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Prunes every hour until `stop`.
    pub fn spawn_pruning(&self, stop: tokio_util::sync::CancellationToken) {
        let quotas = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                }
                match quotas.prune(Utc::now()).await {
                    Ok(n) if n > 0 => tracing::info!(counters = n, "past quota days forgotten"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "past quota days not pruned"),
                }
            }
        });
    }

    /// Whether PostgreSQL knows the configured zone; for `/readyz`.
    pub async fn check_timezone(&self) -> Result<(), String> {
        sqlx::query("SELECT now() AT TIME ZONE $1")
            .bind(&self.config.timezone)
            .execute(self.db.pool())
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "chat.quotas.timezone `{}` is not a zone PostgreSQL knows ({e})",
                    self.config.timezone
                )
            })
    }
}

fn unlimited() -> QuotaView {
    QuotaView {
        limit: None,
        used: 0,
        remaining: None,
        resets_at: None,
        period: "unlimited",
    }
}
