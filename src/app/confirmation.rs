//! Confirming a paid reservation (the `payment` worker, from a `payment.completed` event): a
//! ticket code, the seats sold, the buyer's waiting-room slot given back, the caches refreshed.
//! Idempotent: the event is recorded in `processed_events` in the same transaction, and a
//! reservation that is no longer `paid` is left as it is.

use anyhow::Context;
use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use super::Deps;
use super::catalog::seat_map::{SeatChange, seats_changed};
use crate::events::{PaymentCompleted, ReservationConfirmed};
use crate::infra::{postgres::outbox, postgres::processed_events, postgres::reservations as repo};

/// How a confirmation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now, with this ticket code.
    Now(String),
    /// Done before (a redelivery, or the reservation is no longer paid).
    Already,
    /// No such reservation (a bad event).
    Missing,
}

/// An unguessable ticket code: 122 random bits, upper-case hex in groups.
fn ticket_code() -> String {
    let hex = Uuid::new_v4().simple().to_string().to_uppercase();
    format!("TK-{}-{}-{}-{}", &hex[..8], &hex[8..16], &hex[16..24], &hex[24..])
}

/// Confirms the reservation `event` paid for, and writes `reservation.confirmed` (the ticket,
/// for the notifications and statistics groups) in the same transaction.
pub async fn confirm(deps: &Deps, event: &PaymentCompleted, group: &str, event_id: Uuid) -> anyhow::Result<Confirmed> {
    let mut tx = deps.db.begin().await.context("begin confirmation")?;
    let fresh = processed_events::record_new(&mut tx, group, &[event_id]).await?;
    if fresh.is_empty() {
        return Ok(Confirmed::Already);
    }
    let Some(reservation) = repo::find(&mut tx, event.reservation_id, true).await? else {
        tx.commit().await.context("commit")?;
        return Ok(Confirmed::Missing);
    };
    let concert_id = repo::schedule_concert(&mut tx, reservation.schedule_id).await?;
    let code = ticket_code();
    let confirmed = repo::confirm_paid(&mut tx, reservation.id, &code).await?;
    let told = match (confirmed, concert_id) {
        (true, Some(concert_id)) => {
            let ticket = ReservationConfirmed {
                reservation_id: reservation.id,
                user_id: reservation.user_id,
                concert_id,
                schedule_id: reservation.schedule_id,
                seat_ids: reservation.seat_ids.clone(),
                amount: reservation.amount,
                ticket_code: code.clone(),
                confirmed_at: Utc::now().trunc_subsecs(6),
            };
            Some(outbox::append(&mut tx, &ticket).await?)
        }
        _ => None,
    };
    tx.commit().await.context("commit confirmation")?;
    if !confirmed {
        return Ok(Confirmed::Already);
    }
    metrics::counter!("reservations_confirmed_total").increment(1);
    if let Some(id) = told {
        deps.outbox.publish_now(&[id]).await;
    }
    if let Some(concert_id) = concert_id {
        // Paying ends the buyer's active slot: the next fan in line gets it.
        if let Err(err) = super::waiting_room::release(deps, concert_id, reservation.user_id).await {
            tracing::warn!(error = %err, "could not release the buyer's queue slot; it ends with its TTL");
        }
        seats_changed(
            deps,
            reservation.schedule_id,
            concert_id,
            &[SeatChange::sold(&reservation.seat_ids)],
        )
        .await;
    }
    Ok(Confirmed::Now(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_codes_are_long_and_distinct() {
        let (a, b) = (ticket_code(), ticket_code());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 32 + 3);
    }
}
