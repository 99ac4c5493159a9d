//! The `noti` section. Every value is checked at start and a bad one is refused by its key, so a
//! misconfigured mail server shows up in `protostar check-config`, not in the first reset mail.

use crate::templates::Locale;
use kernel::{ConfigError, Secret};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotiConfig {
    /// Outgoing mail. Without it, mail notifications are parked with that reason.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub discord: DiscordConfig,
    /// `ko` or `en`: for accounts whose locale nobody told us.
    #[serde(default = "default_locale")]
    pub default_locale: String,
    /// The web app's address, for links in messages (the password reset page).
    #[serde(default = "default_app_url")]
    pub app_url: String,
    #[serde(default)]
    pub retry: RetryConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Defaults by `tls`: 465 for `wrapper`, 587 otherwise.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub username: Option<String>,
    /// Set it as `PROTOSTAR_NOTI__SMTP__PASSWORD_FILE` from a Secret.
    #[serde(default)]
    pub password: Option<Secret<String>>,
    /// `Protostar <noreply@example.org>` or a bare address.
    pub from: String,
    #[serde(default)]
    pub tls: TlsMode,
    /// An extra root certificate (PEM text) for a relay whose certificate a private CA signed;
    /// the Mozilla roots are trusted either way. Usually given as a file:
    /// `PROTOSTAR_NOTI__SMTP__CA_PEM_FILE=/etc/protostar/smtp-ca.pem`.
    #[serde(default)]
    pub ca_pem: Option<String>,
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// STARTTLS when the server offers it, plain otherwise.
    #[default]
    Opportunistic,
    /// STARTTLS or fail.
    Required,
    /// TLS from the first byte (port 465).
    Wrapper,
    /// Never TLS: a relay on the same host or a test server only.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// Where alerts for admins go (dead letters). Contains the webhook's token: a secret.
    #[serde(default)]
    pub admin_webhook_url: Option<Secret<String>>,
    #[serde(default = "default_discord_timeout")]
    pub timeout_secs: u64,
    /// The longest `retry_after` a 429 may make one attempt wait; longer ones end the attempt
    /// and the consumer's backoff takes over.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
    /// Hosts an owner's webhook URL may name. Notifications POST to a URL users give us, so it
    /// is kept to Discord's own hosts rather than anything on the internal network. A list in
    /// TOML, comma-separated in the environment.
    #[serde(
        default = "default_webhook_hosts",
        deserialize_with = "kernel::config::list_or_commas"
    )]
    pub webhook_hosts: Vec<String>,
    /// Accept `http://` webhook URLs (tests against a local server only).
    #[serde(default)]
    pub allow_http: bool,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            admin_webhook_url: None,
            timeout_secs: default_discord_timeout(),
            max_wait_secs: default_max_wait(),
            webhook_hosts: default_webhook_hosts(),
            allow_http: false,
        }
    }
}

/// How often a failing delivery is tried before it is parked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_first_delay_ms")]
    pub first_delay_ms: u64,
    #[serde(default = "default_max_delay_secs")]
    pub max_delay_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            first_delay_ms: default_first_delay_ms(),
            max_delay_secs: default_max_delay_secs(),
        }
    }
}

fn default_locale() -> String {
    "en".into()
}
fn default_app_url() -> String {
    "http://localhost:8080".into()
}
fn default_smtp_timeout() -> u64 {
    15
}
fn default_discord_timeout() -> u64 {
    10
}
fn default_max_wait() -> u64 {
    30
}
fn default_webhook_hosts() -> Vec<String> {
    [
        "discord.com",
        "discordapp.com",
        "ptb.discord.com",
        "canary.discord.com",
    ]
    .map(String::from)
    .to_vec()
}
fn default_attempts() -> u32 {
    8
}
fn default_first_delay_ms() -> u64 {
    500
}
fn default_max_delay_secs() -> u64 {
    60
}

/// What the section means once checked.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: NotiConfig,
    pub default_locale: Locale,
}

impl NotiConfig {
    /// Reads and checks `noti`, every problem at once, each named by its key.
    pub fn load(source: &kernel::config::ConfigSource) -> Result<Checked, ConfigError> {
        let config: NotiConfig = source.section("noti")?;
        config.check()
    }

    pub fn check(self) -> Result<Checked, ConfigError> {
        let mut errors = Vec::new();
        let default_locale = Locale::parse(&self.default_locale).unwrap_or_else(|| {
            errors.push(ConfigError::key(
                "noti.default_locale",
                "must be `ko` or `en`",
            ));
            Locale::En
        });
        if !(self.app_url.starts_with("https://") || self.app_url.starts_with("http://")) {
            errors.push(ConfigError::key("noti.app_url", "must be an http(s) URL"));
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                errors.push(ConfigError::key("noti.smtp.host", "must not be empty"));
            }
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                errors.push(ConfigError::key(
                    "noti.smtp.from",
                    "is not an e-mail address (`Name <a@b.c>` or `a@b.c`)",
                ));
            }
            if smtp.password.is_some() && smtp.username.is_none() {
                errors.push(ConfigError::key(
                    "noti.smtp.username",
                    "is required when noti.smtp.password is set",
                ));
            }
            if !(1..=600).contains(&smtp.timeout_secs) {
                errors.push(ConfigError::key(
                    "noti.smtp.timeout_secs",
                    "must be between 1 and 600",
                ));
            }
        }
        if !(1..=300).contains(&self.discord.timeout_secs) {
            errors.push(ConfigError::key(
                "noti.discord.timeout_secs",
                "must be between 1 and 300",
            ));
        }
        if self.discord.max_wait_secs > 3600 {
            errors.push(ConfigError::key(
                "noti.discord.max_wait_secs",
                "must be at most 3600",
            ));
        }
        if let Some(url) = &self.discord.admin_webhook_url
            && let Err(m) = crate::discord::check_webhook_url(url.expose(), &self.discord)
        {
            errors.push(ConfigError::key("noti.discord.admin_webhook_url", m));
        }
        if !(1..=100).contains(&self.retry.max_attempts) {
            errors.push(ConfigError::key(
                "noti.retry.max_attempts",
                "must be between 1 and 100",
            ));
        }
        if self.retry.first_delay_ms == 0 || self.retry.first_delay_ms > 3_600_000 {
            errors.push(ConfigError::key(
                "noti.retry.first_delay_ms",
                "must be between 1 and 3600000",
            ));
        }
        if self.retry.max_delay_secs == 0 || self.retry.max_delay_secs > 86_400 {
            errors.push(ConfigError::key(
                "noti.retry.max_delay_secs",
                "must be between 1 and 86400",
            ));
        }
        ConfigError::collect(errors)?;
        Ok(Checked {
            config: self,
            default_locale,
        })
    }
}

impl RetryConfig {
    pub fn policy(&self) -> kernel::events::RetryPolicy {
        kernel::events::RetryPolicy {
            max_attempts: self.max_attempts,
            first_delay: Duration::from_millis(self.first_delay_ms),
            max_delay: Duration::from_secs(self.max_delay_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::config::ConfigSource;

    fn load(vars: &[(&str, &str)]) -> Result<Checked, ConfigError> {
        let source =
            ConfigSource::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))?;
        NotiConfig::load(&source)
    }

    #[test]
    fn nothing_set_is_valid_and_mail_is_off() {
        let c = load(&[]).unwrap();
        assert!(c.config.smtp.is_none());
        assert_eq!(c.default_locale, Locale::En);
        assert_eq!(c.config.retry.max_attempts, 8);
    }

    #[test]
    fn smtp_from_the_environment() {
        let c = load(&[
            ("PROTOSTAR_NOTI__SMTP__HOST", "mail.example.org"),
            ("PROTOSTAR_NOTI__SMTP__PORT", "2525"),
            (
                "PROTOSTAR_NOTI__SMTP__FROM",
                "Protostar <noreply@example.org>",
            ),
            ("PROTOSTAR_NOTI__SMTP__TLS", "required"),
            ("PROTOSTAR_NOTI__DEFAULT_LOCALE", "ko"),
        ])
        .unwrap();
        let smtp = c.config.smtp.unwrap();
        assert_eq!(smtp.port, Some(2525));
        assert_eq!(smtp.tls, TlsMode::Required);
        assert_eq!(c.default_locale, Locale::Ko);
    }

    /// The variables the operator renders for noti (operator/src/contract.rs, `env`): each must be
    /// a key this section accepts, or the pods would refuse to start.
    #[test]
    fn what_the_operator_renders_is_accepted() {
        let dir = std::env::temp_dir().join(format!("noti-op-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, value: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("{value}\n")).unwrap();
            p.display().to_string()
        };
        let c = load(&[
            (
                "PROTOSTAR_NOTI__DISCORD__ADMIN_WEBHOOK_URL_FILE",
                &file("discord", "https://discord.com/api/webhooks/1/t"),
            ),
            ("PROTOSTAR_NOTI__SMTP__HOST", "mail.example.org"),
            ("PROTOSTAR_NOTI__SMTP__PORT", "587"),
            ("PROTOSTAR_NOTI__SMTP__FROM", "noreply@example.org"),
            (
                "PROTOSTAR_NOTI__SMTP__USERNAME_FILE",
                &file("user", "mailer"),
            ),
            (
                "PROTOSTAR_NOTI__SMTP__PASSWORD_FILE",
                &file("password", "pw"),
            ),
        ])
        .unwrap();
        let smtp = c.config.smtp.unwrap();
        assert_eq!(smtp.username.as_deref(), Some("mailer"));
        assert_eq!(smtp.password.unwrap().expose(), "pw");
        assert_eq!(
            c.config.discord.admin_webhook_url.unwrap().expose(),
            "https://discord.com/api/webhooks/1/t"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = load(&[
            ("PROTOSTAR_NOTI__SMTP__HOST", "mail.example.org"),
            ("PROTOSTAR_NOTI__SMTP__FROM", "not an address"),
            ("PROTOSTAR_NOTI__SMTP__PASSWORD", "x"),
            ("PROTOSTAR_NOTI__DEFAULT_LOCALE", "fr"),
            (
                "PROTOSTAR_NOTI__DISCORD__ADMIN_WEBHOOK_URL",
                "http://10.0.0.1/x",
            ),
            ("PROTOSTAR_NOTI__RETRY__MAX_ATTEMPTS", "0"),
        ])
        .err()
        .unwrap()
        .to_string();
        for key in [
            "noti.smtp.from",
            "noti.smtp.username",
            "noti.default_locale",
            "noti.discord.admin_webhook_url",
            "noti.retry.max_attempts",
        ] {
            assert!(err.contains(&format!("`{key}`")), "{key} missing in: {err}");
        }
        let err = load(&[("PROTOSTAR_NOTI__SMTP__TLS", "sometimes")])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("noti"), "{err}");
    }
}
