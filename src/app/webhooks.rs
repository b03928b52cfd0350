//! Webhooks: endpoints an admin registers (`/admin/webhooks`), the deliveries the
//! `notifications` role makes of the events they subscribe to ([`super::notices::enqueue`]), and the
//! dispatcher's round ([`dispatch_round`]): signed per Standard Webhooks, retried on a schedule
//! with jitter, re-signed on every attempt under the same id, stopped by 410 Gone. Why it is
//! built this way: docs/architecture.md ("Notifications").

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use rand::Rng;
use uuid::Uuid;

use super::{AppError, Deps};
use crate::domain::webhook::{new_secret, signature_header};
use crate::infra::postgres::Db;
use crate::infra::postgres::webhooks::{self as repo, Due, Settled};
use crate::infra::webhooks::{Answer, WebhookClient};

pub use repo::{Delivery, Endpoint};

/// The event types an endpoint may subscribe to (`*`: all of them).
pub use crate::domain::notice::TYPES as EVENT_TYPES;

/// How long a leased delivery is another dispatcher's to leave alone: longer than an attempt.
const LEASE: Duration = Duration::from_secs(60);
/// Deliveries one round sends.
const ROUND: i64 = 50;
/// The longest `Retry-After` honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// Registers an endpoint; returns it and its secret (shown this once).
pub async fn create(
    db: &Db,
    client: &WebhookClient,
    url: &str,
    event_types: &[String],
    description: &str,
) -> Result<(Endpoint, String), AppError> {
    check_types(event_types)?;
    if description.chars().count() > 500 {
        return Err(AppError::validation(
            "invalid_field",
            "description: at most 500 characters",
        ));
    }
    client
        .check_target(url)
        .await
        .map_err(|reason| AppError::validation("invalid_field", reason))?;
    let secret = new_secret(rand::rng().random());
    let mut conn = db.write().await.context("acquire connection")?;
    let endpoint = repo::insert_endpoint(&mut conn, Uuid::now_v7(), url, event_types, description, &secret).await?;
    conn.commit().await.context("commit webhook endpoint")?;
    Ok((endpoint, secret))
}

fn check_types(event_types: &[String]) -> Result<(), AppError> {
    if event_types.is_empty() || event_types.len() > 20 {
        return Err(AppError::validation("invalid_field", "event_types: 1 to 20 types"));
    }
    if let Some(unknown) = event_types
        .iter()
        .find(|t| *t != "*" && !EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(AppError::validation(
            "invalid_field",
            format!(
                "event_types: {unknown:?} is not one of {}, or *",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    Ok(())
}

fn not_found() -> AppError {
    AppError::not_found("webhook_not_found", "no such webhook endpoint")
}

pub async fn list(db: &Db) -> Result<Vec<Endpoint>, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    Ok(repo::endpoints(&mut conn).await?)
}

pub async fn get(db: &Db, id: Uuid) -> Result<Endpoint, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    repo::endpoint(&mut conn, id).await?.ok_or_else(not_found)
}

pub async fn delete(db: &Db, id: Uuid) -> Result<(), AppError> {
    let mut conn = db.write().await.context("acquire connection")?;
    let deleted = repo::delete_endpoint(&mut conn, id).await?;
    conn.commit().await.context("commit")?;
    if deleted { Ok(()) } else { Err(not_found()) }
}

/// A new secret; the old one keeps signing for `IMTICKET_WEBHOOK_SECRET_OVERLAP_SECONDS`.
pub async fn rotate(db: &Db, id: Uuid, overlap: Duration) -> Result<String, AppError> {
    let secret = new_secret(rand::rng().random());
    let overlap = chrono::Duration::from_std(overlap).context("secret overlap")?;
    let mut conn = db.write().await.context("acquire connection")?;
    let rotated = repo::rotate_secret(&mut conn, id, &secret, Utc::now() + overlap).await?;
    conn.commit().await.context("commit")?;
    if rotated { Ok(secret) } else { Err(not_found()) }
}

pub async fn deliveries(db: &Db, id: Uuid) -> Result<Vec<Delivery>, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    repo::endpoint(&mut conn, id).await?.ok_or_else(not_found)?;
    Ok(repo::deliveries(&mut conn, id, 100).await?)
}

/// When attempt `made` (1-based) failed: the next one's time, or `None` when the schedule is
/// spent. The schedule's wait, ±10 % jitter, or the endpoint's `Retry-After` if longer (capped).
fn next_attempt(schedule: &[Duration], made: usize, retry_after: Option<Duration>) -> Option<Duration> {
    let wait = *schedule.get(made)?;
    let jitter = wait.mul_f64(rand::rng().random_range(-0.1..=0.1f64).abs());
    let wait = if rand::rng().random_bool(0.5) {
        wait + jitter
    } else {
        wait.saturating_sub(jitter)
    };
    Some(retry_after.map_or(wait, |r| r.min(RETRY_AFTER_CAP).max(wait)))
}

/// Sends the due deliveries (up to a round's worth); returns how many were attempted.
pub async fn dispatch_round(deps: &Deps) -> anyhow::Result<usize> {
    let due = {
        let mut tx = deps.db.begin().await.context("begin webhook lease")?;
        repo::skip_settled_reminders(&mut tx).await?;
        let due = repo::lease_due(&mut tx, ROUND, LEASE).await?;
        tx.commit().await.context("commit webhook lease")?;
        due
    };
    let attempted = due.len();
    let sends = due.into_iter().map(|d| attempt(deps, d));
    for result in futures_util::future::join_all(sends).await {
        if let Err(err) = result {
            tracing::warn!(error = %format!("{err:#}"), "recording a webhook attempt failed; it is tried again after its lease");
        }
    }
    let mut conn = deps.db.read().await.context("acquire connection")?;
    metrics::gauge!("notification_backlog", "channel" => "webhook").set(repo::backlog(&mut conn).await? as f64);
    Ok(attempted)
}

async fn attempt(deps: &Deps, due: Due) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&due.body).context("serialize webhook body")?;
    let timestamp = Utc::now().timestamp();
    let mut secrets = vec![due.secret.as_str()];
    secrets.extend(due.previous_secret.as_deref());
    let headers = [
        ("webhook-id", due.id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            signature_header(secrets, &due.id, timestamp, &body),
        ),
    ];
    let (answer, latency) = deps.webhooks.send(&due.url, &headers, body).await;
    let made = usize::try_from(due.attempts).unwrap_or(0) + 1;
    let schedule = &deps.config.notifications.retry_schedule;
    let endpoint = due.endpoint_id.to_string();
    metrics::histogram!("notification_delivery_seconds", "channel" => "webhook").record(latency.as_secs_f64());
    let (status_code, error, settled, gone) = match &answer {
        Answer::Status { code, .. } if (200..300).contains(code) => (Some(*code), None, Settled::Delivered, false),
        Answer::Status { code: 410, .. } => (
            Some(410),
            Some("410 Gone: endpoint disabled".to_owned()),
            Settled::Failed,
            true,
        ),
        Answer::Status { code, retry_after } => (
            Some(*code),
            Some(format!("answered {code}")),
            retry(schedule, made, *retry_after),
            false,
        ),
        Answer::Failed(reason) => (None, Some(reason.clone()), retry(schedule, made, None), false),
    };
    let outcome = match (&settled, gone) {
        (Settled::Delivered, _) => "delivered",
        (_, true) => "gone",
        (Settled::Retry(_), _) => "retry",
        (Settled::Failed, _) => "failed",
    };
    metrics::counter!("notification_deliveries_total", "channel" => "webhook", "outcome" => outcome).increment(1);
    metrics::gauge!("webhook_endpoint_failing", "endpoint" => endpoint.clone()).set(if outcome == "delivered" {
        0.0
    } else {
        1.0
    });
    let mut tx = deps.db.begin().await.context("begin webhook attempt")?;
    repo::record_attempt(
        &mut tx,
        &due.id,
        i32::try_from(made).unwrap_or(i32::MAX),
        status_code.map(i32::from),
        i32::try_from(latency.as_millis()).unwrap_or(i32::MAX),
        error.as_deref(),
        &settled,
    )
    .await?;
    if gone {
        repo::disable(&mut tx, due.endpoint_id, "answered 410 Gone").await?;
        metrics::counter!("webhook_endpoints_disabled").increment(1);
        tracing::warn!(endpoint = %endpoint, "a webhook endpoint answered 410 Gone; it is disabled");
    }
    tx.commit().await.context("commit webhook attempt")?;
    Ok(())
}

fn retry(schedule: &[Duration], made: usize, retry_after: Option<Duration>) -> Settled {
    match next_attempt(schedule, made, retry_after) {
        Some(wait) => Settled::Retry(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()),
        None => Settled::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_out_and_retry_after_only_lengthens_a_wait() {
        let schedule = [0, 5, 300].map(Duration::from_secs);
        let wait = next_attempt(&schedule, 1, None).unwrap();
        assert!((4.5..=5.5).contains(&wait.as_secs_f64()), "{wait:?}");
        assert_eq!(next_attempt(&schedule, 3, None), None, "three attempts, then failed");
        let longer = next_attempt(&schedule, 1, Some(Duration::from_secs(60))).unwrap();
        assert_eq!(longer, Duration::from_secs(60));
        let capped = next_attempt(&schedule, 1, Some(Duration::from_secs(86_400))).unwrap();
        assert_eq!(capped, RETRY_AFTER_CAP);
        assert!(next_attempt(&schedule, 2, Some(Duration::from_secs(1))).unwrap() >= Duration::from_secs(270));
    }

    #[test]
    fn only_known_types_may_be_subscribed() {
        assert!(check_types(&["reservation.created".into(), "*".into()]).is_ok());
        assert_eq!(
            check_types(&["payment.failed".into()]).unwrap_err().code,
            "invalid_field"
        );
        assert!(check_types(&[]).is_err());
    }
}
