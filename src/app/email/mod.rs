//! Email notices: the templates (`templates/<notice>.txt` and `.html`, HTML auto-escaped),
//! and the dispatcher's round ([`dispatch_round`]) that sends the due mails the notifications
//! group queued ([`super::notices`]). A mail that could not be sent (SMTP down, a 4xx) stays
//! pending and is tried again with back-off, without end: an outage delays mail, never loses it.
//! A permanent refusal (5xx: no such mailbox) fails the mail.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use minijinja::Environment;
use rand::Rng;
use serde_json::Value;

use super::Deps;
use crate::domain::notice;
use crate::infra::mail::{Mail, Refused};
use crate::infra::postgres::notices::{self as repo, DueMail, MailSettled};

/// How long a leased mail is another dispatcher's to leave alone: longer than an attempt.
const LEASE: Duration = Duration::from_secs(120);
/// Mails one round sends.
const ROUND: i64 = 20;
/// The longest wait between two attempts at one mail.
const LONGEST_WAIT: Duration = Duration::from_secs(600);

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    let sources = [
        ("layout.html", include_str!("templates/layout.html")),
        ("queue.admitted.txt", include_str!("templates/queue.admitted.txt")),
        ("queue.admitted.html", include_str!("templates/queue.admitted.html")),
        (
            "reservation.created.txt",
            include_str!("templates/reservation.created.txt"),
        ),
        (
            "reservation.created.html",
            include_str!("templates/reservation.created.html"),
        ),
        (
            "reservation.expiring.txt",
            include_str!("templates/reservation.expiring.txt"),
        ),
        (
            "reservation.expiring.html",
            include_str!("templates/reservation.expiring.html"),
        ),
        (
            "reservation.confirmed.txt",
            include_str!("templates/reservation.confirmed.txt"),
        ),
        (
            "reservation.confirmed.html",
            include_str!("templates/reservation.confirmed.html"),
        ),
        (
            "reservation.expired.txt",
            include_str!("templates/reservation.expired.txt"),
        ),
        (
            "reservation.expired.html",
            include_str!("templates/reservation.expired.html"),
        ),
    ];
    for (name, source) in sources {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("the built-in template {name} does not parse: {e}"));
    }
    env
});

fn subject(kind: &str, context: &Value) -> String {
    let concert = context.get("concert").and_then(Value::as_str).unwrap_or("your concert");
    match kind {
        notice::ADMITTED => format!("It's your turn: {concert}"),
        notice::HELD => format!("Your seats are held: {concert}"),
        notice::EXPIRING => format!("Your hold expires soon: {concert}"),
        notice::TICKET => format!("Your ticket: {concert}"),
        notice::EXPIRED => format!("Your hold ran out: {concert}"),
        _ => format!("ImTicket: {concert}"),
    }
}

/// The subject, text and HTML of a `kind` mail with `context`.
pub fn render(kind: &str, context: &Value) -> anyhow::Result<(String, String, String)> {
    let subject = subject(kind, context);
    let mut with_subject = context.clone();
    if let Some(map) = with_subject.as_object_mut() {
        map.insert("subject".to_owned(), Value::String(subject.clone()));
    }
    let text = TEMPLATES
        .get_template(&format!("{kind}.txt"))
        .and_then(|t| t.render(&with_subject))
        .with_context(|| format!("render {kind}.txt"))?;
    let html = TEMPLATES
        .get_template(&format!("{kind}.html"))
        .and_then(|t| t.render(&with_subject))
        .with_context(|| format!("render {kind}.html"))?;
    Ok((subject, text, html))
}

/// The wait after attempt `made` (1-based) failed: 5 s doubling up to 10 min, ±10 % jitter.
fn backoff(made: u32) -> Duration {
    let base = Duration::from_secs(5).saturating_mul(1u32 << made.saturating_sub(1).min(10));
    let wait = base.min(LONGEST_WAIT);
    wait.mul_f64(rand::rng().random_range(0.9..=1.1))
}

/// Skips settled reminders, then sends the due mails (up to a round's worth); returns how many
/// were attempted. Runs only with an SMTP server (the worker starts it then).
pub async fn dispatch_round(deps: &Deps) -> anyhow::Result<usize> {
    let due = {
        let mut tx = deps.db.begin().await.context("begin mail lease")?;
        repo::skip_settled_mail_reminders(&mut tx).await?;
        let due = repo::lease_due_mail(&mut tx, ROUND, LEASE).await?;
        tx.commit().await.context("commit mail lease")?;
        due
    };
    let attempted = due.len();
    let sends = due.into_iter().map(|d| attempt(deps, d));
    for result in futures_util::future::join_all(sends).await {
        if let Err(err) = result {
            tracing::warn!(error = %format!("{err:#}"), "recording a mail attempt failed; it is tried again after its lease");
        }
    }
    let mut conn = deps.db.read().await.context("acquire connection")?;
    metrics::gauge!("notification_backlog", "channel" => "email").set(repo::mail_backlog(&mut conn).await? as f64);
    Ok(attempted)
}

async fn attempt(deps: &Deps, due: DueMail) -> anyhow::Result<()> {
    let made = u32::try_from(due.attempts).unwrap_or(0) + 1;
    let settled = match render(&due.notice, &due.context) {
        Err(err) => MailSettled::Failed(format!("{err:#}")),
        Ok((subject, text, html)) => {
            let mail = Mail {
                id: due.id.replace(':', "."),
                to: due.recipient.clone(),
                subject,
                text,
                html,
            };
            let (result, took) = deps.mailer.send(&mail).await;
            metrics::histogram!("notification_delivery_seconds", "channel" => "email").record(took.as_secs_f64());
            match result {
                Ok(()) => MailSettled::Sent,
                Err(Refused::Permanent(why)) => MailSettled::Failed(why),
                Err(Refused::Transient(why)) => {
                    let wait = chrono::Duration::from_std(backoff(made)).unwrap_or_default();
                    MailSettled::Retry(Utc::now() + wait, why)
                }
            }
        }
    };
    let outcome = match &settled {
        MailSettled::Sent => "delivered",
        MailSettled::Retry(..) => "retry",
        MailSettled::Failed(_) => "failed",
    };
    metrics::counter!("notification_deliveries_total", "channel" => "email", "outcome" => outcome).increment(1);
    if let MailSettled::Failed(why) = &settled {
        tracing::warn!(mail = %due.id, reason = %why, "a mail was refused for good");
    }
    let mut conn = deps.db.write().await.context("acquire connection")?;
    repo::record_mail(&mut conn, &due.id, i32::try_from(made).unwrap_or(i32::MAX), &settled).await?;
    conn.commit().await.context("commit mail attempt")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_notice_renders_both_parts_and_html_is_escaped() {
        let context = json!({
            "name": "Ana <script>", "concert": "Night & Day", "seats": ["A, row 1, seat 2"],
            "expires_at": "2026-12-03 10:00:00 UTC", "ticket_code": "TK-1", "amount": 100,
            "reservation_id": "r-1",
        });
        for kind in notice::TYPES {
            let (subject, text, html) = render(kind, &context).unwrap();
            assert!(subject.contains("Night & Day"), "{subject}");
            assert!(text.contains("Ana <script>") && text.contains("Night & Day"), "{text}");
            assert!(
                html.contains("Ana &lt;script&gt;") && !html.contains("<script>"),
                "{html}"
            );
            assert!(html.contains("Night &amp; Day"), "{html}");
        }
        let (_, text, _) = render(notice::TICKET, &context).unwrap();
        assert!(text.contains("TK-1") && text.contains("A, row 1, seat 2"), "{text}");
    }

    #[test]
    fn the_backoff_doubles_and_stops_at_ten_minutes() {
        let first = backoff(1).as_secs_f64();
        assert!((4.5..=5.5).contains(&first), "{first}");
        let third = backoff(3).as_secs_f64();
        assert!((18.0..=22.0).contains(&third), "{third}");
        assert!(backoff(40) <= LONGEST_WAIT.mul_f64(1.1));
    }
}
