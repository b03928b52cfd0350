//! The `payment` role's handler: confirms the reservation a `payment.completed` event names.

use crate::app::Deps;
use crate::app::confirmation::{Confirmed, confirm};
use crate::events::{Envelope, PaymentCompleted, Stream, decode};
use crate::stream::{Handler, Outcome};

pub struct PaymentHandler {
    deps: Deps,
}

impl PaymentHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    async fn handle_one(&self, envelope: &Envelope) -> Outcome {
        let event: PaymentCompleted = match decode(envelope) {
            Ok(event) => event,
            Err(err) => return Outcome::DeadLetter(err.to_string()),
        };
        match confirm(&self.deps, &event, Stream::Payments.group(), envelope.event_id).await {
            Ok(Confirmed::Now(_) | Confirmed::Already) => Outcome::Ack,
            Ok(Confirmed::Missing) => Outcome::DeadLetter(format!("no reservation {}", event.reservation_id)),
            Err(err) => Outcome::failed(&err),
        }
    }
}

impl Handler for PaymentHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for envelope in batch {
            outcomes.push(self.handle_one(envelope).await);
        }
        outcomes
    }
}
