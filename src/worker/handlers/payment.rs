//! The `payment` role's handler: confirms the reservation a `payment.completed` event names.

use crate::app::Deps;
use crate::app::confirmation::{Confirmed, confirm_batch};
use crate::events::{Envelope, PaymentCompleted, Stream, decode};
use crate::stream::{Handler, Outcome};

pub struct PaymentHandler {
    deps: Deps,
}

impl PaymentHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

impl Handler for PaymentHandler {
    /// Decodes the batch, confirms every decodable event in one transaction
    /// ([`confirm_batch`]); an undecodable one is dead-lettered, a missing reservation too.
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let mut at = Vec::new();
        for (i, envelope) in batch.iter().enumerate() {
            match decode::<PaymentCompleted>(envelope) {
                Ok(event) => {
                    events.push((event, envelope.event_id));
                    at.push(i);
                    outcomes.push(None);
                }
                Err(err) => outcomes.push(Some(Outcome::DeadLetter(err.to_string()))),
            }
        }
        match confirm_batch(&self.deps, &events, Stream::Payments.group()).await {
            Ok(confirmed) => {
                for ((i, done), (event, _)) in at.iter().zip(confirmed).zip(&events) {
                    outcomes[*i] = Some(match done {
                        Confirmed::Now(_) | Confirmed::Already => Outcome::Ack,
                        Confirmed::Missing => Outcome::DeadLetter(format!("no reservation {}", event.reservation_id)),
                    });
                }
            }
            Err(err) => {
                let failed = Outcome::failed(&err);
                for i in at {
                    outcomes[i] = Some(failed.clone());
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Retry("no outcome".into())))
            .collect()
    }
}
