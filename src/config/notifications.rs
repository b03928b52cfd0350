//! The `notifications` role: webhook deliveries (the retry schedule, the timeout, which
//! addresses an endpoint may have, how long a rotated-out secret still signs), email (the SMTP
//! server and the sender) and the hold reminder's lead time.

use std::time::Duration;

use secrecy::SecretString;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// `IMTICKET_WEBHOOK_RETRY_SCHEDULE`: seconds before each attempt, comma-separated (the
    /// first is the first attempt's delay); after the last, the delivery has failed.
    pub retry_schedule: Vec<Duration>,
    /// `IMTICKET_WEBHOOK_TIMEOUT_MS`: one attempt's whole time (connect, send, answer).
    pub timeout: Duration,
    /// `IMTICKET_WEBHOOK_ALLOW_PRIVATE`: endpoints on loopback, private, link-local or other
    /// non-public addresses are refused unless this is `true` (tests, a private network).
    pub allow_private: bool,
    /// `IMTICKET_WEBHOOK_SECRET_OVERLAP_SECONDS`: after a rotation the old secret signs too
    /// for this long, so receivers can switch without losing a delivery.
    pub secret_overlap: Duration,
    /// `IMTICKET_SMTP_URL`: the SMTP server mail is sent through (`smtp://host:port`,
    /// `smtp://host?tls=required` for STARTTLS, `smtps://user:pass@host` for implicit TLS).
    /// Empty: no email channel (nothing is queued for mail). May hold a password: never logged.
    pub smtp_url: Option<SecretString>,
    /// `IMTICKET_MAIL_FROM`: the sender of every mail.
    pub mail_from: String,
    /// `IMTICKET_SMTP_TIMEOUT_MS`: one mail's whole conversation with the server.
    pub smtp_timeout: Duration,
    /// `IMTICKET_NOTIFY_HOLD_REMINDER_SECONDS`: "your hold expires soon" goes this long before
    /// a hold expires (0: no reminder).
    pub hold_reminder: Duration,
}

/// Svix's schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
const SVIX: &str = "0,5,300,1800,7200,18000,36000,36000";

impl NotificationSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        const NAME: &str = "IMTICKET_WEBHOOK_RETRY_SCHEDULE";
        let text = env.get(NAME).unwrap_or_else(|| SVIX.to_owned());
        let retry_schedule = text
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 604_800)
                    .map(Duration::from_secs)
            })
            .collect::<Option<Vec<_>>>()
            .filter(|s| !s.is_empty() && s.len() <= 20)
            .ok_or_else(|| {
                ConfigError::new(
                    NAME,
                    format!("expected 1 to 20 comma-separated seconds (0–604800), got {text:?}"),
                )
            })?;
        Ok(Self {
            retry_schedule,
            timeout: env.millis("IMTICKET_WEBHOOK_TIMEOUT_MS", 5_000, 100..=60_000)?,
            allow_private: env.choice("IMTICKET_WEBHOOK_ALLOW_PRIVATE", "false", &["true", "false"])? == "true",
            secret_overlap: env.seconds("IMTICKET_WEBHOOK_SECRET_OVERLAP_SECONDS", 86_400, 0..=2_592_000)?,
            smtp_url: smtp_url(env)?,
            mail_from: mail_from(env)?,
            smtp_timeout: env.millis("IMTICKET_SMTP_TIMEOUT_MS", 10_000, 100..=120_000)?,
            hold_reminder: env.seconds("IMTICKET_NOTIFY_HOLD_REMINDER_SECONDS", 60, 0..=3_600)?,
        })
    }
}

fn smtp_url(env: &Env) -> Result<Option<SecretString>, ConfigError> {
    const NAME: &str = "IMTICKET_SMTP_URL";
    let Some(url) = env.get(NAME).filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
        return Err(ConfigError::new(
            NAME,
            "expected smtp://host:port or smtps://host:port (the value is not shown: it may hold a password)",
        ));
    }
    Ok(Some(SecretString::from(url)))
}

fn mail_from(env: &Env) -> Result<String, ConfigError> {
    const NAME: &str = "IMTICKET_MAIL_FROM";
    let from = env
        .get(NAME)
        .unwrap_or_else(|| "ImTicket <tickets@imticket.localhost>".to_owned());
    match from.parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(from),
        Err(err) => Err(ConfigError::new(NAME, format!("not a mailbox ({err}): {from:?}"))),
    }
}
