//! The seat map of a schedule (`GET /schedules/{id}/seats`), built to stay cheap while a hold
//! storm changes it thousands of times a second (docs/seat-map.md):
//!
//! - the **layout** (ids, sections, rows, numbers, prices) never changes once the seats exist:
//!   each process keeps it ([`crate::app::kept::SeatLayouts`]), pre-rendered as JSON up to each seat's status, for
//!   an hour; seats added to the schedule make it reload (the seat count no longer matches);
//! - the **states** live in Redis, one byte a seat ([`crate::infra::redis::seat_states`]): a read is
//!   one `GET`; every hold, cancel, expiry and sale writes its seats' bytes through after its
//!   commit ([`seats_changed`]). The string lives `IMTICKET_SEAT_STATES_TTL_SECONDS` and is
//!   then rebuilt from PostgreSQL (one aggregate query), so a lost write shows at most that
//!   long. PostgreSQL stays the truth: a seat shown free may still answer 409.
//!
//! With Redis down, reads build the states from PostgreSQL and still succeed.

use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::Deps;
use crate::app::error::AppError;
use crate::app::kept::Layout;
use crate::app::kept::seat_layouts::{AVAILABLE, HELD, SOLD, state_byte, valid_states};
use crate::cache::JsonBody;
use crate::infra::postgres::catalog as repo;
use crate::infra::redis::keys::CacheEntry;
use crate::infra::redis::seat_states;

/// A seat as `GET /schedules/{id}/seats` shows it (the OpenAPI document's shape; the body is
/// rendered by [`Layout::render`] with the same fields in the same order).
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

/// The body of `GET /schedules/{id}/seats`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SeatMap {
    pub schedule_id: Uuid,
    pub seats: Vec<Seat>,
}

/// Layout and states together from PostgreSQL (one query, one snapshot); 404 if there is no
/// such schedule.
async fn load(deps: &Deps, schedule_id: Uuid) -> Result<(Arc<Layout>, Vec<u8>), AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    repo::find_schedule(&mut conn, schedule_id)
        .await?
        .ok_or_else(AppError::schedule_not_found)?;
    let rows = repo::seats_of(&mut conn, schedule_id).await?;
    drop(conn);
    deps.seat_layouts.counted_layout_load();
    let states = rows
        .iter()
        .map(|r| state_byte(&r.status).context("unknown seat status"))
        .collect::<anyhow::Result<Vec<u8>>>()?;
    let layout = Arc::new(Layout::new(schedule_id, &rows)?);
    deps.seat_layouts.keep(layout.clone());
    Ok((layout, states))
}

/// The states from PostgreSQL (one aggregate query), or layout and states again if the
/// schedule's seats changed since `layout` was read.
async fn load_states(deps: &Deps, layout: Arc<Layout>) -> Result<(Arc<Layout>, Vec<u8>), AppError> {
    let schedule_id = layout.schedule_id;
    let states = {
        let mut conn = deps.db.read().await.context("acquire connection")?;
        repo::seat_states(&mut conn, schedule_id).await?.into_bytes()
    };
    deps.seat_layouts.counted_states_load();
    if valid_states(&layout, &states) {
        Ok((layout, states))
    } else {
        load(deps, schedule_id).await
    }
}

/// `GET /schedules/{id}/seats` as a JSON body: the kept layout and the states from Redis;
/// PostgreSQL only when the states are missing (expired, first read) or Redis is down.
#[tracing::instrument(name = "seat map", skip_all, fields(schedule_id = %schedule_id))]
pub async fn seat_map(deps: &Deps, schedule_id: Uuid, status: Option<&str>) -> Result<JsonBody, AppError> {
    let only = match status {
        None => None,
        Some(s) => Some(
            state_byte(s)
                .ok_or_else(|| AppError::validation("invalid_field", "status: must be one of available, held, sold"))?,
        ),
    };
    let (layout, states) = layout_and_states(deps, schedule_id).await?;
    Ok(layout.render(&states, only))
}

/// Loads (or finds) the schedule's layout and current states; used by reads and by the
/// API's warm-up.
pub(crate) async fn layout_and_states(deps: &Deps, schedule_id: Uuid) -> Result<(Arc<Layout>, Vec<u8>), AppError> {
    let maps = &deps.seat_layouts;
    let redis_up = match read_states(deps, schedule_id).await {
        Ok(Some(states)) => {
            if let Some(layout) = maps.kept(schedule_id)
                && valid_states(&layout, &states)
            {
                return Ok((layout, states));
            }
            true
        }
        Ok(None) => true,
        Err(()) => false,
    };
    // A miss: one load per process and schedule at a time; the others wait and find its result.
    let flight = maps.flight(schedule_id);
    let _turn = flight.lock().await;
    let in_redis = if redis_up {
        read_states(deps, schedule_id).await.ok().flatten()
    } else {
        None
    };
    let (layout, states) = match (maps.kept(schedule_id), in_redis) {
        (Some(layout), Some(states)) if valid_states(&layout, &states) => return Ok((layout, states)),
        (Some(layout), _) => load_states(deps, layout).await?,
        (None, Some(states)) => {
            let (layout, fresh) = load(deps, schedule_id).await?;
            if valid_states(&layout, &states) {
                // Written through since it was built: as fresh as PostgreSQL's, and shared.
                return Ok((layout, states));
            }
            (layout, fresh)
        }
        (None, None) => load(deps, schedule_id).await?,
    };
    if redis_up
        && let Err(err) = seat_states::put(
            &deps.redis,
            &deps.keys,
            schedule_id,
            &states,
            deps.config.cache.seat_states_ttl,
        )
        .await
    {
        cache_error("put", &err);
    }
    Ok((layout, states))
}

/// The states in Redis; `Err(())` if Redis failed (logged and counted).
async fn read_states(deps: &Deps, schedule_id: Uuid) -> Result<Option<Vec<u8>>, ()> {
    seat_states::get(&deps.redis, &deps.keys, schedule_id)
        .await
        .map_err(|err| cache_error("get", &err))
}

fn cache_error(op: &'static str, err: &anyhow::Error) {
    tracing::warn!(cache = "seat-states", op, error = %format!("{err:#}"), "seat states unavailable");
    metrics::counter!("cache_errors_total", "cache" => "seat-states", "op" => op).increment(1);
}

/// Seats whose state a committed transaction changed.
pub struct SeatChange<'a> {
    state: u8,
    seats: &'a [Uuid],
}

impl<'a> SeatChange<'a> {
    pub fn held(seats: &'a [Uuid]) -> Self {
        Self { state: HELD, seats }
    }
    pub fn available(seats: &'a [Uuid]) -> Self {
        Self {
            state: AVAILABLE,
            seats,
        }
    }
    pub fn sold(seats: &'a [Uuid]) -> Self {
        Self { state: SOLD, seats }
    }
}

/// What every change to a schedule's seats calls after its commit (hold, cancel, expiry,
/// sale): writes the seats' new states through to the seat map's states, if built, and drops
/// the concert's details (their available counts changed). `changes` apply in order: for a
/// seat named twice the later one wins. Errors are logged: the states are rebuilt from
/// PostgreSQL within their TTL.
pub async fn seats_changed(deps: &Deps, schedule_id: Uuid, concert_id: Uuid, changes: &[SeatChange<'_>]) {
    // Two keys of their own: both at once.
    let states = async {
        if let Err(err) = write_through(deps, schedule_id, changes).await {
            cache_error("write", &err);
        }
    };
    let entry = [CacheEntry::concert(concert_id)];
    tokio::join!(deps.cache.invalidate("catalog", &entry), states);
}

async fn write_through(deps: &Deps, schedule_id: Uuid, changes: &[SeatChange<'_>]) -> anyhow::Result<()> {
    let layout = match deps.seat_layouts.kept(schedule_id) {
        Some(layout) => layout,
        // No layout here: worth reading one only if someone reads the map (states built).
        None if seat_states::length(&deps.redis, &deps.keys, schedule_id).await? > 0 => {
            let flight = deps.seat_layouts.flight(schedule_id);
            let _turn = flight.lock().await;
            match deps.seat_layouts.kept(schedule_id) {
                Some(layout) => layout,
                None => load(deps, schedule_id).await.map_err(|e| anyhow::anyhow!("{e}"))?.0,
            }
        }
        None => return Ok(()),
    };
    let bytes: Vec<(usize, u8)> = changes
        .iter()
        .flat_map(|c| {
            c.seats
                .iter()
                .filter_map(|s| layout.offsets.get(s).map(|&o| (o, c.state)))
        })
        .collect();
    seat_states::write(&deps.redis, &deps.keys, schedule_id, layout.len(), &bytes).await?;
    Ok(())
}

/// Seats were added to a schedule: its layout changed. Drops this process's layout and the
/// states (other processes notice by the seat count) and the concert's details.
pub async fn seats_created(deps: &Deps, schedule_id: Uuid, concert_id: Uuid) {
    deps.seat_layouts.forget(schedule_id);
    if let Err(err) = seat_states::forget(&deps.redis, &deps.keys, schedule_id).await {
        cache_error("forget", &err);
    }
    deps.cache
        .invalidate("catalog", &[CacheEntry::concert(concert_id)])
        .await;
}
