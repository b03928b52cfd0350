//! The waiting room: join a concert's line, see where you stand, leave; the admission round
//! the `queue-promoter` runs; the gate the booking endpoints pass through; and the release of
//! a slot when its holder has paid. Fairness, the pre-queue and the rate limit:
//! docs/waiting-room.md. The Redis side is [`crate::infra::redis::waiting_room`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::Deps;
use super::error::AppError;
use super::tokens::QueuePass;
use crate::domain::queue::{
    Admission, EntryView, POLL_MAX_SECONDS, QueueStatus, Standing, eta_seconds, poll_after_active,
    poll_after_pre_queue, poll_after_waiting,
};
use crate::events::{QueueAdmitted, QueueJoined};
use crate::infra::postgres::catalog as catalog_repo;
use crate::infra::redis::waiting_room::{self as room, AdmitReport, QueueStats, WaitingRoom};

/// What a client is told about its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    pub status: QueueStatus,
    /// 1-based among the waiting; 0 when active; `None` in the pre-queue and once expired.
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub active_until: Option<DateTime<Utc>>,
    pub poll_after_seconds: u64,
}

/// A join's answer: the token that names the entry, and where it stands.
#[derive(Debug, Clone)]
pub struct Joined {
    pub queue_token: String,
    pub view: QueueView,
}

fn admission(deps: &Deps) -> Admission {
    deps.config.waiting_room.admission()
}

/// The waiting room is Redis: when Redis cannot answer, nobody is admitted or let through.
fn unavailable(err: anyhow::Error) -> AppError {
    AppError::unavailable(
        "dependency_unavailable",
        "the waiting room is unavailable; try again shortly",
        5,
    )
    .with_source(err)
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// Admissions per second for the ETA: measured over the last minute (since the oldest
/// admission in it), or the configured rate when nobody was admitted in the last minute.
fn measured_rate(view: &EntryView, configured: u32) -> f64 {
    if view.admitted_last_minute <= 0 {
        return f64::from(configured);
    }
    let span_ms = (view.now_ms - view.oldest_admission_ms).clamp(1_000, 60_000);
    view.admitted_last_minute as f64 / (span_ms as f64 / 1000.0)
}

fn describe(view: &EntryView, configured_rate: u32) -> QueueView {
    let secs_until = |ms: i64| ((ms - view.now_ms).max(0) as u64).div_ceil(1000);
    let status = view.standing.status();
    let gone = QueueView {
        status,
        position: None,
        eta_seconds: None,
        active_until: None,
        poll_after_seconds: POLL_MAX_SECONDS,
    };
    match view.standing {
        Standing::Active { until_ms } => QueueView {
            position: Some(0),
            eta_seconds: Some(0),
            active_until: at(until_ms),
            poll_after_seconds: poll_after_active(secs_until(until_ms)),
            ..gone
        },
        Standing::PreQueue => QueueView {
            poll_after_seconds: poll_after_pre_queue(secs_until(view.opens_at_ms), rand::random()),
            ..gone
        },
        Standing::Waiting { position } => {
            let eta = eta_seconds(position, measured_rate(view, configured_rate));
            QueueView {
                position: Some(position),
                eta_seconds: Some(eta),
                poll_after_seconds: poll_after_waiting(eta),
                ..gone
            }
        }
        Standing::SoldOut { position } => QueueView {
            position: Some(position),
            ..gone
        },
        Standing::Expired | Standing::Done => gone,
    }
}

/// `POST /concerts/{id}/queue`: joins the line (or the pre-queue), or returns the entry the
/// user already has there.
#[tracing::instrument(name = "join queue", skip_all, fields(concert_id = %concert_id))]
pub async fn join(deps: &Deps, user_id: Uuid, concert_id: Uuid) -> Result<Joined, AppError> {
    let opens_at = deps.sale_windows.opens_at(&deps.db, concert_id).await?;
    let room = WaitingRoom::new(&deps.redis, &deps.keys, concert_id);
    let opens_at_ms = opens_at.map_or(0, |t| t.timestamp_millis());
    let fresh = Uuid::now_v7();
    let view = room
        .join(user_id, fresh, opens_at_ms, admission(deps))
        .await
        .map_err(unavailable)?;
    room::mark_open(&deps.redis, &deps.keys, concert_id)
        .await
        .map_err(unavailable)?;
    metrics::counter!("queue_joins_total").increment(1);
    if view.entry == fresh {
        let joined = QueueJoined {
            concert_id,
            user_id,
            entry_id: fresh,
        };
        deps.outbox.publish_direct(&[joined]).await;
    }
    if let Standing::Active { until_ms } = view.standing
        && view.entry == fresh
    {
        // A new entry admitted at once (nobody was waiting): a wait of zero.
        metrics::counter!("queue_admissions_total").increment(1);
        metrics::histogram!("queue_wait_seconds").record(0.0);
        let admitted = QueueAdmitted {
            concert_id,
            user_id,
            entry_id: fresh,
            active_until: at_ms(until_ms),
        };
        deps.outbox.publish_direct(&[admitted]).await;
    }
    let queue_token = deps.tokens.issue_queue(QueuePass {
        user_id,
        concert_id,
        entry_id: view.entry,
    })?;
    Ok(Joined {
        queue_token,
        view: describe(&view, deps.config.waiting_room.promote_per_second),
    })
}

/// A Redis clock reading (ms since the epoch) as a time.
fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `GET /queue/status`.
pub async fn status(deps: &Deps, pass: QueuePass) -> Result<QueueView, AppError> {
    let view = WaitingRoom::new(&deps.redis, &deps.keys, pass.concert_id)
        .status(pass.entry_id)
        .await
        .map_err(unavailable)?;
    Ok(describe(&view, deps.config.waiting_room.promote_per_second))
}

/// `DELETE /queue`: leaves the line or gives the active slot back. Idempotent.
pub async fn leave(deps: &Deps, pass: QueuePass) -> Result<(), AppError> {
    WaitingRoom::new(&deps.redis, &deps.keys, pass.concert_id)
        .leave(pass.user_id, pass.entry_id)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Ends `user_id`'s active slot in `concert_id`'s room: called when the user's payment
/// completes, so the next fan in line gets the slot. Returns whether there was one.
pub async fn release(deps: &Deps, concert_id: Uuid, user_id: Uuid) -> Result<bool, AppError> {
    WaitingRoom::new(&deps.redis, &deps.keys, concert_id)
        .release(user_id, admission(deps).active_ttl_ms)
        .await
        .map_err(unavailable)
}

/// The gate of the booking endpoints: `pass` (a verified queue token) must belong to the
/// calling user and its entry must be active now; otherwise 403 `queue_not_active`. The
/// endpoint then checks that the schedule belongs to `pass.concert_id`
/// ([`ActivePass::for_concert`]).
pub async fn require_active(deps: &Deps, pass: QueuePass, caller: Uuid) -> Result<ActivePass, AppError> {
    if pass.user_id != caller {
        return Err(not_active("the queue token belongs to another user"));
    }
    let view = status(deps, pass).await?;
    if view.status != QueueStatus::Active {
        return Err(not_active(&format!(
            "the queue entry is {}, not active",
            view.status.as_str()
        )));
    }
    Ok(ActivePass {
        pass,
        active_until: view.active_until,
    })
}

fn not_active(detail: &str) -> AppError {
    AppError::forbidden("queue_not_active", detail)
}

/// A queue token whose entry was active when checked.
#[derive(Debug, Clone, Copy)]
pub struct ActivePass {
    pub pass: QueuePass,
    pub active_until: Option<DateTime<Utc>>,
}

impl ActivePass {
    /// 403 `queue_not_active` unless the pass is for `concert_id` (the schedule's concert).
    pub fn for_concert(self, concert_id: Uuid) -> Result<Self, AppError> {
        if self.pass.concert_id == concert_id {
            Ok(self)
        } else {
            Err(not_active("the queue token is for another concert"))
        }
    }
}

/// Admissions per promoter call at most: bounds one script's run time.
const ADMIT_BATCH: u32 = 1_000;

/// One admission round for one concert (the `queue-promoter` role): ends expired slots, then
/// admits in line order while slots are free and the current second's budget lasts. Every
/// promoter shares the budget in Redis, so several never admit faster than the rate.
pub async fn admit(deps: &Deps, concert_id: Uuid) -> anyhow::Result<AdmitReport> {
    let room = WaitingRoom::new(&deps.redis, &deps.keys, concert_id);
    let report = room.admit(admission(deps), ADMIT_BATCH).await?;
    if report.admitted > 0 {
        metrics::counter!("queue_admissions_total").increment(report.admitted);
        let histogram = metrics::histogram!("queue_wait_seconds");
        for wait in &report.waits_ms {
            histogram.record(*wait as f64 / 1000.0);
        }
        let active_until = at_ms(report.active_until_ms as i64);
        let admitted: Vec<QueueAdmitted> = report
            .entries
            .iter()
            .filter_map(|e| {
                Some(QueueAdmitted {
                    concert_id,
                    user_id: e.user_id.parse().ok()?,
                    entry_id: e.entry_id.parse().ok()?,
                    active_until,
                })
            })
            .collect();
        deps.outbox.publish_direct(&admitted).await;
    }
    if report.expired > 0 {
        metrics::counter!("queue_expired_total").increment(report.expired);
    }
    Ok(report)
}

/// Refreshes a concert's sold-out flag from PostgreSQL ([`super::availability`]): admission
/// pauses while it is set and resumes when seats come back. Also re-applies an admin's pause
/// from PostgreSQL (a Redis that lost it gets it back within a second).
pub async fn refresh_sold_out(deps: &Deps, concert_id: Uuid) -> anyhow::Result<bool> {
    let sold_out = super::catalog::availability::concert_sold_out(deps, concert_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let paused = {
        let mut conn = deps.db.read().await.context("acquire connection")?;
        catalog_repo::admission_paused(&mut conn, concert_id).await?
    };
    let room = WaitingRoom::new(&deps.redis, &deps.keys, concert_id);
    room.set_sold_out(sold_out).await?;
    room.set_paused(paused).await?;
    Ok(sold_out)
}

/// Pauses or resumes a concert's admission (admin): recorded in PostgreSQL with who did it,
/// then applied in Redis at once (the promoter re-applies it every second anyway). While
/// paused nobody is admitted, not even a joiner who would have found a free slot; fans already
/// active keep their slots. Returns the line's counts after the change.
pub async fn set_admission_paused(
    deps: &Deps,
    concert_id: Uuid,
    paused: bool,
    admin: Uuid,
) -> Result<QueueStats, AppError> {
    let mut conn = deps.db.write().await.context("acquire connection")?;
    let found = catalog_repo::set_admission_paused(&mut conn, concert_id, paused, admin).await?;
    conn.commit().await.context("commit admission pause")?;
    if !found {
        return Err(AppError::concert_not_found());
    }
    let room = WaitingRoom::new(&deps.redis, &deps.keys, concert_id);
    room.set_paused(paused).await?;
    tracing::info!(%concert_id, %admin, paused, "admission {}", if paused { "paused" } else { "resumed" });
    Ok(room.stats(concert_id).await?)
}

/// The promoter's memory between rounds: when each concert's sold-out flag was last read.
#[derive(Default, Clone)]
pub struct PromoterState {
    checked: Arc<Mutex<HashMap<Uuid, Instant>>>,
}

/// How often a promoter reads a concert's seat counts.
const SOLD_OUT_CHECK: Duration = Duration::from_secs(1);

/// What one promoter round over every open line did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PromoterRound {
    pub lines: u64,
    pub admitted: u64,
    pub waiting: u64,
    pub active: u64,
    pub pre_queue: u64,
}

/// One round over every open line: the sold-out flag (at most once a second per concert),
/// then admission; empty lines leave the list. Updates the waiting-room gauges.
pub async fn promote_all(deps: &Deps, state: &PromoterState) -> anyhow::Result<PromoterRound> {
    let mut round = PromoterRound::default();
    for concert_id in room::open_lines(&deps.redis, &deps.keys).await? {
        round.lines += 1;
        let due = {
            let mut checked = state.checked.lock().unwrap_or_else(|e| e.into_inner());
            let due = checked.get(&concert_id).is_none_or(|at| at.elapsed() >= SOLD_OUT_CHECK);
            if due {
                checked.insert(concert_id, Instant::now());
            }
            due
        };
        if due && let Err(err) = refresh_sold_out(deps, concert_id).await {
            tracing::warn!(%concert_id, error = %format!("{err:#}"), "sold-out check failed; keeping the last answer");
        }
        let report = admit(deps, concert_id).await?;
        round.admitted += report.admitted;
        round.active += report.active;
        if report.open {
            round.waiting += report.waiting;
        } else {
            round.pre_queue += report.waiting;
        }
        if report.open && report.waiting == 0 && report.active == 0 {
            room::drop_if_empty(&deps.redis, &deps.keys, concert_id).await?;
        }
    }
    metrics::gauge!("queue_waiting").set(round.waiting as f64);
    metrics::gauge!("queue_active").set(round.active as f64);
    metrics::gauge!("queue_pre_queue").set(round.pre_queue as f64);
    metrics::gauge!("queue_open_lines").set(round.lines as f64);
    Ok(round)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(standing: Standing) -> EntryView {
        EntryView {
            entry: Uuid::nil(),
            standing,
            opens_at_ms: 0,
            sold_out: false,
            admitted_last_minute: 0,
            now_ms: 1_000_000,
            oldest_admission_ms: 1_000_000,
        }
    }

    #[test]
    fn views_say_what_the_contract_says() {
        let waiting = describe(&view(Standing::Waiting { position: 250 }), 100);
        assert_eq!(
            (waiting.status, waiting.position, waiting.eta_seconds),
            (QueueStatus::Waiting, Some(250), Some(3))
        );
        let active = describe(&view(Standing::Active { until_ms: 1_600_000 }), 100);
        assert_eq!(
            (active.status, active.position, active.poll_after_seconds),
            (QueueStatus::Active, Some(0), 30)
        );
        assert_eq!(active.active_until.unwrap().timestamp_millis(), 1_600_000);
        let pre = describe(&view(Standing::PreQueue), 100);
        assert_eq!(
            (pre.status, pre.position, pre.eta_seconds),
            (QueueStatus::PreQueue, None, None)
        );
        let sold = describe(&view(Standing::SoldOut { position: 7 }), 100);
        assert_eq!((sold.status, sold.position), (QueueStatus::SoldOut, Some(7)));
        assert_eq!(describe(&view(Standing::Expired), 100).status, QueueStatus::Expired);
        let done = describe(&view(Standing::Done), 100);
        assert_eq!(
            (done.status, done.position, done.active_until),
            (QueueStatus::Done, None, None)
        );
    }

    #[test]
    fn the_rate_is_measured_over_the_last_minute() {
        let mut v = view(Standing::Waiting { position: 600 });
        assert_eq!(measured_rate(&v, 100), 100.0, "no history: the configured rate");
        v.admitted_last_minute = 600;
        v.oldest_admission_ms = v.now_ms - 60_000;
        assert_eq!(measured_rate(&v, 100), 10.0);
        v.oldest_admission_ms = v.now_ms - 10_000;
        assert_eq!(measured_rate(&v, 100), 60.0, "a young line: over the time it has run");
    }
}
