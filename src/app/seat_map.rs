//! The seat map of a schedule (cached), and the one function every seat change calls.

use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::concerts::schedule_not_found;
use super::error::AppError;
use super::{Deps, to_json};
use crate::cache::{JsonBody, Ttl};
use crate::infra::catalog as repo;
use crate::keys::CacheEntry;

/// Seat maps change with every hold and can be megabytes: Redis only.
pub const SEATS_TTL: Ttl = Ttl {
    base: Duration::from_secs(30),
    jitter: Duration::from_secs(5),
    near: false,
};

#[derive(Debug, Serialize, Deserialize)]
pub struct Seat {
    pub id: Uuid,
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
    /// `available`, `held` or `sold`.
    pub status: String,
}

/// The body of `GET /schedules/{id}/seats`, as cached.
#[derive(Debug, Serialize, Deserialize)]
pub struct SeatMap {
    pub schedule_id: Uuid,
    pub seats: Vec<Seat>,
}

pub(crate) async fn load_seat_map(deps: &Deps, schedule_id: Uuid, status: Option<&str>) -> Result<JsonBody, AppError> {
    let mut conn = deps.db.acquire().await.context("acquire connection")?;
    repo::find_schedule(&mut conn, schedule_id)
        .await?
        .ok_or_else(schedule_not_found)?;
    let seats = repo::seats_of(&mut conn, schedule_id, status)
        .await?
        .into_iter()
        .map(|s| Seat {
            id: s.id,
            section: s.section,
            row: s.row_number,
            number: s.seat_number,
            price: s.price,
            status: s.status,
        })
        .collect();
    to_json(&SeatMap { schedule_id, seats })
}

/// `GET /schedules/{id}/seats` as a JSON body, from the cache when possible.
#[tracing::instrument(name = "seat map", skip_all, fields(schedule_id = %schedule_id))]
pub async fn seat_map(deps: &Deps, schedule_id: Uuid, status: Option<&str>) -> Result<JsonBody, AppError> {
    if let Some(s) = status
        && !["available", "held", "sold"].contains(&s)
    {
        return Err(AppError::validation(
            "invalid_field",
            "status: must be one of available, held, sold",
        ));
    }
    deps.cache
        .get_or_load("seats", &CacheEntry::seats(schedule_id, status), SEATS_TTL, || {
            load_seat_map(deps, schedule_id, status)
        })
        .await
}

/// The one function every change to a schedule's seats calls (creation, hold, confirm,
/// expiry, cancel): drops the schedule's seat maps and its concert's details from the cache.
pub async fn schedule_seats_changed(deps: &Deps, schedule_id: Uuid, concert_id: Uuid) {
    let mut entries = CacheEntry::all_seats(schedule_id).to_vec();
    entries.push(CacheEntry::concert(concert_id));
    deps.cache.invalidate("catalog", &entries).await;
}
