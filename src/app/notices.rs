//! What the `notifications` group does with an event a fan is told about: within one
//! transaction with its processed-events record, a webhook delivery per subscribed endpoint
//! ([`super::webhooks`]) and a mail to the fan ([`super::email`]), each only if the fan's
//! preferences allow it; a held reservation also schedules its "expires soon" reminder on both
//! channels. Nothing here runs on the booking path: the group reads the streams after the
//! fact, and the dispatchers send later. Why: docs/architecture.md ("Notifications").

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{AppError, Deps};
use crate::domain::notice::{self, Preferences};
use crate::infra::postgres::notices as repo;
use crate::infra::postgres::{processed_events, webhooks as webhook_repo};

/// One event the notifications group tells: its id, type, time and payload.
#[derive(Debug, Clone)]
pub struct Notice {
    pub event_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
}

/// The event types that are notices (others are acked as they are).
pub fn is_notice(event_type: &str) -> bool {
    notice::TYPES.contains(&event_type) && event_type != notice::EXPIRING
}

/// Turns `notices` into deliveries for `group`, in one transaction with their processed-events
/// records: an event redelivered to the group adds none. A batch costs a fixed number of
/// statements whatever its size (the preferences, the mails' facts, one insert per channel):
/// the group shares PostgreSQL with the booking path.
pub async fn enqueue(deps: &Deps, group: &str, notices: &[Notice]) -> anyhow::Result<()> {
    if notices.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = notices.iter().map(|n| n.event_id).collect();
    let settings = &deps.config.notifications;
    let first = chrono::Duration::from_std(settings.retry_schedule.first().copied().unwrap_or_default())
        .context("retry schedule")?;
    let reminder = chrono::Duration::from_std(settings.hold_reminder).context("hold reminder")?;
    let mail_on = deps.mailer.enabled();
    let mut tx = deps.db.begin().await.context("begin notices")?;
    let fresh = processed_events::record_new(&mut tx, group, &ids).await?;
    let mut told: Vec<(&Notice, Uuid)> = Vec::with_capacity(notices.len());
    for notice in notices.iter().filter(|n| fresh.contains(&n.event_id)) {
        match uuid_field(&notice.payload, "user_id") {
            Some(user) => told.push((notice, user)),
            None => tracing::warn!(event_type = %notice.event_type, "a notice without user_id is not told"),
        }
    }
    let users: Vec<Uuid> = told.iter().map(|(_, u)| *u).collect();
    let preferences = repo::preferences_of(&mut tx, &users).await?;
    let facts = if mail_on {
        let field_ids =
            |name: &str| -> Vec<Uuid> { told.iter().filter_map(|(n, _)| uuid_field(&n.payload, name)).collect() };
        let seats: Vec<Uuid> = told.iter().flat_map(|(n, _)| seat_ids(&n.payload)).collect();
        Some(
            repo::MailFacts::load(
                &mut tx,
                &users,
                &field_ids("concert_id"),
                &field_ids("schedule_id"),
                &seats,
            )
            .await?,
        )
    } else {
        None
    };
    let (mut deliveries, mut mails) = (Vec::new(), Vec::new());
    let defaults = Preferences::default();
    let now = Utc::now();
    for (notice, user) in told {
        let prefs = preferences.get(&user).unwrap_or(&defaults);
        let mut kinds = vec![(notice.event_id, notice.event_type.as_str(), now, None)];
        let expires_at = time_field(&notice.payload, "expires_at");
        if let Some(expires_at) = expires_at.filter(|_| notice.event_type == notice::HELD && !reminder.is_zero()) {
            let reservation = uuid_field(&notice.payload, "reservation_id");
            kinds.push((
                notice::reminder_id(notice.event_id),
                notice::EXPIRING,
                expires_at - reminder,
                reservation,
            ));
        }
        for (event_id, kind, due_at, while_held) in kinds {
            if !prefs.wants(kind) {
                continue;
            }
            if prefs.webhook {
                deliveries.push(webhook_repo::NewDelivery {
                    event_id,
                    event_type: kind.to_owned(),
                    body: json!({
                        "type": kind,
                        "timestamp": notice.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                        "data": notice.payload,
                    }),
                    due_at: if while_held.is_some() { due_at } else { now + first },
                    while_held,
                });
            }
            if prefs.email
                && let Some(facts) = &facts
                && let Some(mail) = mail(facts, notice, user, kind, due_at, while_held)
            {
                mails.push(mail);
            }
        }
    }
    webhook_repo::enqueue_many(&mut tx, &deliveries).await?;
    repo::enqueue_emails(&mut tx, &mails).await?;
    tx.commit().await.context("commit notices")?;
    Ok(())
}

fn seat_ids(payload: &Value) -> Vec<Uuid> {
    payload
        .get("seat_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// The fan's mail about `notice` (as `kind`), with what its templates show; `None` when the
/// fan is gone.
fn mail(
    facts: &repo::MailFacts,
    notice: &Notice,
    user: Uuid,
    kind: &str,
    due_at: DateTime<Utc>,
    while_held: Option<Uuid>,
) -> Option<repo::NewMail> {
    let p = &notice.payload;
    let found = facts.context(
        user,
        uuid_field(p, "concert_id"),
        uuid_field(p, "schedule_id"),
        &seat_ids(p),
    )?;
    let when = |name: &str| time_field(p, name).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    let context = json!({
        "name": found.name,
        "concert": found.concert.unwrap_or_else(|| "your concert".to_owned()),
        "starts_at": found.starts_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        "seats": found.seats,
        "reservation_id": p.get("reservation_id"),
        "amount": p.get("amount"),
        "ticket_code": p.get("ticket_code"),
        "expires_at": when("expires_at"),
        "active_until": when("active_until"),
    });
    Some(repo::NewMail {
        id: format!("{}:{kind}", notice.event_id),
        user,
        notice: kind.to_owned(),
        recipient: found.email,
        context,
        due_at,
        while_held,
    })
}

fn uuid_field(payload: &Value, name: &str) -> Option<Uuid> {
    payload.get(name)?.as_str()?.parse().ok()
}

fn time_field(payload: &Value, name: &str) -> Option<DateTime<Utc>> {
    let text = payload.get(name)?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// The caller's preferences.
pub async fn preferences(deps: &Deps, user: Uuid) -> Result<Preferences, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    Ok(repo::preferences(&mut conn, user).await?)
}

/// Replaces the caller's preferences.
pub async fn set_preferences(deps: &Deps, user: Uuid, prefs: &Preferences) -> Result<(), AppError> {
    let mut conn = deps.db.write().await.context("acquire connection")?;
    repo::set_preferences(&mut conn, user, prefs).await?;
    conn.commit().await.context("commit preferences")?;
    Ok(())
}
