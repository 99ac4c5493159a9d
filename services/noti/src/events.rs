//! The events noti listens to and the data it reads from each. Producers own their shapes; the
//! structs here read only the fields noti needs and ignore the rest, so a producer adding a field
//! changes nothing here.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

pub const REGISTERED: &str = "user.registered";
pub const DELETED: &str = "user.deleted";
pub const PASSWORD_RESET: &str = "user.password_reset_requested";
pub const INVITE_REDEEMED: &str = "invite.redeemed";
pub const QUESTION_ASKED: &str = "chat.question_asked";
pub const DEAD_LETTERED: &str = kernel::events::dead_letter::DEAD_LETTERED;

pub const PATTERNS: &[&str] = &[
    REGISTERED,
    DELETED,
    PASSWORD_RESET,
    INVITE_REDEEMED,
    QUESTION_ASKED,
    DEAD_LETTERED,
];

/// From auth at sign-up (and the first admin's bootstrap). `locale` is not sent by auth today;
/// when a producer adds it (`ko`, `en-US`, ...) it is used, otherwise `noti.default_locale`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub user_id: Uuid,
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub user_id: Uuid,
}

/// From auth: the single-use token to put in the link. The address is in the event itself, so
/// the reset mail never depends on noti having seen the registration.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    pub user_id: Uuid,
    pub email: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub locale: Option<String>,
}

/// From user, when an account redeems an invite and becomes a protostar.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteRedeemed {
    pub user_id: Uuid,
}

/// What noti expects the chat service to publish when a visitor asks an owner's chatbot
/// something (the chat service does not exist yet; this is the contract it should follow):
///
/// ```json
/// {"chatbotSlug": "jane", "ownerId": "<uuid>", "question": "…", "askerRole": "guest",
///  "answerId": "<id or null>", "askedAt": "2026-11-25T15:00:00Z"}
/// ```
///
/// snake_case names (`chatbot_slug`, `owner_id`, ...) are accepted as well. The event's own id
/// is what makes the notification exactly-once.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionAsked {
    #[serde(alias = "chatbot_slug")]
    pub chatbot_slug: String,
    #[serde(alias = "owner_id")]
    pub owner_id: Uuid,
    pub question: String,
    #[serde(alias = "asker_role", default = "guest")]
    pub asker_role: String,
    #[serde(alias = "answer_id", default)]
    pub answer_id: Option<serde_json::Value>,
    #[serde(alias = "asked_at")]
    pub asked_at: DateTime<Utc>,
}

fn guest() -> String {
    "guest".into()
}

/// The kernel's alert when any consumer parks a delivery.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLettered {
    pub dead_letter_id: Uuid,
    pub consumer: String,
    #[serde(default)]
    pub schema: String,
    #[serde(default)]
    pub event_id: Option<Uuid>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn question_asked_reads_both_spellings() {
        let owner = Uuid::now_v7();
        let camel: QuestionAsked = serde_json::from_value(json!({
            "chatbotSlug": "jane", "ownerId": owner, "question": "q?", "askerRole": "stargazer",
            "answerId": "a1", "askedAt": "2026-11-25T15:00:00Z"
        }))
        .unwrap();
        let snake: QuestionAsked = serde_json::from_value(json!({
            "chatbot_slug": "jane", "owner_id": owner, "question": "q?",
            "answer_id": null, "asked_at": "2026-11-25T15:00:00Z"
        }))
        .unwrap();
        assert_eq!(camel.owner_id, snake.owner_id);
        assert_eq!(snake.asker_role, "guest");
        assert!(serde_json::from_value::<QuestionAsked>(json!({"chatbotSlug": "x"})).is_err());
    }

    #[test]
    fn what_auth_publishes_is_read() {
        let r: PasswordReset = serde_json::from_value(json!({
            "userId": Uuid::now_v7(), "email": "a@example.org", "token": "t",
            "expiresAt": "2026-11-25T16:00:00Z"
        }))
        .unwrap();
        assert!(r.locale.is_none());
        let reg: Registered = serde_json::from_value(json!({
            "userId": Uuid::now_v7(), "email": "a@example.org", "displayName": "A", "role": "stargazer"
        }))
        .unwrap();
        assert_eq!(reg.display_name, "A");
    }
}
