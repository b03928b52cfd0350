//! Hold expiry as durable events: the `expiry-scheduler` turns due holds into `hold.expired`
//! events (from Redis's due set, and a PostgreSQL sweep for any hold Redis forgot); the
//! `expiry` worker releases a hold only if it is still held and due, and writes the
//! `reservation.expired` fact in the same transaction.

use anyhow::Context;
use chrono::Utc;
use uuid::Uuid;

use super::Deps;
use crate::domain::reservation::ReservationStatus;
use crate::events::ReservationExpired;
use crate::infra::{
    postgres::catalog, postgres::outbox, postgres::processed_events, postgres::reservations as repo,
    redis::expiry_due as expiry,
};

/// How an expiry event ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired {
    /// Released now: its seats are available again.
    Released(i64),
    /// Nothing to do: paid, cancelled, already expired, not due yet, or a redelivery.
    Nothing,
    /// No such reservation.
    Missing,
}

/// A due hold seen by the sweep only after this long past `expires_at` (the scheduler's normal
/// path is faster).
const SWEEP_GRACE_SECONDS: f64 = 5.0;

pub async fn expire(deps: &Deps, reservation_id: Uuid, group: &str, event_id: Uuid) -> anyhow::Result<Expired> {
    let mut tx = deps.db.begin().await.context("begin expiry")?;
    if processed_events::record_new(&mut tx, group, &[event_id])
        .await?
        .is_empty()
    {
        return Ok(Expired::Nothing);
    }
    let Some(row) = repo::find(&mut tx, reservation_id, true).await? else {
        tx.commit().await.context("commit")?;
        return Ok(Expired::Missing);
    };
    if row.status != ReservationStatus::Held || row.expires_at > Utc::now() {
        tx.commit().await.context("commit")?;
        return Ok(Expired::Nothing);
    }
    let freed = repo::release_held(&mut tx, row.id, ReservationStatus::Expired).await?;
    if freed > 0 {
        catalog::add_available(&mut tx, row.schedule_id, freed as i32).await?;
    }
    let fact = ReservationExpired {
        reservation_id: row.id,
        user_id: row.user_id,
        schedule_id: row.schedule_id,
        seat_ids: row.seat_ids.clone(),
    };
    let outbox_id = outbox::append(&mut tx, &fact).await?;
    tx.commit().await.context("commit expiry")?;
    deps.outbox.publish_now(&[outbox_id]).await;
    let lag = (Utc::now() - row.expires_at).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::histogram!("hold_expiry_lag_seconds").record(lag);
    metrics::counter!("holds_expired_total").increment(1);
    let concert_id = deps
        .schedule_concerts
        .concert_of(&deps.db, row.schedule_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    super::reservations::released(deps, &row, concert_id, ReservationStatus::Expired).await;
    Ok(Expired::Released(freed))
}

/// One scheduler round: publishes the holds due in Redis; returns how many.
pub async fn publish_due(deps: &Deps) -> anyhow::Result<usize> {
    expiry::publish_due(&deps.redis, &deps.keys, 1000).await
}

/// The safety net: publishes `hold.expired` for held reservations PostgreSQL says are due
/// (whatever Redis remembers); returns how many.
pub async fn sweep(deps: &Deps) -> anyhow::Result<usize> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let due = repo::due_held(&mut conn, SWEEP_GRACE_SECONDS, 1000).await?;
    drop(conn);
    expiry::publish(&deps.redis, &deps.keys, &due).await?;
    Ok(due.len())
}
