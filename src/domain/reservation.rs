//! A reservation's life: the states it can be in, how its state reads at a given instant, and
//! which transitions exist.
//!
//! ```text
//!            pay (not due)           payment worker
//!   held ───────────────────▶ paid ────────────────▶ confirmed
//!    │ │
//!    │ └── expires_at passes (expiry worker, or a hold that needs the seats) ──▶ expired
//!    └──── the holder cancels ──────────────────────────────────────────────────▶ cancelled
//! ```
//!
//! A held reservation past its `expires_at` *is* expired even before a worker has written so:
//! every read shows it expired ([`ReservationStatus::at`]) and no payment takes it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The `status` column of `reservations` and the `status` field of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Paid,
    Confirmed,
    Expired,
    Cancelled,
}

/// A status text the state machine does not know (the column's check constraint forbids it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reservation status {0:?}")]
pub struct UnknownStatus(pub String);

impl ReservationStatus {
    pub const ALL: [ReservationStatus; 5] = [
        ReservationStatus::Held,
        ReservationStatus::Paid,
        ReservationStatus::Confirmed,
        ReservationStatus::Expired,
        ReservationStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Paid => "paid",
            ReservationStatus::Confirmed => "confirmed",
            ReservationStatus::Expired => "expired",
            ReservationStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }

    /// The status as it reads at `now`: held past `expires_at` is expired, whether or not a
    /// worker has said so yet.
    pub fn at(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        match self {
            ReservationStatus::Held if expires_at <= now => ReservationStatus::Expired,
            other => other,
        }
    }

    /// Paid or confirmed: the seats are the buyer's, nothing can release them.
    pub fn is_paid(self) -> bool {
        matches!(self, ReservationStatus::Paid | ReservationStatus::Confirmed)
    }

    /// Whether the reservation still owns its seats (invariant I1 counts these).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            ReservationStatus::Held | ReservationStatus::Paid | ReservationStatus::Confirmed
        )
    }

    /// Whether `self → to` is a transition of the state machine.
    pub fn can_become(self, to: ReservationStatus) -> bool {
        use ReservationStatus::*;
        matches!(
            (self, to),
            (Held, Paid) | (Held, Expired) | (Held, Cancelled) | (Paid, Confirmed)
        )
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ReservationStatus::*;
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_text() {
        for status in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(status.as_str()), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!(ReservationStatus::parse("sold"), Err(UnknownStatus("sold".into())));
    }

    #[test]
    fn a_hold_past_its_time_reads_expired() {
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(1);
        assert_eq!(Held.at(later, now), Held);
        assert_eq!(Held.at(now, now), Expired, "due at the instant itself");
        assert_eq!(
            Paid.at(now - chrono::Duration::hours(1), now),
            Paid,
            "only a hold expires"
        );
    }

    #[test]
    fn only_the_drawn_transitions_exist() {
        let allowed: Vec<(ReservationStatus, ReservationStatus)> = ReservationStatus::ALL
            .into_iter()
            .flat_map(|from| ReservationStatus::ALL.map(|to| (from, to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            vec![(Held, Paid), (Held, Expired), (Held, Cancelled), (Paid, Confirmed)]
        );
        assert!(Confirmed.is_live() && Confirmed.is_paid() && !Expired.is_live());
    }
}
