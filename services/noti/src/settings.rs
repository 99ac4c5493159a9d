//! `GET/PUT /api/notifications/settings`: how a protostar hears about questions to their
//! chatbots. Saving only writes a row; nothing is sent from here.

use crate::config::DiscordConfig;
use crate::store::{self, Mode, Settings};
use crate::templates::Locale;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::get;
use kernel::db::Database;
use kernel::http::Json;
use kernel::tokens::{Caller, Role, TokenVerifier};
use kernel::{FieldError, Problem};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use uuid::Uuid;

pub const PATH: &str = "/api/notifications/settings";

#[derive(Clone)]
pub struct SettingsState {
    pub db: Database,
    pub verifier: Arc<TokenVerifier>,
    pub discord: Arc<DiscordConfig>,
}

impl FromRef<SettingsState> for Arc<TokenVerifier> {
    fn from_ref(s: &SettingsState) -> Self {
        s.verifier.clone()
    }
}

pub fn routes(state: SettingsState) -> Router {
    Router::new()
        .route(PATH, get(show).put(update))
        .with_state(state)
}

/// What the owner sees: the webhook without its token (it is a credential).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub mode: &'static str,
    pub email: bool,
    pub discord_webhook: Option<String>,
    pub locale: Option<String>,
}

impl From<&Settings> for SettingsView {
    fn from(s: &Settings) -> Self {
        Self {
            mode: s.mode.as_str(),
            email: s.email,
            discord_webhook: s
                .discord_webhook_url
                .as_deref()
                .map(crate::discord::recipient_key),
            locale: s.locale.clone(),
        }
    }
}

/// A PUT replaces the settings; `discordWebhookUrl` absent keeps the saved webhook, `null`
/// removes it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsBody {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub email: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub discord_webhook_url: Option<Option<String>>,
    #[serde(default)]
    pub locale: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl SettingsBody {
    /// The new settings, or every field that is wrong.
    pub fn apply(
        self,
        current: &Settings,
        discord: &DiscordConfig,
    ) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mode = match self.mode.as_deref().map(str::trim) {
            None => current.mode,
            Some(m) => Mode::parse(m).unwrap_or_else(|| {
                errors.push(FieldError::new("mode", "must be instant, digest or off"));
                current.mode
            }),
        };
        let discord_webhook_url = match self.discord_webhook_url {
            None => current.discord_webhook_url.clone(),
            Some(None) => None,
            Some(Some(u)) if u.trim().is_empty() => None,
            Some(Some(u)) => match crate::discord::check_webhook_url(u.trim(), discord) {
                Ok(url) if url.as_str().len() <= 500 => Some(url.to_string()),
                Ok(_) => {
                    errors.push(FieldError::new("discordWebhookUrl", "is too long"));
                    None
                }
                Err(m) => {
                    errors.push(FieldError::new("discordWebhookUrl", m));
                    None
                }
            },
        };
        let locale = match self.locale.as_deref().map(str::trim) {
            None => current.locale.clone(),
            Some("") => None,
            Some(l) => match Locale::parse(l) {
                Some(l) => Some(l.as_str().to_owned()),
                None => {
                    errors.push(FieldError::new("locale", "must be ko or en"));
                    None
                }
            },
        };
        let email = self.email.unwrap_or(current.email);
        if mode != Mode::Off && !email && discord_webhook_url.is_none() && errors.is_empty() {
            errors.push(FieldError::new(
                "email",
                "with e-mail off, a discordWebhookUrl is needed (or mode off)",
            ));
        }
        if errors.is_empty() {
            Ok(Settings {
                mode,
                email,
                discord_webhook_url,
                locale,
            })
        } else {
            Err(errors)
        }
    }
}

fn owner(caller: &Caller) -> Result<Uuid, Problem> {
    caller.require(Role::Protostar)?;
    Uuid::parse_str(caller.subject())
        .map_err(|_| Problem::Forbidden("This needs an account.".into()))
}

async fn show(
    caller: Caller,
    State(s): State<SettingsState>,
) -> Result<Json<SettingsView>, Problem> {
    let id = owner(&caller)?;
    let mut conn = s.db.pool().acquire().await?;
    let settings = store::settings(&mut conn, id).await?;
    Ok(Json(SettingsView::from(&settings)))
}

async fn update(
    caller: Caller,
    State(s): State<SettingsState>,
    Json(body): Json<SettingsBody>,
) -> Result<Json<SettingsView>, Problem> {
    let id = owner(&caller)?;
    let mut tx = s.db.begin().await?;
    let current = store::settings(&mut tx, id).await?;
    let next = body
        .apply(&current, &s.discord)
        .map_err(Problem::invalid_fields)?;
    store::save_settings(&mut tx, id, &next).await?;
    tx.commit().await?;
    Ok(Json(SettingsView::from(&next)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> SettingsBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_valid_change_applies_and_absent_fields_keep_their_value() {
        let d = DiscordConfig::default();
        let s = body(json!({"mode": "digest", "discordWebhookUrl": "https://discord.com/api/webhooks/1/tok"}))
            .apply(&Settings::default(), &d)
            .unwrap();
        assert_eq!(s.mode, Mode::Digest);
        assert!(s.email);
        let kept = body(json!({"locale": "ko-KR"})).apply(&s, &d).unwrap();
        assert_eq!(kept.discord_webhook_url, s.discord_webhook_url);
        assert_eq!(kept.locale.as_deref(), Some("ko"));
        let cleared = body(json!({"discordWebhookUrl": null}))
            .apply(&kept, &d)
            .unwrap();
        assert!(cleared.discord_webhook_url.is_none());
        assert_eq!(
            SettingsView::from(&kept).discord_webhook.as_deref(),
            Some("https://discord.com/api/webhooks/1")
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = body(
            json!({"mode": "hourly", "discordWebhookUrl": "http://10.0.0.1/hook", "locale": "fr"}),
        )
        .apply(&Settings::default(), &DiscordConfig::default())
        .unwrap_err();
        let fields: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["mode", "discordWebhookUrl", "locale"]);
        let nowhere = body(json!({"email": false}))
            .apply(&Settings::default(), &DiscordConfig::default())
            .unwrap_err();
        assert_eq!(nowhere.len(), 1);
        assert!(serde_json::from_value::<SettingsBody>(json!({"modes": "off"})).is_err());
    }
}
