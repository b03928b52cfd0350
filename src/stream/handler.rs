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
    /// A dependency (PostgreSQL, Redis) could not be reached: the event was not even tried.
    /// It stays pending, this delivery does not count towards `max_deliveries` (an outage of
    /// any length dead-letters nothing), and the consumer backs off.
    Unavailable(String),
}

impl Outcome {
    /// The outcome of a handler's error: [`Outcome::Unavailable`] when it says a dependency
    /// could not be reached, [`Outcome::Retry`] otherwise.
    pub fn failed(err: &anyhow::Error) -> Self {
        if crate::infra::postgres::error::database_unavailable(err) || crate::infra::redis::unreachable(err) {
            Self::Unavailable(format!("{err:#}"))
        } else {
            Self::Retry(format!("{err:#}"))
        }
    }
}

/// The work done for one stream. Implementations must commit their effect (and the
/// processed-events record) before answering [`Outcome::Ack`].
pub trait Handler: Send + Sync + 'static {
    /// Handles a batch and answers one outcome per envelope, in order. A batch lets a handler
    /// use one transaction for many events; it may also handle them one by one.
    fn handle(&self, batch: &[Envelope]) -> impl Future<Output = Vec<Outcome>> + Send;

    /// Whether the consumer must hand it each batch whole, in one call, instead of splitting
    /// it into `IMTICKET_STREAM_CONCURRENCY` concurrent calls. For a handler whose events of a
    /// batch mostly write the same rows (a counter per schedule): concurrent calls would only
    /// wait for each other's row locks.
    fn whole_batches(&self) -> bool {
        false
    }
}
