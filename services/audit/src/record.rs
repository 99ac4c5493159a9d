//! One line of the trail and its hash.
//!
//! A line is a JSON object whose last member is `"hash"`: the SHA-256 of everything before it
//! (the line with that member cut off and the object closed again). Among the hashed members is
//! `prev`, the previous line's hash. Editing a line changes its own hash, so `verify` names that
//! very line; recomputing its hash as well breaks the next line's `prev`; removing a line breaks
//! both `prev` and the `seq` count. Rewriting history means rewriting every later line.

use chrono::{DateTime, Utc};
use kernel::events::Event;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `prev` of the very first line of a trail.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_MEMBER: &str = ",\"hash\":\"";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Position in the whole trail, from 1: a gap shows as a jump.
    pub seq: u64,
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
    /// The event type: what was done (`audit.sign_in_failed`).
    pub action: String,
    /// The service that reported it.
    pub source: String,
    /// Who did it (a user id, `admin:<id>`, `anonymous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What it was done to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Everything else the event carried.
    pub data: serde_json::Value,
    pub prev: String,
}

fn text(data: &serde_json::Value, key: &str) -> Option<String> {
    data.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

impl Record {
    pub fn from_event(event: &Event, seq: u64, prev: &str) -> Self {
        Self {
            seq,
            event_id: event.id,
            recorded_at: Utc::now(),
            occurred_at: event.time,
            action: event.event_type.clone(),
            source: event.source.clone(),
            actor: text(&event.data, "actor"),
            subject: event
                .subject
                .clone()
                .or_else(|| text(&event.data, "subject")),
            outcome: text(&event.data, "outcome"),
            client_addr: text(&event.data, "clientAddress")
                .or_else(|| text(&event.data, "clientAddr")),
            request_id: text(&event.data, "requestId"),
            data: event.data.clone(),
            prev: prev.to_owned(),
        }
    }

    /// The line as written (no newline) and its hash.
    pub fn to_line(&self) -> (String, String) {
        // Serialising a struct of strings, numbers and JSON values cannot fail.
        let body = serde_json::to_string(self).unwrap_or_default();
        let hash = hash_body(&body);
        let open = body.strip_suffix('}').unwrap_or(&body);
        (format!("{open}{HASH_MEMBER}{hash}\"}}"), hash)
    }
}

pub fn hash_body(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("not a JSON object ending in a hash")]
    Shape,
    #[error("its content does not match its hash (the line was edited)")]
    HashMismatch,
    #[error("not a valid record: {0}")]
    Record(String),
}

/// Checks a line against its own hash and reads it.
pub fn parse_line(line: &str) -> Result<(Record, String), LineError> {
    let at = line.rfind(HASH_MEMBER).ok_or(LineError::Shape)?;
    let stated = line
        .get(at + HASH_MEMBER.len()..)
        .and_then(|rest| rest.strip_suffix("\"}"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(LineError::Shape)?;
    let body = format!("{}}}", &line[..at]);
    if hash_body(&body) != stated {
        return Err(LineError::HashMismatch);
    }
    let record: Record =
        serde_json::from_str(&body).map_err(|e| LineError::Record(e.to_string()))?;
    Ok((record, stated.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new(
            "audit.sign_in_failed",
            "auth",
            serde_json::json!({"actor": "anonymous", "outcome": "failure", "clientAddress": "203.0.113.7", "requestId": "r-1", "email": "민준@example.com"}),
        )
        .unwrap()
    }

    #[test]
    fn a_line_carries_its_own_hash_and_reads_back() {
        let r = Record::from_event(&event(), 1, GENESIS);
        let (line, hash) = r.to_line();
        assert!(!line.contains('\n'));
        let (back, h) = parse_line(&line).unwrap();
        assert_eq!(back.client_addr.as_deref(), Some("203.0.113.7"));
        assert_eq!(back.actor.as_deref(), Some("anonymous"));
        assert_eq!((back, h), (r, hash));
    }

    #[test]
    fn any_edit_is_caught_by_the_line_itself() {
        let (line, _) = Record::from_event(&event(), 1, GENESIS).to_line();
        let edited = line.replace("failure", "success");
        assert_eq!(parse_line(&edited).unwrap_err(), LineError::HashMismatch);
        assert_eq!(parse_line("{}").unwrap_err(), LineError::Shape);
        assert_eq!(parse_line("").unwrap_err(), LineError::Shape);
        assert_eq!(
            parse_line(&line[..line.len() - 3]).unwrap_err(),
            LineError::Shape
        );
    }
}
