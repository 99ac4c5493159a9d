//! The event envelope: CloudEvents 1.0 attributes in its JSON format, so that any CloudEvents
//! tool can read our messages. `type` is the routing key, `domain.event` (`content.uploaded`).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const SPEC_VERSION: &str = "1.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub specversion: String,
    /// UUIDv7: unique, and ordered by creation time.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The producing service, `/protostar/<service>`.
    pub source: String,
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default = "json_content_type")]
    pub datacontenttype: String,
    pub data: serde_json::Value,
    /// The CloudEvents distributed-tracing extension: the W3C traceparent of the request that
    /// caused the event, so that a consumer's logs join the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

fn json_content_type() -> String {
    "application/json".into()
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("event type `{0}` is not of the form domain.event (lowercase letters, digits, _)")]
    BadType(String),
    #[error("event data: {0}")]
    Data(#[from] serde_json::Error),
    #[error("not an event envelope: {0}")]
    Malformed(String),
}

/// `domain.event`, each part `[a-z0-9_]+`: the routing key must not contain topic wildcards.
pub fn valid_type(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

impl Event {
    pub fn new(
        event_type: &str,
        service: &str,
        data: impl Serialize,
    ) -> Result<Self, EnvelopeError> {
        if !valid_type(event_type) {
            return Err(EnvelopeError::BadType(event_type.to_owned()));
        }
        Ok(Self {
            specversion: SPEC_VERSION.into(),
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: format!("/protostar/{service}"),
            time: Utc::now(),
            subject: None,
            datacontenttype: json_content_type(),
            data: serde_json::to_value(data)?,
            traceparent: None,
        })
    }

    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn with_trace(mut self, trace: &crate::trace_context::TraceParent) -> Self {
        self.traceparent = Some(trace.to_string());
        self
    }

    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        Ok(serde_json::from_value(self.data.clone())?)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising our own struct of strings and JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a message from the wire; anything that is not one of our envelopes is an error
    /// the consumer parks with this reason.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let e: Event =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if e.specversion != SPEC_VERSION {
            return Err(EnvelopeError::Malformed(format!(
                "specversion {} is not 1.0",
                e.specversion
            )));
        }
        if !valid_type(&e.event_type) {
            return Err(EnvelopeError::BadType(e.event_type));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_validates() {
        let e = Event::new(
            "content.uploaded",
            "chat",
            serde_json::json!({"documentId": 1}),
        )
        .unwrap()
        .with_subject("doc-1");
        let back = Event::from_bytes(&e.to_bytes()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.source, "/protostar/chat");
        assert!(Event::new("content.*", "chat", ()).is_err());
        assert!(Event::new("content", "chat", ()).is_err());
        assert!(Event::from_bytes(b"{not json").is_err());
        assert!(Event::from_bytes(br#"{"specversion":"0.3","id":"018f0000-0000-7000-8000-000000000000","type":"a.b","source":"x","time":"2026-01-01T00:00:00Z","data":null}"#).is_err());
    }
}
