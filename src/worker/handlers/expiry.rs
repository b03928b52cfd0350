//! The `expiry` role's handler: releases the hold a `hold.expired` event names, if it is still
//! held and due. `reservation.expired` (the fact written when a hold was released) shares the
//! stream and is acked without work.

use crate::app::Deps;
use crate::app::expiry::{Expired, expire};
use crate::events::{Envelope, Event, HoldExpired, ReservationExpired, Stream, decode};
use crate::stream::{Handler, Outcome};

pub struct ExpiryHandler {
    deps: Deps,
}

impl ExpiryHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    async fn handle_one(&self, envelope: &Envelope) -> Outcome {
        if envelope.event_type == ReservationExpired::TYPE {
            return Outcome::Ack;
        }
        let event: HoldExpired = match decode(envelope) {
            Ok(event) => event,
            Err(err) => return Outcome::DeadLetter(err.to_string()),
        };
        match expire(
            &self.deps,
            event.reservation_id,
            Stream::Expiry.group(),
            envelope.event_id,
        )
        .await
        {
            Ok(Expired::Released(_) | Expired::Nothing) => Outcome::Ack,
            Ok(Expired::Missing) => Outcome::DeadLetter(format!("no reservation {}", event.reservation_id)),
            Err(err) => Outcome::failed(&err),
        }
    }
}

impl Handler for ExpiryHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for envelope in batch {
            outcomes.push(self.handle_one(envelope).await);
        }
        outcomes
    }
}
