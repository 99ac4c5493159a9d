//! What each event turns into. Runs only inside the event consumer, never in a user's request:
//! a slow mail server or a Discord outage delays notifications and nothing else.

use crate::config::Checked;
use crate::discord::{self, Discord, Embed, EmbedField, WebhookMessage};
use crate::events::{
    self as ev, DeadLettered, InviteRedeemed, PasswordReset, QuestionAsked, Registered,
};
use crate::ledger::Key;
use crate::mail::{Mailer, MailerError};
use crate::send::{self, Outcome, SendError};
use crate::store::{self, Mode};
use crate::templates::{self, Locale, QuestionView, Rendered};
use futures::future::BoxFuture;
use kernel::db::Database;
use kernel::events::{Event, Handler, HandlerError};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub const EMAIL: &str = "email";
pub const DISCORD: &str = "discord";
/// Embed colours: Protostar's accent for questions, red for alerts.
const ACCENT: u32 = 0x5865F2;
const ALERT: u32 = 0xED4245;

/// The channels and what they need, shared by the consumer and the digest job.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// The ledger's own pool. A consumer holds a connection of `db` for its transaction while
    /// the handler runs; with every connection of one pool held that way, recording a delivery
    /// would wait for a connection that never comes, and a message sent could not be recorded.
    ledger: Database,
    mailer: Option<Mailer>,
    discord: Discord,
    config: Checked,
}

impl Notifier {
    pub fn new(db: Database, ledger: Database, config: Checked) -> Result<Self, MailerError> {
        let mailer = config.config.smtp.as_ref().map(Mailer::new).transpose()?;
        if mailer.is_none() {
            tracing::warn!(
                "no mail server (noti.smtp): welcome, invite and question mails are skipped; \
                 password-reset mails are parked in noti's dead letters until one is configured"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                discord: Discord::new(&config.config.discord),
                db,
                ledger,
                mailer,
                config,
            }),
        })
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    pub fn config(&self) -> &Checked {
        &self.inner.config
    }

    pub fn locale(&self, preferred: Option<&str>) -> Locale {
        preferred
            .and_then(Locale::parse)
            .unwrap_or(self.inner.config.default_locale)
    }

    fn app_url(&self) -> &str {
        self.inner.config.config.app_url.trim_end_matches('/')
    }

    /// One mail, once, for message `id`.
    pub async fn mail(
        &self,
        id: Uuid,
        to: &str,
        name: &str,
        body: &Rendered,
    ) -> Result<Outcome, HandlerError> {
        let Some(mailer) = &self.inner.mailer else {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "no mail server is configured (noti.smtp); mail to {to} not sent"
            )));
        };
        let recipient = to.trim().to_ascii_lowercase();
        send::deliver(
            self.inner.ledger.pool(),
            Key {
                id,
                channel: EMAIL,
                recipient: &recipient,
            },
            mailer.send(to, name, body),
        )
        .await
    }

    /// A mail that only informs (welcome, invite redeemed, questions to an owner): without a
    /// mail server this installation has no e-mail channel, and it is skipped rather than
    /// parked. No one waits for it, and a dead letter per sign-up or per question asked would
    /// bury the ones that need an admin. (A password-reset link is waited for: [`Self::mail`]
    /// parks it.)
    pub async fn inform(
        &self,
        id: Uuid,
        to: &str,
        name: &str,
        body: &Rendered,
    ) -> Result<(), HandlerError> {
        if self.inner.mailer.is_none() {
            tracing::debug!(event_id = %id, "no mail server (noti.smtp); informational mail skipped");
            return Ok(());
        }
        self.mail(id, to, name, body).await.map(drop)
    }

    /// One Discord message, once, for message `id`.
    pub async fn discord(
        &self,
        id: Uuid,
        webhook: &str,
        message: &WebhookMessage,
    ) -> Result<Outcome, HandlerError> {
        let recipient = discord::recipient_key(webhook);
        send::deliver(
            self.inner.ledger.pool(),
            Key {
                id,
                channel: DISCORD,
                recipient: &recipient,
            },
            async {
                // Checked again at sending: the allowed hosts may have changed since it was saved.
                discord::check_webhook_url(webhook, &self.inner.config.config.discord)
                    .map_err(|m| SendError::Permanent(format!("the webhook URL {m}")))?;
                self.inner.discord.post(webhook, message).await
            },
        )
        .await
    }

    /// Tells an owner about questions on every channel they chose. Each channel is tried even
    /// when another fails; the worst failure decides (permanent parks, transient retries, and a
    /// channel already delivered is skipped on the retry).
    pub async fn tell_owner(
        &self,
        id: Uuid,
        owner: Option<&store::Recipient>,
        settings: &store::Settings,
        items: &[QuestionView],
    ) -> Result<(), HandlerError> {
        let locale = self.locale(
            settings
                .locale
                .as_deref()
                .or(owner.and_then(|o| o.locale.as_deref())),
        );
        let mut results = Vec::new();
        if settings.email {
            results.push(match owner {
                Some(o) => {
                    let body = templates::questions(locale, items, self.app_url());
                    self.inform(id, &o.email, &o.display_name, &body).await
                }
                // Nothing would be sent anyway.
                None if self.inner.mailer.is_none() => Ok(()),
                None => Err(HandlerError::Permanent(anyhow::anyhow!(
                    "no e-mail address is known for the owner (no user.registered seen)"
                ))),
            });
        }
        if let Some(url) = &settings.discord_webhook_url {
            let message = question_message(locale, items, self.app_url());
            results.push(self.discord(id, url, &message).await.map(drop));
        }
        worst(results)
    }

    /// A batch: the owners of its questions are read in one query first. Any other event may
    /// change what that read (a registration, a deletion), so after one the rest read their
    /// own. An owner who changes their settings while the batch is under way (its sends may
    /// take seconds) is heard from the next batch on, as with a question asked a moment
    /// earlier.
    async fn on_events(
        &self,
        tx: &mut PgConnection,
        events: &[&Event],
    ) -> Result<(), HandlerError> {
        let mut owners: Vec<Uuid> = events
            .iter()
            .filter(|e| e.event_type == ev::QUESTION_ASKED)
            .filter_map(|e| e.data_as::<QuestionAsked>().ok())
            .map(|q| q.owner_id)
            .collect();
        owners.sort_unstable();
        owners.dedup();
        let mut known = if owners.is_empty() {
            HashMap::new()
        } else {
            store::settings_and_recipients(tx, &owners).await?
        };
        for event in events {
            if event.event_type != ev::QUESTION_ASKED {
                known.clear();
            }
            self.on_event(tx, event, &known).await?;
        }
        Ok(())
    }

    /// One event; `known` holds owners' views read beforehand for a batch.
    async fn on_event(
        &self,
        tx: &mut PgConnection,
        event: &Event,
        known: &HashMap<Uuid, store::OwnerView>,
    ) -> Result<(), HandlerError> {
        let bad = |e: kernel::events::envelope::EnvelopeError| {
            HandlerError::Permanent(anyhow::anyhow!("{}: {e}", event.event_type))
        };
        match event.event_type.as_str() {
            ev::REGISTERED => {
                let r: Registered = event.data_as().map_err(bad)?;
                store::upsert_recipient(tx, &r).await?;
                let body = templates::welcome(
                    self.locale(r.locale.as_deref()),
                    &r.display_name,
                    self.app_url(),
                );
                self.inform(event.id, &r.email, &r.display_name, &body)
                    .await?;
            }
            ev::DELETED => {
                let d: ev::Deleted = event.data_as().map_err(bad)?;
                store::forget(tx, d.user_id).await?;
            }
            ev::PASSWORD_RESET => {
                let r: PasswordReset = event.data_as().map_err(bad)?;
                let known = store::recipient(tx, r.user_id).await?;
                let locale = self.locale(
                    r.locale
                        .as_deref()
                        .or(known.as_ref().and_then(|k| k.locale.as_deref())),
                );
                let link = format!("{}/reset-password?token={}", self.app_url(), r.token);
                let body = templates::password_reset(locale, &link, r.expires_at);
                let name = known.map(|k| k.display_name).unwrap_or_default();
                self.mail(event.id, &r.email, &name, &body).await?;
            }
            // Nothing to send without a mail server (see `inform`), so nothing to wait for.
            ev::INVITE_REDEEMED if self.inner.mailer.is_none() => {}
            ev::INVITE_REDEEMED => {
                let r: InviteRedeemed = event.data_as().map_err(bad)?;
                // The registration comes long before a redemption; if it has not reached us yet
                // it will, so this is worth retrying.
                let who = store::recipient(tx, r.user_id).await?.ok_or_else(|| {
                    HandlerError::Transient(anyhow::anyhow!(
                        "no e-mail address known yet for account {}",
                        r.user_id
                    ))
                })?;
                let body = templates::invite_redeemed(
                    self.locale(who.locale.as_deref()),
                    &who.display_name,
                    self.app_url(),
                );
                self.inform(event.id, &who.email, &who.display_name, &body)
                    .await?;
            }
            ev::QUESTION_ASKED => {
                let q: QuestionAsked = event.data_as().map_err(bad)?;
                let (settings, owner) = match known.get(&q.owner_id) {
                    Some(view) => view.clone(),
                    None => store::settings_and_recipient(tx, q.owner_id).await?,
                };
                match settings.mode {
                    Mode::Off => {}
                    Mode::Digest => store::queue_question(tx, event.id, &q).await?,
                    Mode::Instant => {
                        let view = QuestionView {
                            chatbot_slug: q.chatbot_slug,
                            question: q.question,
                            asker_role: q.asker_role,
                            asked_at: q.asked_at,
                        };
                        self.tell_owner(event.id, owner.as_ref(), &settings, &[view])
                            .await?;
                    }
                }
            }
            ev::DEAD_LETTERED => {
                let d: DeadLettered = event.data_as().map_err(bad)?;
                match &self.inner.config.config.discord.admin_webhook_url {
                    Some(url) => {
                        self.discord(event.id, url.expose(), &alert_message(&d))
                            .await?;
                    }
                    None => tracing::warn!(
                        consumer = %d.consumer,
                        reason = %d.reason,
                        "a delivery was parked; no admin webhook (noti.discord.admin_webhook_url) to tell"
                    ),
                }
            }
            // Only the patterns above are bound; anything else is not ours to act on.
            other => tracing::debug!(event_type = other, "ignored"),
        }
        Ok(())
    }
}

impl Handler for Notifier {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move { self.on_event(tx, event, &HashMap::new()).await })
    }

    fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.on_events(tx, events))
    }
}

/// Permanent over transient over fine.
fn worst(results: Vec<Result<(), HandlerError>>) -> Result<(), HandlerError> {
    let mut transient = None;
    for r in results {
        match r {
            Err(HandlerError::Permanent(e)) => return Err(HandlerError::Permanent(e)),
            Err(e @ HandlerError::Transient(_)) => transient = transient.or(Some(e)),
            Ok(()) => {}
        }
    }
    transient.map_or(Ok(()), Err)
}

pub fn question_message(locale: Locale, items: &[QuestionView], app_url: &str) -> WebhookMessage {
    let content = match (locale, items.len()) {
        (Locale::Ko, 1) => "챗봇에 새 질문이 들어왔습니다.".to_owned(),
        (Locale::Ko, n) => format!("챗봇 질문 {n}건 모아보기"),
        (Locale::En, 1) => "A new question for your chatbot.".to_owned(),
        (Locale::En, n) => format!("{n} questions for your chatbots."),
    };
    let embeds = items
        .iter()
        .map(|q| Embed {
            title: q.chatbot_slug.clone(),
            description: q.question.clone(),
            url: Some(app_url.to_owned()),
            color: Some(ACCENT),
            timestamp: Some(q.asked_at.to_rfc3339()),
            fields: vec![EmbedField {
                name: if locale == Locale::Ko {
                    "질문자"
                } else {
                    "Asked by"
                }
                .into(),
                value: q.asker_role.clone(),
                inline: true,
            }],
        })
        .collect();
    WebhookMessage::new(&content, embeds)
}

pub fn alert_message(d: &DeadLettered) -> WebhookMessage {
    let mut fields = vec![
        EmbedField {
            name: "consumer".into(),
            value: d.consumer.clone(),
            inline: true,
        },
        EmbedField {
            name: "dead letter".into(),
            value: format!("`{}` (schema {})", d.dead_letter_id, d.schema),
            inline: true,
        },
    ];
    if let Some(t) = &d.event_type {
        fields.push(EmbedField {
            name: "event".into(),
            value: format!(
                "{t} {}",
                d.event_id.map(|i| i.to_string()).unwrap_or_default()
            ),
            inline: false,
        });
    }
    WebhookMessage::new(
        "A delivery was parked: it needs a look (admin API: /admin/api/dead-letters).",
        vec![Embed {
            title: format!("Dead letter in {}", d.consumer),
            description: templates::truncate(&d.reason, 1000),
            color: Some(ALERT),
            fields,
            ..Default::default()
        }],
    )
}
