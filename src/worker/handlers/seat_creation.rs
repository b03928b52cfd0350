//! The `seat-creation` role's handler: runs the job a `seat_creation.requested` event names.

use crate::app::Deps;
use crate::app::catalog::seat_creation::{JobEnd, execute_seat_job};
use crate::events::{Envelope, SeatCreationRequested, Stream, decode};
use crate::stream::{Handler, Outcome};

/// A job that cannot be done (schedule gone, unreadable request) ends `failed` with a readable
/// error and the event is acked; an event naming no job, or not a seat-creation request, is
/// dead-lettered; a database outage is retried.
pub struct SeatCreationHandler {
    deps: Deps,
}

impl SeatCreationHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    async fn handle_one(&self, envelope: &Envelope) -> Outcome {
        let event: SeatCreationRequested = match decode(envelope) {
            Ok(event) => event,
            Err(err) => return Outcome::DeadLetter(err.to_string()),
        };
        let processed = Some((Stream::SeatCreation.group(), envelope.event_id));
        match execute_seat_job(&self.deps, event.job_id, processed).await {
            Ok(JobEnd::Done | JobEnd::Failed) => Outcome::Ack,
            Ok(JobEnd::Missing) => Outcome::DeadLetter(format!("no job {}", event.job_id)),
            Err(err) => Outcome::failed(&err),
        }
    }
}

impl Handler for SeatCreationHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for envelope in batch {
            outcomes.push(self.handle_one(envelope).await);
        }
        outcomes
    }
}
