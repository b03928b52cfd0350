//! Confirming a paid reservation (the `payment` worker, from a `payment.completed` event): a
//! ticket code, the seats sold, the buyer's waiting-room slot given back, the caches refreshed.
//! Idempotent: the event is recorded in `processed_events` in the same transaction, and a
//! reservation that is no longer `paid` is left as it is. The worker confirms a batch of
//! events in one transaction ([`confirm_batch`]).

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
    let mut all = confirm_batch(deps, &[(event.clone(), event_id)], group).await?;
    Ok(all.pop().unwrap_or(Confirmed::Already))
}

/// What a confirmation leaves to do once its transaction committed.
struct After {
    reservation: repo::ReservationRow,
    concert_id: Option<Uuid>,
    told: Option<i64>,
}

/// Confirms a batch of paid reservations in **one transaction**: the events recorded in
/// `processed_events` together (a redelivered one, or one twice in the batch, is `Already`),
/// then each fresh one as [`confirm`] does, in reservation order (two batches never wait on
/// each other in a circle). One outcome per event, in order. The waiting-room slots and the
/// seat maps follow after the commit.
pub async fn confirm_batch(
    deps: &Deps,
    events: &[(PaymentCompleted, Uuid)],
    group: &str,
) -> anyhow::Result<Vec<Confirmed>> {
    let mut outcomes: Vec<Confirmed> = events.iter().map(|_| Confirmed::Already).collect();
    if events.is_empty() {
        return Ok(outcomes);
    }
    let mut tx = deps.db.begin().await.context("begin confirmation")?;
    // Sorted, as the reservations below: two batches that share events (a reclaim beside a
    // slow consumer) take their locks in the same order.
    let mut ids: Vec<Uuid> = events.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut fresh = processed_events::record_new(&mut tx, group, &ids).await?;
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].0.reservation_id);
    let mut after = Vec::new();
    for i in order {
        let (event, event_id) = &events[i];
        // The first of the batch with this id counts; a second copy is a duplicate.
        if !fresh.remove(event_id) {
            continue;
        }
        let Some(reservation) = repo::find(&mut tx, event.reservation_id, true).await? else {
            outcomes[i] = Confirmed::Missing;
            continue;
        };
        let concert_id = repo::schedule_concert(&mut tx, reservation.schedule_id).await?;
        let code = ticket_code();
        if !repo::confirm_paid(&mut tx, reservation.id, &code).await? {
            continue;
        }
        let told = match concert_id {
            Some(concert_id) => {
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
            None => None,
        };
        outcomes[i] = Confirmed::Now(code);
        after.push(After {
            reservation,
            concert_id,
            told,
        });
    }
    tx.commit().await.context("commit confirmation")?;
    metrics::counter!("confirmation_batches_total").increment(1);
    metrics::counter!("reservations_confirmed_total").increment(after.len() as u64);
    let told: Vec<i64> = after.iter().filter_map(|a| a.told).collect();
    deps.outbox.publish_now(&told).await;
    for After {
        reservation,
        concert_id,
        ..
    } in after
    {
        let Some(concert_id) = concert_id else { continue };
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
    Ok(outcomes)
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
