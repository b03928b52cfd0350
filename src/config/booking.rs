//! Holds: how long they last and how many seats a fan may take.

use std::time::Duration;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct BookingSettings {
    /// `IMTICKET_HOLD_TTL_SECONDS`: a hold's lifetime.
    pub hold_ttl: Duration,
    /// `IMTICKET_MAX_SEATS_PER_RESERVATION`: seats per hold.
    pub max_seats_per_reservation: u16,
    /// `IMTICKET_MAX_SEATS_PER_USER`: seats one user may hold or own at once for one schedule,
    /// over all of their reservations.
    pub max_seats_per_user: u16,
}

impl BookingSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            hold_ttl: env.seconds("IMTICKET_HOLD_TTL_SECONDS", 300, 1..=86_400)?,
            max_seats_per_reservation: env.number("IMTICKET_MAX_SEATS_PER_RESERVATION", 4, 1..=100)?,
            max_seats_per_user: env.number("IMTICKET_MAX_SEATS_PER_USER", 4, 1..=1000)?,
        })
    }
}
