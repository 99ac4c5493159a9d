//! The transactional outbox: an event is written in the same transaction as the change it
//! describes, so it exists if and only if the change committed. The relay publishes it later.

use super::Event;
use sqlx::PgConnection;

/// The channels the relays listen on to wake as soon as an event commits: one per schema, so a
/// commit wakes the relay of the outbox it wrote to and no other (one shared channel woke every
/// relay of every service at each commit, to find nothing: under `--target all` that was most
/// of PostgreSQL's work per question asked).
const NOTIFY_PREFIX: &str = "outbox.";
/// PostgreSQL's longest name (`NAMEDATALEN - 1` bytes); `pg_notify` refuses a longer channel.
const MAX_CHANNEL: usize = 63;

/// The channel of `schema`'s outbox: the prefix and the schema name, cut to PostgreSQL's longest
/// name. Two schemas whose names share their first 56 bytes share a channel, which costs a
/// look that finds nothing, never a missed event. `enqueue` computes the same text in SQL.
pub fn notify_channel(schema: &str) -> String {
    let mut channel = format!("{NOTIFY_PREFIX}{schema}");
    // Schema names are ASCII (`db::valid_schema`), so any byte is a character boundary.
    channel.truncate(MAX_CHANNEL);
    channel
}

/// The outbox write and its notification, as the end of a statement whose earlier parameters
/// are `$1..$before`: `queued AS (INSERT ...) SELECT pg_notify(...)`, to follow `WITH` and any
/// common table expressions of the caller's own. Bind the caller's parameters, then
/// [`bind_event`]. One statement makes the change and its event atomic without a transaction
/// block, in one round trip (see `chat`'s answer record).
pub fn queued_tail(before: usize) -> String {
    let p = |i: usize| before + i;
    // The row, and the notification that is delivered at commit (and not at all on rollback:
    // exactly the events that exist). The channel is `notify_channel(current_schema())`,
    // computed where the schema is known.
    format!(
        "queued AS (INSERT INTO outbox (id, event_type, envelope) VALUES (${}, ${}, ${})) \
         SELECT pg_notify(left(${} || current_schema(), ${}), '')",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5)
    )
}

/// Binds the parameters of [`queued_tail`] for `event`, after the statement's own.
pub fn bind_event<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    event: &'q Event,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    q.bind(event.id)
        .bind(&event.event_type)
        .bind(sqlx::types::Json(event))
        .bind(NOTIFY_PREFIX)
        .bind(MAX_CHANNEL as i32)
}

/// Writes `event` into the outbox of the schema the connection's `search_path` names (the
/// service's own). Call it inside the transaction that makes the change.
pub async fn enqueue(tx: &mut PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("WITH {}", queued_tail(0)));
    bind_event(sqlx::query(sqlx::AssertSqlSafe(SQL.as_str())), event)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Builds an event of `service` about `subject` and continues the request's trace in it: what a
/// service writes with [`enqueue`] (or [`queued_tail`]) for each domain event it publishes.
pub fn event(
    service: &str,
    event_type: &str,
    subject: &str,
    data: serde_json::Value,
    trace: Option<&crate::trace_context::TraceParent>,
) -> Result<Event, crate::Problem> {
    let mut event = Event::new(event_type, service, data)
        .map_err(crate::Problem::internal)?
        .with_subject(subject);
    if let Some(t) = trace {
        event = event.with_trace(t);
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_per_schema_within_postgres_longest_name() {
        assert_eq!(notify_channel("chat"), "outbox.chat");
        assert_ne!(notify_channel("chat"), notify_channel("noti"));
        let long = "s".repeat(63);
        let channel = notify_channel(&long);
        assert_eq!(channel.len(), MAX_CHANNEL);
        assert!(channel.starts_with(NOTIFY_PREFIX));
    }

    #[test]
    fn the_tail_numbers_its_parameters_after_the_callers() {
        let tail = queued_tail(13);
        assert!(tail.contains("VALUES ($14, $15, $16)"), "{tail}");
        assert!(
            tail.contains("left($17 || current_schema(), $18)"),
            "{tail}"
        );
        assert!(queued_tail(0).contains("VALUES ($1, $2, $3)"));
    }
}
