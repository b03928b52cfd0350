//! What a consumer asks of the code that handles a stream's events.

use std::future::Future;

use crate::events::Envelope;

/// What a handler says about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or a duplicate that was done before): acknowledge.
    Ack,
    /// Transient failure (database or Redis down): leave pending; it is redelivered after the
    /// back-off, and dead-lettered once it has been delivered `max_deliveries` times.
    Retry(String),
    /// Permanent failure (payload the handler cannot use, unknown type): dead-letter now.
    DeadLetter(String),
}

/// The work done for one stream. Implementations must commit their effect (and the
/// processed-events record) before answering [`Outcome::Ack`].
pub trait Handler: Send + Sync + 'static {
    /// Handles a batch and answers one outcome per envelope, in order. A batch lets a handler
    /// use one transaction for many events; it may also handle them one by one.
    fn handle(&self, batch: &[Envelope]) -> impl Future<Output = Vec<Outcome>> + Send;
}
