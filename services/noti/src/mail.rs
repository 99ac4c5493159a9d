//! E-mail over SMTP with lettre: STARTTLS when the server offers it (or as configured), a
//! multipart/alternative body with the plain text first, and the server's reply classified as a
//! transient (4xx, no connection) or permanent (5xx, an address that cannot be one) failure.

use crate::config::{SmtpConfig, TlsMode};
use crate::send::SendError;
use crate::templates::Rendered;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("config key `noti.smtp.from`: {0}")]
    From(String),
    #[error("config key `noti.smtp.host`: {0}")]
    Tls(String),
    #[error("config key `noti.smtp.ca_pem`: {0}")]
    CaPem(String),
}

impl Mailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, MailerError> {
        kernel::http::install_crypto_provider();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| MailerError::From(format!("{e}")))?;
        let extra_root = config
            .ca_pem
            .as_deref()
            .map(|pem| Certificate::from_pem(pem.as_bytes()))
            .transpose()
            .map_err(|e| MailerError::CaPem(e.to_string()))?;
        let tls = || {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(root) = extra_root.clone() {
                builder = builder.add_root_certificate(root);
            }
            builder
                .build_rustls()
                .map_err(|e| MailerError::Tls(e.to_string()))
        };
        let (tls, default_port) = match config.tls {
            TlsMode::Opportunistic => (Tls::Opportunistic(tls()?), 587),
            TlsMode::Required => (Tls::Required(tls()?), 587),
            TlsMode::Wrapper => (Tls::Wrapper(tls()?), 465),
            TlsMode::None => (Tls::None, 587),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port.unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_secs)));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    pub async fn send(&self, to: &str, to_name: &str, body: &Rendered) -> Result<(), SendError> {
        let address: lettre::Address = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("`{to}` is not an e-mail address: {e}")))?;
        let name = (!to_name.trim().is_empty()).then(|| to_name.trim().to_owned());
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(&body.subject)
            .multipart(MultiPart::alternative_plain_html(
                body.text.clone(),
                body.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("building the mail: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("smtp: {e}"))),
            // 4xx replies, timeouts, refused connections, TLS trouble: try again later.
            Err(e) => Err(SendError::Transient(format!("smtp: {e}"))),
        }
    }
}
