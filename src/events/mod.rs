//! The events ImTicket's parts tell each other: the streams they travel on and their typed
//! payloads, encoded and decoded here and nowhere else.
//!
//! A use case builds a payload (e.g. [`SeatCreationRequested`]) and hands it to
//! [`crate::infra::postgres::outbox::append`] inside its transaction; a worker's handler gets it back
//! with [`decode`]. Neither side touches the wire format ([`Envelope`]) or the stream runtime.
//!
//! | stream (key after the prefix) | consumer group | event types |
//! |---|---|---|
//! | `stream:seat-creation` | `seat-creation` | `seat_creation.requested` v1 |
//! | `stream:payments` | `payment`, `settlement` | `payment.completed` v1 |
//! | `stream:expiry` | `expiry`, `statistics`, `notifications` | `hold.expired` v1 (work: release this hold if due), `reservation.expired` v1 (fact: it was released; the `expiry` worker acks it, other subscribers add their own group) |
//! | `stream:reservations` | `statistics`, `notifications` | `reservation.created` v1 (a hold was placed), `reservation.confirmed` v1 (paid and confirmed: the ticket) |
//! | `stream:queue` | `statistics`, `notifications` | `queue.joined` v1 (a new entry in a line), `queue.admitted` v1 (its turn came) |
//! | `stream:dead-letter` | (none: read by operators with `imticket-admin dlq`) | any |
//!
//! Every group of a stream reads every event of it ([`groups`]); a group acks the types it
//! does not use. Names are documented in the README; never change them silently.

mod envelope;
pub mod groups;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use envelope::{Envelope, Unparsable};

/// The event families, one stream each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    SeatCreation,
    Payments,
    Expiry,
    Reservations,
    Queue,
}

impl Stream {
    pub const ALL: [Stream; 5] = [
        Stream::SeatCreation,
        Stream::Payments,
        Stream::Expiry,
        Stream::Reservations,
        Stream::Queue,
    ];

    /// The logical name, stored in outbox rows and used in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Stream::SeatCreation => "seat-creation",
            Stream::Payments => "payments",
            Stream::Expiry => "expiry",
            Stream::Reservations => "reservations",
            Stream::Queue => "queue",
        }
    }

    /// The stream's first declared group ([`groups::GROUPS`]): the worker role that does its
    /// work (`payment`, `expiry`, `seat-creation`), or `statistics` for the streams of facts.
    pub fn group(self) -> &'static str {
        match self {
            Stream::SeatCreation => "seat-creation",
            Stream::Payments => "payment",
            Stream::Expiry => "expiry",
            Stream::Reservations | Stream::Queue => "statistics",
        }
    }

    /// Whether `IMTICKET_STREAM_PARTITIONS` splits it: the streams every sale writes to. Seat
    /// creation (an admin's job now and then) stays one stream.
    pub fn is_partitioned(self) -> bool {
        matches!(self, Stream::Payments | Stream::Expiry | Stream::Reservations)
    }

    pub fn from_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed event: its payload type knows its stream, its `type` name and its schema version.
pub trait Event: Serialize + DeserializeOwned {
    const STREAM: Stream;
    const TYPE: &'static str;
    const VERSION: u32;
}

/// An admin asked for seats; the job row holds the layout, the event only names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SeatCreationRequested {
    pub job_id: Uuid,
}

impl Event for SeatCreationRequested {
    const STREAM: Stream = Stream::SeatCreation;
    const TYPE: &'static str = "seat_creation.requested";
    const VERSION: u32 = 1;
}

/// A reservation was paid: the payment worker confirms it (ticket code, seats sold, the
/// buyer's queue slot released).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PaymentCompleted {
    pub payment_id: Uuid,
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub amount: i64,
}

impl Event for PaymentCompleted {
    const STREAM: Stream = Stream::Payments;
    const TYPE: &'static str = "payment.completed";
    const VERSION: u32 = 1;
}

/// A hold reached its `expires_at`: the `expiry` worker releases it if it is still held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HoldExpired {
    pub reservation_id: Uuid,
}

impl Event for HoldExpired {
    const STREAM: Stream = Stream::Expiry;
    const TYPE: &'static str = "hold.expired";
    const VERSION: u32 = 1;
}

/// A held reservation ended unpaid at its `expires_at`: its seats are available again. A fact
/// for subscribers (notifications, analytics), written in the transaction that released it,
/// by the `expiry` worker or by a hold that found the seat's old hold due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReservationExpired {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub schedule_id: Uuid,
    pub seat_ids: Vec<Uuid>,
}

impl Event for ReservationExpired {
    const STREAM: Stream = Stream::Expiry;
    const TYPE: &'static str = "reservation.expired";
    const VERSION: u32 = 1;
}

/// A hold was placed: `seat_ids` are held for `user_id` until `expires_at`. Written in the
/// hold's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReservationCreated {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub concert_id: Uuid,
    pub schedule_id: Uuid,
    pub seat_ids: Vec<Uuid>,
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
}

impl Event for ReservationCreated {
    const STREAM: Stream = Stream::Reservations;
    const TYPE: &'static str = "reservation.created";
    const VERSION: u32 = 1;
}

/// A paid reservation was confirmed: the ticket. Written by the payment worker's confirmation,
/// in its transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReservationConfirmed {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub concert_id: Uuid,
    pub schedule_id: Uuid,
    pub seat_ids: Vec<Uuid>,
    pub amount: i64,
    pub ticket_code: String,
    pub confirmed_at: DateTime<Utc>,
}

impl Event for ReservationConfirmed {
    const STREAM: Stream = Stream::Reservations;
    const TYPE: &'static str = "reservation.confirmed";
    const VERSION: u32 = 1;
}

/// A fan joined a concert's line (a new entry; joining again is not an event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct QueueJoined {
    pub concert_id: Uuid,
    pub user_id: Uuid,
    pub entry_id: Uuid,
}

impl Event for QueueJoined {
    const STREAM: Stream = Stream::Queue;
    const TYPE: &'static str = "queue.joined";
    const VERSION: u32 = 1;
}

/// A fan's turn came: the entry is active (may hold seats) until `active_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct QueueAdmitted {
    pub concert_id: Uuid,
    pub user_id: Uuid,
    pub entry_id: Uuid,
    pub active_until: DateTime<Utc>,
}

impl Event for QueueAdmitted {
    const STREAM: Stream = Stream::Queue;
    const TYPE: &'static str = "queue.admitted";
    const VERSION: u32 = 1;
}

/// A fresh envelope (new event id, now) carrying `event`, and the current span's trace
/// context (W3C `traceparent`) when traces are exported, so its handler's span joins the trace.
pub fn encode<E: Event>(event: &E) -> anyhow::Result<Envelope> {
    let payload = serde_json::to_value(event).map_err(|e| anyhow::anyhow!("encode {} payload: {e}", E::TYPE))?;
    let mut envelope = Envelope::new(E::TYPE, payload);
    envelope.version = E::VERSION;
    envelope.trace_id = crate::telemetry::trace_context::current_traceparent();
    Ok(envelope)
}

/// Why an envelope is not the event a handler expects. Always permanent: redelivery cannot
/// fix it, so handlers dead-letter it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected event type {found:?} (expected {expected:?})")]
    WrongType { expected: &'static str, found: String },
    #[error("{event_type} version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        event_type: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("{event_type} payload is invalid: {reason}")]
    InvalidPayload { event_type: &'static str, reason: String },
}

/// The event an envelope carries, if it is an `E` of a version this build reads.
pub fn decode<E: Event>(envelope: &Envelope) -> Result<E, DecodeError> {
    if envelope.event_type != E::TYPE {
        return Err(DecodeError::WrongType {
            expected: E::TYPE,
            found: envelope.event_type.clone(),
        });
    }
    if envelope.version != E::VERSION {
        return Err(DecodeError::UnsupportedVersion {
            event_type: E::TYPE,
            found: envelope.version,
            supported: E::VERSION,
        });
    }
    E::deserialize(&envelope.payload).map_err(|e| DecodeError::InvalidPayload {
        event_type: E::TYPE,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip() {
        for stream in Stream::ALL {
            assert_eq!(Stream::from_name(stream.name()), Some(stream));
        }
        assert_eq!(Stream::Payments.group(), "payment");
    }

    #[test]
    fn events_round_trip_and_mismatches_are_named() {
        let event = SeatCreationRequested { job_id: Uuid::now_v7() };
        let envelope = encode(&event).unwrap();
        assert_eq!(envelope.event_type, "seat_creation.requested");
        assert_eq!(envelope.payload, serde_json::json!({ "job_id": event.job_id }));
        assert_eq!(decode::<SeatCreationRequested>(&envelope).unwrap(), event);

        let other = Envelope::new("payment.completed", serde_json::json!({}));
        assert!(matches!(
            decode::<SeatCreationRequested>(&other),
            Err(DecodeError::WrongType { .. })
        ));
        let mut newer = envelope.clone();
        newer.version = 2;
        assert!(
            decode::<SeatCreationRequested>(&newer)
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
        let bad = Envelope::new("seat_creation.requested", serde_json::json!({ "job_id": "nope" }));
        assert!(
            decode::<SeatCreationRequested>(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("seat_creation.requested payload is invalid")
        );
    }
}
