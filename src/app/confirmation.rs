//! Confirming a paid reservation (the `payment` worker, from a `payment.completed` event): a
//! ticket code, the seats sold, the buyer's waiting-room slot given back, the caches refreshed.
//! Idempotent: the event is recorded in `processed_events` in the same transaction, and a
//! reservation that is no longer `paid` is left as it is. The worker confirms a batch of
//! events in one transaction ([`confirm_batch`]).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{SubsecRound, Utc};
use futures_util::future::join_all;
use uuid::Uuid;

use super::Deps;
use super::catalog::seat_map::{SeatChange, seats_changed};
use crate::domain::reservation::ReservationStatus;
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

/// Confirms a batch of paid reservations in **one transaction** of four statements, however
/// many events: the events recorded in `processed_events` together (a redelivered one, or one
/// twice in the batch, is `Already`), their reservations read and locked in id order (two
/// batches never wait on each other in a circle), the paid ones confirmed with their seats
/// sold, and their `reservation.confirmed` events (the tickets, for the notifications and
/// statistics groups) written. One outcome per event, in order. After the commit, the
/// waiting-room slots and the seat maps follow, all at once (one seat-map write per schedule).
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
    // The first of the batch with this id counts; a second copy is a duplicate.
    let wanted: Vec<(usize, Uuid)> = events
        .iter()
        .enumerate()
        .filter(|(_, (_, event_id))| fresh.remove(event_id))
        .map(|(i, (event, _))| (i, event.reservation_id))
        .collect();
    let mut reservation_ids: Vec<Uuid> = wanted.iter().map(|&(_, id)| id).collect();
    reservation_ids.sort_unstable();
    reservation_ids.dedup();
    let found: HashMap<Uuid, repo::ToConfirm> = if reservation_ids.is_empty() {
        HashMap::new()
    } else {
        repo::find_paid_batch(&mut tx, &reservation_ids)
            .await?
            .into_iter()
            .map(|r| (r.reservation.id, r))
            .collect()
    };
    // Each paid reservation once, in id order, with a code of its own.
    let to_confirm: Vec<&repo::ToConfirm> = reservation_ids
        .iter()
        .filter_map(|id| found.get(id))
        .filter(|r| r.reservation.status == ReservationStatus::Paid)
        .collect();
    let (paid_ids, paid_codes): (Vec<Uuid>, Vec<String>) =
        to_confirm.iter().map(|r| (r.reservation.id, ticket_code())).unzip();
    let confirmed = if paid_ids.is_empty() {
        HashSet::new()
    } else {
        repo::confirm_paid_batch(&mut tx, &paid_ids, &paid_codes).await?
    };
    let codes: HashMap<Uuid, String> = paid_ids.into_iter().zip(paid_codes).collect();
    let confirmed_at = Utc::now().trunc_subsecs(6);
    let tickets: Vec<ReservationConfirmed> = to_confirm
        .iter()
        .filter(|r| confirmed.contains(&r.reservation.id))
        .filter_map(|r| {
            let concert_id = r.concert_id?;
            let reservation = &r.reservation;
            Some(ReservationConfirmed {
                reservation_id: reservation.id,
                user_id: reservation.user_id,
                concert_id,
                schedule_id: reservation.schedule_id,
                seat_ids: reservation.seat_ids.clone(),
                amount: reservation.amount,
                ticket_code: codes[&reservation.id].clone(),
                confirmed_at,
            })
        })
        .collect();
    let told = outbox::append_many(&mut tx, &tickets).await?;
    tx.commit().await.context("commit confirmation")?;
    let mut now_confirmed = HashSet::new();
    for (i, reservation_id) in wanted {
        if !found.contains_key(&reservation_id) {
            outcomes[i] = Confirmed::Missing;
        } else if confirmed.contains(&reservation_id) && now_confirmed.insert(reservation_id) {
            outcomes[i] = Confirmed::Now(codes[&reservation_id].clone());
        }
    }
    metrics::counter!("confirmation_batches_total").increment(1);
    metrics::counter!("reservations_confirmed_total").increment(confirmed.len() as u64);
    deps.outbox.publish_now(&told).await;
    after_commit(deps, &tickets).await;
    Ok(outcomes)
}

/// What follows the sold seats, all at once: each buyer's waiting-room slot given back (paying
/// ends it: the next fan in line gets it), each schedule's seat map written once and its
/// concert's details dropped.
async fn after_commit(deps: &Deps, tickets: &[ReservationConfirmed]) {
    let releases = tickets.iter().map(|t| async move {
        if let Err(err) = super::waiting_room::release(deps, t.concert_id, t.user_id).await {
            tracing::warn!(error = %err, "could not release the buyer's queue slot; it ends with its TTL");
        }
    });
    let mut sold: HashMap<(Uuid, Uuid), Vec<Uuid>> = HashMap::new();
    for t in tickets {
        sold.entry((t.schedule_id, t.concert_id))
            .or_default()
            .extend_from_slice(&t.seat_ids);
    }
    let maps = sold.iter().map(|(&(schedule_id, concert_id), seats)| async move {
        seats_changed(deps, schedule_id, concert_id, &[SeatChange::sold(seats)]).await;
    });
    tokio::join!(join_all(releases), join_all(maps));
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
