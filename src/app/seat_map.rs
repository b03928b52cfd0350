//! The seat map of a schedule (`GET /schedules/{id}/seats`), built to stay cheap while a hold
//! storm changes it thousands of times a second (docs/seat-map.md):
//!
//! - the **layout** (ids, sections, rows, numbers, prices) never changes once the seats exist:
//!   each process keeps it ([`SeatMaps`]), pre-rendered as JSON up to each seat's status, for
//!   an hour; seats added to the schedule make it reload (the seat count no longer matches);
//! - the **states** live in Redis, one byte a seat ([`crate::infra::redis::seat_states`]): a read is
//!   one `GET`; every hold, cancel, expiry and sale writes its seats' bytes through after its
//!   commit ([`seats_changed`]). The string lives `IMTICKET_SEAT_STATES_TTL_SECONDS` and is
//!   then rebuilt from PostgreSQL (one aggregate query), so a lost write shows at most that
//!   long. PostgreSQL stays the truth: a seat shown free may still answer 409.
//!
//! With Redis down, reads build the states from PostgreSQL and still succeed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Deps;
use super::concerts::schedule_not_found;
use super::error::AppError;
use crate::cache::JsonBody;
use crate::infra::postgres::catalog::{self as repo, SeatRow};
use crate::infra::redis::keys::CacheEntry;
use crate::infra::redis::seat_states;

/// How long a process keeps a layout before reading it again (it only ever grows, and a
/// grown one is noticed at once by its seat count).
const LAYOUT_KEPT_FOR: Duration = Duration::from_secs(3600);

/// Layouts kept per process at most (a 50,000-seat layout is about 6 MB).
const LAYOUTS_KEPT: usize = 32;

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

/// A seat's state as one byte of the states string.
const AVAILABLE: u8 = b'a';
const HELD: u8 = b'h';
const SOLD: u8 = b's';

fn state_name(state: u8) -> Option<&'static str> {
    match state {
        AVAILABLE => Some("available"),
        HELD => Some("held"),
        SOLD => Some("sold"),
        _ => None,
    }
}

fn state_byte(name: &str) -> Option<u8> {
    match name {
        "available" => Some(AVAILABLE),
        "held" => Some(HELD),
        "sold" => Some(SOLD),
        _ => None,
    }
}

/// A schedule's seats in seat-map order (section, row, number), each pre-rendered as JSON up
/// to the value of its `status`.
pub struct Layout {
    schedule_id: Uuid,
    offsets: HashMap<Uuid, usize>,
    json: Vec<u8>,
    /// Where each seat's JSON ends in `json`.
    ends: Vec<usize>,
    loaded_at: Instant,
}

impl Layout {
    fn new(schedule_id: Uuid, rows: &[SeatRow]) -> anyhow::Result<Self> {
        let mut json = Vec::with_capacity(rows.len() * 120);
        let mut ends = Vec::with_capacity(rows.len());
        let mut offsets = HashMap::with_capacity(rows.len());
        for (i, seat) in rows.iter().enumerate() {
            json.extend_from_slice(b"{\"id\":\"");
            json.extend_from_slice(seat.id.to_string().as_bytes());
            json.extend_from_slice(b"\",\"section\":");
            serde_json::to_writer(&mut json, &seat.section).context("render section")?;
            json.extend_from_slice(
                format!(
                    ",\"row\":{},\"number\":{},\"price\":{},\"status\":\"",
                    seat.row_number, seat.seat_number, seat.price
                )
                .as_bytes(),
            );
            ends.push(json.len());
            offsets.insert(seat.id, i);
        }
        Ok(Self {
            schedule_id,
            offsets,
            json,
            ends,
            loaded_at: Instant::now(),
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The body of the seat map with `states` (one byte a seat), only seats in `only` if given.
    /// `states` must have one valid byte per seat ([`valid_states`]).
    fn render(&self, states: &[u8], only: Option<u8>) -> JsonBody {
        let mut out = Vec::with_capacity(self.json.len() + states.len() * 12 + 80);
        out.extend_from_slice(b"{\"schedule_id\":\"");
        out.extend_from_slice(self.schedule_id.to_string().as_bytes());
        out.extend_from_slice(b"\",\"seats\":[");
        let mut start = 0;
        let mut first = true;
        for (&end, &state) in self.ends.iter().zip(states) {
            if only.is_none_or(|o| o == state) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&self.json[start..end]);
                out.extend_from_slice(state_name(state).unwrap_or("available").as_bytes());
                out.extend_from_slice(b"\"}");
            }
            start = end;
        }
        out.extend_from_slice(b"]}");
        out.into()
    }
}

/// Whether `states` fits `layout`: one known byte per seat.
fn valid_states(layout: &Layout, states: &[u8]) -> bool {
    states.len() == layout.len() && states.iter().all(|&b| state_name(b).is_some())
}

/// Each process's layouts, and how often it went to PostgreSQL for a seat map (the tests and
/// the benchmark read these; `seat_map_loads_total{part}` counts the same).
#[derive(Default)]
pub struct SeatMaps {
    layouts: Mutex<HashMap<Uuid, Arc<Layout>>>,
    /// One load at a time per schedule (single flight): concurrent misses wait for it.
    flights: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    layout_loads: AtomicU64,
    states_loads: AtomicU64,
}

impl SeatMaps {
    /// (layout loads, states loads) from PostgreSQL by this process so far.
    pub fn loads(&self) -> (u64, u64) {
        (
            self.layout_loads.load(Ordering::Relaxed),
            self.states_loads.load(Ordering::Relaxed),
        )
    }

    fn kept(&self, schedule_id: Uuid) -> Option<Arc<Layout>> {
        let layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        layouts
            .get(&schedule_id)
            .filter(|l| l.loaded_at.elapsed() < LAYOUT_KEPT_FOR)
            .cloned()
    }

    fn keep(&self, layout: Arc<Layout>) {
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        if layouts.len() >= LAYOUTS_KEPT && !layouts.contains_key(&layout.schedule_id) {
            let oldest = layouts.values().min_by_key(|l| l.loaded_at).map(|l| l.schedule_id);
            if let Some(oldest) = oldest {
                layouts.remove(&oldest);
            }
        }
        layouts.insert(layout.schedule_id, layout);
    }

    fn forget(&self, schedule_id: Uuid) {
        self.layouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&schedule_id);
    }

    fn flight(&self, schedule_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.len() > 10 * LAYOUTS_KEPT {
            flights.retain(|_, f| Arc::strong_count(f) > 1);
        }
        flights.entry(schedule_id).or_default().clone()
    }

    /// Layout and states together from PostgreSQL (one query, one snapshot); 404 if there is
    /// no such schedule.
    async fn load(&self, deps: &Deps, schedule_id: Uuid) -> Result<(Arc<Layout>, Vec<u8>), AppError> {
        let mut conn = deps.db.acquire().await.context("acquire connection")?;
        repo::find_schedule(&mut conn, schedule_id)
            .await?
            .ok_or_else(schedule_not_found)?;
        let rows = repo::seats_of(&mut conn, schedule_id).await?;
        drop(conn);
        self.layout_loads.fetch_add(1, Ordering::Relaxed);
        self.states_loads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("seat_map_loads_total", "part" => "layout").increment(1);
        metrics::counter!("seat_map_loads_total", "part" => "states").increment(1);
        let states = rows
            .iter()
            .map(|r| state_byte(&r.status).context("unknown seat status"))
            .collect::<anyhow::Result<Vec<u8>>>()?;
        let layout = Arc::new(Layout::new(schedule_id, &rows)?);
        self.keep(layout.clone());
        Ok((layout, states))
    }

    /// The states from PostgreSQL (one aggregate query), or layout and states again if the
    /// schedule's seats changed since `layout` was read.
    async fn load_states(&self, deps: &Deps, layout: Arc<Layout>) -> Result<(Arc<Layout>, Vec<u8>), AppError> {
        let schedule_id = layout.schedule_id;
        let states = {
            let mut conn = deps.db.acquire().await.context("acquire connection")?;
            repo::seat_states(&mut conn, schedule_id).await?.into_bytes()
        };
        self.states_loads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("seat_map_loads_total", "part" => "states").increment(1);
        if valid_states(&layout, &states) {
            Ok((layout, states))
        } else {
            self.load(deps, schedule_id).await
        }
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
    let maps = &deps.seat_maps;
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
        (Some(layout), _) => maps.load_states(deps, layout).await?,
        (None, Some(states)) => {
            let (layout, fresh) = maps.load(deps, schedule_id).await?;
            if valid_states(&layout, &states) {
                // Written through since it was built: as fresh as PostgreSQL's, and shared.
                return Ok((layout, states));
            }
            (layout, fresh)
        }
        (None, None) => maps.load(deps, schedule_id).await?,
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
    deps.cache
        .invalidate("catalog", &[CacheEntry::concert(concert_id)])
        .await;
    if let Err(err) = write_through(deps, schedule_id, changes).await {
        cache_error("write", &err);
    }
}

async fn write_through(deps: &Deps, schedule_id: Uuid, changes: &[SeatChange<'_>]) -> anyhow::Result<()> {
    let layout = match deps.seat_maps.kept(schedule_id) {
        Some(layout) => layout,
        // No layout here: worth reading one only if someone reads the map (states built).
        None if seat_states::length(&deps.redis, &deps.keys, schedule_id).await? > 0 => {
            let flight = deps.seat_maps.flight(schedule_id);
            let _turn = flight.lock().await;
            match deps.seat_maps.kept(schedule_id) {
                Some(layout) => layout,
                None => {
                    deps.seat_maps
                        .load(deps, schedule_id)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .0
                }
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
    deps.seat_maps.forget(schedule_id);
    if let Err(err) = seat_states::forget(&deps.redis, &deps.keys, schedule_id).await {
        cache_error("forget", &err);
    }
    deps.cache
        .invalidate("catalog", &[CacheEntry::concert(concert_id)])
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(section: &str, row: i32, number: i32, status: &str) -> SeatRow {
        SeatRow {
            id: Uuid::now_v7(),
            section: section.into(),
            row_number: row,
            seat_number: number,
            price: 100 * i64::from(number),
            status: status.into(),
        }
    }

    #[test]
    fn a_rendered_map_is_the_serialized_one() {
        let schedule = Uuid::now_v7();
        let rows = vec![
            row("A \"front\"", 1, 1, "available"),
            row("A \"front\"", 1, 2, "held"),
            row("Ü", 2, 1, "sold"),
        ];
        let layout = Layout::new(schedule, &rows).unwrap();
        let states: Vec<u8> = rows.iter().map(|r| state_byte(&r.status).unwrap()).collect();
        let expected = |keep: &dyn Fn(&SeatRow) -> bool| {
            serde_json::to_vec(&SeatMap {
                schedule_id: schedule,
                seats: rows
                    .iter()
                    .filter(|r| keep(r))
                    .map(|r| Seat {
                        id: r.id,
                        section: r.section.clone(),
                        row: r.row_number,
                        number: r.seat_number,
                        price: r.price,
                        status: r.status.clone(),
                    })
                    .collect(),
            })
            .unwrap()
        };
        assert_eq!(&*layout.render(&states, None), &expected(&|_| true)[..]);
        assert_eq!(
            &*layout.render(&states, Some(HELD)),
            &expected(&|r| r.status == "held")[..]
        );
        assert_eq!(
            &*layout.render(&states, Some(SOLD)),
            &expected(&|r| r.status == "sold")[..]
        );
        assert_eq!(
            &*Layout::new(schedule, &[]).unwrap().render(&[], None),
            format!("{{\"schedule_id\":\"{schedule}\",\"seats\":[]}}").as_bytes()
        );
    }

    #[test]
    fn states_must_fit_the_layout() {
        let layout = Layout::new(Uuid::now_v7(), &[row("A", 1, 1, "available"), row("A", 1, 2, "held")]).unwrap();
        assert!(valid_states(&layout, b"ah"));
        assert!(!valid_states(&layout, b"a"));
        assert!(!valid_states(&layout, b"ahs"));
        assert!(!valid_states(&layout, b"a\0"));
    }
}
