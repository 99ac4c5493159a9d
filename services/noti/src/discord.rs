//! Discord webhooks: `POST {webhook}?wait=true` with a JSON body of `content` and `embeds`.
//!
//! `wait=true` makes Discord answer only once the message exists, so a 2xx means delivered.
//! A 429 carries `retry_after` (seconds, a float) in its body and `Retry-After` in its headers;
//! we wait that long (up to `max_wait_secs`) and try again within the same attempt. 5xx, 408 and
//! network failures are transient; any other 4xx (an unknown or deleted webhook, a bad body)
//! will fail the same way every time and is permanent.

use crate::config::DiscordConfig;
use crate::send::SendError;
use reqwest::{StatusCode, Url};
use serde::Serialize;
use std::time::Duration;

/// Discord's limits (characters): message content, embed title and description.
const CONTENT_MAX: usize = 2000;
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4096;
/// 429s honoured within one attempt before handing back to the consumer's backoff.
const MAX_RATE_LIMITED: u32 = 5;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WebhookMessage {
    pub content: String,
    pub embeds: Vec<Embed>,
    /// Never ping anyone: the text may contain a visitor's `@everyone`.
    pub allowed_mentions: AllowedMentions,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct AllowedMentions {
    pub parse: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Embed {
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<EmbedField>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EmbedField {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

impl WebhookMessage {
    pub fn new(content: &str, embeds: Vec<Embed>) -> Self {
        Self {
            content: crate::templates::truncate(content, CONTENT_MAX),
            embeds: embeds
                .into_iter()
                .map(|mut e| {
                    e.title = crate::templates::truncate(&e.title, TITLE_MAX);
                    e.description = crate::templates::truncate(&e.description, DESCRIPTION_MAX);
                    e
                })
                .take(10)
                .collect(),
            allowed_mentions: AllowedMentions::default(),
        }
    }
}

/// Checks a webhook URL someone gave us: Discord's own hosts (by configuration), https, and the
/// `/api/webhooks/{id}/{token}` shape.
pub fn check_webhook_url(raw: &str, config: &DiscordConfig) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| "is not a URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if config.allow_http => {}
        _ => return Err("must be an https:// URL".into()),
    }
    let host = url.host_str().unwrap_or("");
    if !config
        .webhook_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(host))
    {
        return Err(format!(
            "must be a Discord webhook (host one of: {})",
            config.webhook_hosts.join(", ")
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    match segments.as_slice() {
        ["api", "webhooks", id, token] | ["api", _, "webhooks", id, token]
            if !id.is_empty() && !token.is_empty() => {}
        _ => return Err("must look like https://discord.com/api/webhooks/ID/TOKEN".into()),
    }
    Ok(url)
}

/// How a webhook is named in the delivery ledger and in logs: its URL without the token.
pub fn recipient_key(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, _token)) => head.to_owned(),
        None => "webhook".to_owned(),
    }
}

#[derive(Clone)]
pub struct Discord {
    client: reqwest::Client,
    max_wait: Duration,
}

impl Discord {
    pub fn new(config: &DiscordConfig) -> Self {
        Self {
            client: kernel::http::client(Duration::from_secs(config.timeout_secs)),
            max_wait: Duration::from_secs(config.max_wait_secs),
        }
    }

    pub async fn post(&self, webhook: &str, message: &WebhookMessage) -> Result<(), SendError> {
        let mut url = Url::parse(webhook)
            .map_err(|_| SendError::Permanent("the webhook URL does not parse".into()))?;
        url.query_pairs_mut().append_pair("wait", "true");
        let mut limited = 0;
        loop {
            let response = self
                .client
                .post(url.clone())
                .json(message)
                .send()
                .await
                // No answer: connection refused, reset or timed out. A timeout after the body
                // was sent is the one case where Discord may have posted the message anyway;
                // it is counted as not delivered (see the crate docs).
                .map_err(|e| SendError::Transient(format!("discord: {}", without_url(&e))))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let header_wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok());
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&body, header_wait);
                limited += 1;
                if limited > MAX_RATE_LIMITED || wait > self.max_wait {
                    return Err(SendError::Transient(format!(
                        "discord: rate limited (retry after {:.3} s)",
                        wait.as_secs_f64()
                    )));
                }
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "discord rate limit; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let detail = format!("discord answered {status}: {}", short(&body));
            return Err(
                if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
                    SendError::Transient(detail)
                } else {
                    SendError::Permanent(detail)
                },
            );
        }
    }
}

/// The body's `retry_after` (seconds, may be fractional) wins over the header, as Discord
/// documents; a missing or absurd value waits one second.
pub fn retry_after(body: &str, header: Option<f64>) -> Duration {
    let from_body = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
    let secs = from_body.or(header).unwrap_or(1.0);
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs.min(86_400.0)).unwrap_or(Duration::from_secs(1))
    } else {
        Duration::from_secs(1)
    }
}

/// reqwest errors print the URL, which holds the webhook's token.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

fn short(body: &str) -> String {
    crate::templates::truncate(body.trim(), 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_the_body_then_the_header() {
        assert_eq!(
            retry_after(
                r#"{"message":"You are being rate limited.","retry_after":0.25,"global":false}"#,
                Some(3.0)
            ),
            Duration::from_millis(250)
        );
        assert_eq!(retry_after("", Some(2.0)), Duration::from_secs(2));
        assert_eq!(retry_after("nonsense", None), Duration::from_secs(1));
        assert_eq!(
            retry_after(r#"{"retry_after":-4}"#, None),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_after(r#"{"retry_after":1e300}"#, None),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn webhook_urls_are_discord_only() {
        let c = DiscordConfig::default();
        assert!(check_webhook_url("https://discord.com/api/webhooks/123/abc-DEF", &c).is_ok());
        assert!(check_webhook_url("https://discord.com/api/v10/webhooks/123/abc", &c).is_ok());
        for bad in [
            "http://discord.com/api/webhooks/1/a",
            "https://evil.example/api/webhooks/1/a",
            "https://169.254.169.254/latest/meta-data",
            "https://discord.com/api/webhooks/1",
            "https://user:pw@discord.com/api/webhooks/1/a",
            "not a url",
        ] {
            assert!(check_webhook_url(bad, &c).is_err(), "{bad}");
        }
        let local = DiscordConfig {
            webhook_hosts: vec!["127.0.0.1".into()],
            allow_http: true,
            ..c
        };
        assert!(check_webhook_url("http://127.0.0.1:9/api/webhooks/1/a", &local).is_ok());
    }

    #[test]
    fn the_token_never_names_the_recipient() {
        assert_eq!(
            recipient_key("https://discord.com/api/webhooks/123/secret"),
            "https://discord.com/api/webhooks/123"
        );
    }

    #[test]
    fn the_body_fits_discords_limits_and_pings_nobody() {
        let m = WebhookMessage::new(
            &"@everyone ".repeat(500),
            vec![Embed {
                title: "t".repeat(300),
                description: "d".repeat(5000),
                ..Default::default()
            }],
        );
        assert_eq!(m.content.chars().count(), CONTENT_MAX);
        assert_eq!(m.embeds[0].title.chars().count(), TITLE_MAX);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["allowed_mentions"]["parse"], serde_json::json!([]));
        assert!(json["embeds"][0].get("url").is_none());
    }
}
