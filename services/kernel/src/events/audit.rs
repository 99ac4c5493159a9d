//! The shape of `audit.*` events, which every service publishes and the audit service records:
//! who did what to whom, with what outcome, from where, in which request.

use super::{Event, envelope::EnvelopeError};
use crate::trace_context::TraceParent;
use serde_json::{Value, json};
use std::net::IpAddr;

/// One security-relevant act.
pub struct AuditRecord<'a> {
    /// `sign_in_failed`, `role_changed`, ...: the event type is `audit.<action>`.
    pub action: &'a str,
    /// Who did it; `None` for someone not signed in.
    pub actor: Option<String>,
    /// What it was done to (an account, an invite, a document).
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: &'a str,
    pub client: Option<IpAddr>,
    pub request_id: Option<String>,
    pub trace: Option<TraceParent>,
    pub details: Value,
}

impl AuditRecord<'_> {
    /// The event, from `service`, ready for the outbox.
    pub fn event(&self, service: &str) -> Result<Event, EnvelopeError> {
        let data = json!({
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "clientAddress": self.client.map(|a| a.to_string()),
            "requestId": self.request_id,
            "details": self.details,
        });
        let mut event = Event::new(&format!("audit.{}", self.action), service, data)?;
        if let Some(t) = &self.target {
            event = event.with_subject(t.clone());
        }
        if let Some(t) = &self.trace {
            event = event.with_trace(t);
        }
        Ok(event)
    }
}

impl AuditRecord<'_> {
    /// A record with nothing set, to fill with struct update syntax.
    pub fn empty() -> Self {
        AuditRecord {
            action: "",
            actor: None,
            target: None,
            outcome: "success",
            client: None,
            request_id: None,
            trace: None,
            details: Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_the_fields_the_audit_trail_reads() {
        let e = AuditRecord {
            action: "role_changed",
            actor: Some("admin-1".into()),
            target: Some("user-2".into()),
            outcome: "success",
            client: "203.0.113.9".parse().ok(),
            request_id: Some("r-1".into()),
            trace: None,
            details: json!({"to": "protostar"}),
        }
        .event("user")
        .unwrap();
        assert_eq!(e.event_type, "audit.role_changed");
        assert_eq!(e.subject.as_deref(), Some("user-2"));
        assert_eq!(e.data["clientAddress"], "203.0.113.9");
        assert_eq!(e.data["actor"], "admin-1");
        assert!(
            AuditRecord {
                action: "Bad Action",
                ..AuditRecord::empty()
            }
            .event("user")
            .is_err()
        );
    }
}
