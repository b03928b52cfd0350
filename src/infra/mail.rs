//! Sending mail: lettre's async SMTP transport (pooled connections, STARTTLS or implicit TLS
//! by rustls as the URL says). Off when `IMTICKET_SMTP_URL` is empty.

use std::time::{Duration, Instant};

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// One mail, rendered.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The delivery's dedupe key, also the `Message-ID`'s local part: a receiver that sees a
    /// mail twice (an answer lost after the server took it) can tell.
    pub id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The server said no for good (5xx: no such mailbox), or the address cannot be a mailbox.
    Permanent(String),
    /// Try again later: no connection, a timeout, a 4xx.
    Transient(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(url: Option<&SecretString>, from: &str, timeout: Duration) -> anyhow::Result<Self> {
        let from = from.parse().context("IMTICKET_MAIL_FROM")?;
        let transport = match url {
            None => None,
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    // The error may quote the URL, and the URL may hold a password.
                    .map_err(|_| anyhow::anyhow!("IMTICKET_SMTP_URL: not a usable SMTP URL"))?
                    .timeout(Some(timeout))
                    .build(),
            ),
        };
        Ok(Self { transport, from })
    }

    /// Whether mail is sent at all (an SMTP server is configured).
    pub fn enabled(&self) -> bool {
        self.transport.is_some()
    }

    /// Sends `mail`; how long it took either way.
    pub async fn send(&self, mail: &Mail) -> (Result<(), Refused>, Duration) {
        let started = Instant::now();
        let result = self.try_send(mail).await;
        (result, started.elapsed())
    }

    async fn try_send(&self, mail: &Mail) -> Result<(), Refused> {
        let transport = self
            .transport
            .as_ref()
            .ok_or_else(|| Refused::Transient("no SMTP server is configured".to_owned()))?;
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| Refused::Permanent(format!("not a mailbox: {e}")))?;
        let domain = self.from.email.domain();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .message_id(Some(format!("<{}@{domain}>", mail.id)))
            .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
            .map_err(|e| Refused::Permanent(format!("the mail could not be built: {e}")))?;
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_permanent() => Err(Refused::Permanent(err.to_string())),
            Err(err) => Err(Refused::Transient(err.to_string())),
        }
    }
}
