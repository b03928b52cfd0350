//! Concerts, schedules, seat maps and bulk seat creation.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Deps;
use super::cache::{JsonBody, Ttl};
use super::error::{AppError, OnConstraint, violated_constraint};
use crate::domain::catalog::{ConcertTitle, Description, PageRequest, SeatLayout, StartsAt};
use crate::infra::catalog::{self as repo, JobRow};
use crate::infra::processed_events;
use crate::stream::{Envelope, Stream, relay};

/// Seats inserted per transaction: large enough for UNNEST to pay off, small enough that
/// progress moves and a crash loses little work.
const CHUNK: u64 = 5_000;
pub const SEAT_CREATION_REQUESTED: &str = "seat_creation.requested";
pub const CONCERT_TTL: Ttl = Ttl {
    base: Duration::from_secs(300),
    jitter: Duration::from_secs(30),
    near: true,
};
/// Seat maps change with every hold and can be megabytes: Redis only.
const SEATS_TTL: Ttl = Ttl {
    base: Duration::from_secs(30),
    jitter: Duration::from_secs(5),
    near: false,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Concert {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertPage {
    pub items: Vec<Concert>,
    pub page: u32,
    pub size: u32,
    pub total: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleSummary {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub total_seats: i32,
    pub available_seats: i32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConcertDetails {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub schedules: Vec<ScheduleSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    pub id: Uuid,
    pub concert_id: Uuid,
    pub starts_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Seat {
    pub id: Uuid,
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
    /// `available`, `held` or `sold`.
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeatMap {
    pub schedule_id: Uuid,
    pub seats: Vec<Seat>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    pub id: Uuid,
    /// `seat_creation`.
    pub kind: String,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    pub total: i32,
    pub done: i32,
    pub error: Option<String>,
}

impl From<JobRow> for Job {
    fn from(row: JobRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            status: row.status,
            total: row.total,
            done: row.done,
            error: row.error,
        }
    }
}

/// How a seat-creation job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobMode {
    /// Through the seat-creation stream and its worker: survives crashes (the default).
    Stream,
    /// `tokio::spawn` inside the API process: the comparison mode that a crash interrupts.
    Inline,
}

impl JobMode {
    fn as_str(self) -> &'static str {
        match self {
            JobMode::Stream => "stream",
            JobMode::Inline => "inline",
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<JsonBody, AppError> {
    serde_json::to_vec(value)
        .map(Into::into)
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("serialize")))
}

fn concert_key(id: Uuid) -> String {
    format!("concert:{id}")
}

fn seats_key(schedule_id: Uuid, status: Option<&str>) -> String {
    format!("seats:{schedule_id}:{}", status.unwrap_or("all"))
}

fn concert_not_found() -> AppError {
    AppError::not_found("concert_not_found", "no such concert")
}

fn schedule_not_found() -> AppError {
    AppError::not_found("schedule_not_found", "no such schedule")
}

pub async fn create_concert(deps: &Deps, title: &str, description: &str) -> Result<Concert, AppError> {
    let title = ConcertTitle::parse(title)?;
    let description = Description::parse(description)?;
    let mut conn = deps.db.acquire().await.context("acquire connection")?;
    let row = repo::insert_concert(&mut conn, Uuid::now_v7(), title.as_str(), description.as_str()).await?;
    Ok(Concert {
        id: row.id,
        title: row.title,
        description: row.description,
        created_at: row.created_at,
    })
}

pub async fn list_concerts(deps: &Deps, page: PageRequest) -> Result<ConcertPage, AppError> {
    let mut conn = deps.db.acquire().await.context("acquire connection")?;
    let (rows, total) = repo::list_concerts(&mut conn, i64::from(page.size), page.offset()).await?;
    let items = rows
        .into_iter()
        .map(|r| Concert {
            id: r.id,
            title: r.title,
            description: r.description,
            created_at: r.created_at,
        })
        .collect();
    Ok(ConcertPage {
        items,
        page: page.page,
        size: page.size,
        total,
    })
}

async fn load_concert_details(deps: &Deps, id: Uuid) -> Result<JsonBody, AppError> {
    let mut conn = deps.db.acquire().await.context("acquire connection")?;
    let concert = repo::find_concert(&mut conn, id).await?.ok_or_else(concert_not_found)?;
    let schedules = repo::schedules_of(&mut conn, id)
        .await?
        .into_iter()
        .map(|s| ScheduleSummary {
            id: s.id,
            starts_at: s.starts_at,
            total_seats: s.total_seats,
            available_seats: s.available_seats,
        })
        .collect();
    to_json(&ConcertDetails {
        id: concert.id,
        title: concert.title,
        description: concert.description,
        schedules,
    })
}

/// `GET /concerts/{id}` as a JSON body, from the cache when possible.
#[tracing::instrument(name = "concert details", skip_all, fields(concert_id = %id))]
pub async fn concert_details(deps: &Deps, id: Uuid) -> Result<JsonBody, AppError> {
    deps.cache
        .get_or_load("concert", &concert_key(id), CONCERT_TTL, || {
            load_concert_details(deps, id)
        })
        .await
}

pub async fn create_schedule(deps: &Deps, concert_id: Uuid, starts_at: DateTime<Utc>) -> Result<Schedule, AppError> {
    let starts_at = StartsAt::parse(starts_at, Utc::now())?;
    let mut tx = deps.db.begin().await.context("begin")?;
    let row = repo::insert_schedule(&mut tx, Uuid::now_v7(), concert_id, starts_at.get())
        .await
        .on_constraint("schedules_concert_fkey", concert_not_found)?;
    tx.commit().await.context("commit schedule")?;
    deps.cache.invalidate("concert", &[concert_key(concert_id)]).await;
    Ok(Schedule {
        id: row.id,
        concert_id: row.concert_id,
        starts_at: row.starts_at,
    })
}

async fn load_seat_map(deps: &Deps, schedule_id: Uuid, status: Option<&str>) -> Result<JsonBody, AppError> {
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
        .get_or_load("seats", &seats_key(schedule_id, status), SEATS_TTL, || {
            load_seat_map(deps, schedule_id, status)
        })
        .await
}

/// The one function every change to a schedule's seats calls (creation, hold, confirm,
/// expiry, cancel): drops the schedule's seat maps and its concert's details from the cache.
pub async fn schedule_seats_changed(deps: &Deps, schedule_id: Uuid, concert_id: Uuid) {
    let mut keys: Vec<String> = [None, Some("available"), Some("held"), Some("sold")]
        .into_iter()
        .map(|status| seats_key(schedule_id, status))
        .collect();
    keys.push(concert_key(concert_id));
    deps.cache.invalidate("catalog", &keys).await;
}

/// Accepts a seat-creation request: the job and (in stream mode) its outbox event are written
/// in one transaction; the work happens in the background.
#[tracing::instrument(name = "request seat creation", skip_all, fields(schedule_id = %schedule_id))]
pub async fn request_seats(deps: &Deps, schedule_id: Uuid, layout: SeatLayout, mode: JobMode) -> Result<Job, AppError> {
    let total =
        i32::try_from(layout.total()).map_err(|_| AppError::validation("invalid_field", "sections: too many seats"))?;
    let job = JobRow {
        id: Uuid::now_v7(),
        kind: "seat_creation".into(),
        mode: mode.as_str().into(),
        schedule_id: Some(schedule_id),
        status: "pending".into(),
        request: serde_json::to_value(&layout).context("serialize layout")?,
        total,
        done: 0,
        error: None,
    };
    let mut tx = deps.db.begin().await.context("begin")?;
    repo::find_schedule(&mut tx, schedule_id)
        .await?
        .ok_or_else(schedule_not_found)?;
    repo::insert_job(&mut tx, &job).await?;
    let outbox_id = match mode {
        JobMode::Stream => {
            let envelope = Envelope::new(SEAT_CREATION_REQUESTED, serde_json::json!({ "job_id": job.id }));
            Some(relay::enqueue(&mut tx, Stream::SeatCreation, &envelope).await?)
        }
        JobMode::Inline => None,
    };
    tx.commit().await.context("commit seat-creation request")?;
    match outbox_id {
        Some(id) => relay::publish_now(&deps.db, &deps.redis, &deps.keys, &[id]).await,
        None => {
            let (deps, job_id) = (deps.clone(), job.id);
            tokio::spawn(async move {
                if let Err(err) = execute_seat_job(&deps, job_id, None).await {
                    tracing::error!(%job_id, error = %format!("{err:#}"), "inline seat creation failed");
                }
            });
        }
    }
    Ok(job.into())
}

pub async fn job(deps: &Deps, id: Uuid) -> Result<Job, AppError> {
    let mut conn = deps.db.acquire().await.context("acquire connection")?;
    repo::find_job(&mut conn, id)
        .await?
        .map(Job::from)
        .ok_or_else(|| AppError::not_found("job_not_found", "no such job"))
}

async fn record_processed(tx: &mut sqlx::PgConnection, processed: Option<(&str, Uuid)>) -> anyhow::Result<()> {
    if let Some((group, id)) = processed {
        processed_events::record_new(tx, group, &[id]).await?;
    }
    Ok(())
}

/// How a job ended, for the stream handler.
#[derive(Debug, PartialEq, Eq)]
pub enum JobEnd {
    Done,
    Failed,
    /// No such job (a bad event): nothing to do.
    Missing,
}

/// Runs a seat-creation job to its end, chunk by chunk. Each chunk is one transaction that
/// inserts its seats (UNNEST, existing positions skipped), updates the inventory and records
/// the progress, with the job row locked: the job resumes exactly where the last committed
/// chunk ended, whoever runs it, and concurrent runs of one job take turns. `processed`
/// (group, event id) is recorded in the transaction that ends the job.
pub async fn execute_seat_job(deps: &Deps, job_id: Uuid, processed: Option<(&str, Uuid)>) -> anyhow::Result<JobEnd> {
    loop {
        let mut tx = deps.db.begin().await.context("begin seat-creation chunk")?;
        let Some(job) = repo::lock_job(&mut tx, job_id).await? else {
            return Ok(JobEnd::Missing);
        };
        match job.status.as_str() {
            "done" => return Ok(JobEnd::Done),
            "failed" => return Ok(JobEnd::Failed),
            _ => {}
        }
        let schedule_id = job.schedule_id.context("seat-creation job without schedule")?;
        let layout: SeatLayout = match serde_json::from_value(job.request.clone()) {
            Ok(layout) => layout,
            Err(err) => {
                repo::update_job(
                    &mut tx,
                    job_id,
                    "failed",
                    job.done,
                    Some(&format!("unreadable request: {err}")),
                )
                .await?;
                record_processed(&mut tx, processed).await?;
                tx.commit().await.context("commit failed job")?;
                return Ok(JobEnd::Failed);
            }
        };
        let (start, total) = (job.done as u64, job.total as u64);
        if start >= total {
            repo::update_job(&mut tx, job_id, "done", job.total, None).await?;
            record_processed(&mut tx, processed).await?;
            tx.commit().await.context("commit finished job")?;
            tracing::info!(%job_id, seats = total, "seat-creation job done");
            if let Some(schedule) = repo::find_schedule(&mut *deps.db.acquire().await?, schedule_id).await? {
                schedule_seats_changed(deps, schedule_id, schedule.concert_id).await;
            }
            return Ok(JobEnd::Done);
        }
        let end = (start + CHUNK).min(total);
        let positions = layout.positions(start, end);
        let ids: Vec<Uuid> = positions.iter().map(|_| Uuid::now_v7()).collect();
        let sections: Vec<String> = positions.iter().map(|p| p.section.to_owned()).collect();
        let rows: Vec<i32> = positions.iter().map(|p| p.row).collect();
        let numbers: Vec<i32> = positions.iter().map(|p| p.number).collect();
        let prices: Vec<i64> = positions.iter().map(|p| p.price).collect();
        match repo::insert_seats(&mut tx, schedule_id, &ids, &sections, &rows, &numbers, &prices).await {
            Ok(inserted) => {
                repo::add_to_inventory(&mut tx, schedule_id, inserted as i32).await?;
                repo::update_job(&mut tx, job_id, "running", end as i32, None).await?;
                tx.commit().await.context("commit seat chunk")?;
            }
            Err(err) if violated_constraint(&err) == Some("seats_schedule_fkey") => {
                drop(tx);
                let mut tx = deps.db.begin().await.context("begin")?;
                repo::update_job(
                    &mut tx,
                    job_id,
                    "failed",
                    job.done,
                    Some("the schedule no longer exists"),
                )
                .await?;
                record_processed(&mut tx, processed).await?;
                tx.commit().await.context("commit failed job")?;
                return Ok(JobEnd::Failed);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Loads the concert details and seat maps of schedules starting within `window` into the
/// cache, so the first fans of a sale do not all miss at once. Errors are logged.
pub async fn warm_up(deps: &Deps, window: chrono::Duration) {
    let result = async {
        let now = Utc::now();
        let schedules = repo::schedules_starting(&mut *deps.db.acquire().await?, now, now + window).await?;
        let mut concerts = std::collections::HashSet::new();
        for schedule in &schedules {
            // Through the cache's own path: what another API process already warmed is not
            // loaded again, and a change made meanwhile is not overwritten.
            if concerts.insert(schedule.concert_id) {
                deps.cache
                    .get_or_load("concert", &concert_key(schedule.concert_id), CONCERT_TTL, || {
                        load_concert_details(deps, schedule.concert_id)
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            deps.cache
                .get_or_load("seats", &seats_key(schedule.id, None), SEATS_TTL, || {
                    load_seat_map(deps, schedule.id, None)
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        anyhow::Ok(schedules.len())
    }
    .await;
    match result {
        Ok(n) => tracing::info!(schedules = n, "cache warmed up"),
        Err(err) => tracing::warn!(error = %format!("{err:#}"), "cache warm-up failed"),
    }
}

/// The `seat-creation` role's handler: runs the job an event names. A job that cannot be
/// done (schedule gone, unreadable request) ends `failed` with a readable error and the event
/// is acked; a database outage is retried.
pub struct SeatCreationHandler {
    deps: Deps,
}

impl SeatCreationHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    async fn handle_one(&self, envelope: &Envelope) -> crate::stream::Outcome {
        use crate::stream::Outcome;
        if envelope.event_type != SEAT_CREATION_REQUESTED {
            return Outcome::DeadLetter(format!("unknown event type {:?}", envelope.event_type));
        }
        let Some(job_id) = envelope
            .payload
            .get("job_id")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Uuid>().ok())
        else {
            return Outcome::DeadLetter("payload has no valid `job_id`".into());
        };
        match execute_seat_job(
            &self.deps,
            job_id,
            Some((Stream::SeatCreation.group(), envelope.event_id)),
        )
        .await
        {
            Ok(JobEnd::Done | JobEnd::Failed) => Outcome::Ack,
            Ok(JobEnd::Missing) => Outcome::DeadLetter(format!("no job {job_id}")),
            Err(err) => Outcome::Retry(format!("{err:#}")),
        }
    }
}

impl crate::stream::Handler for SeatCreationHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<crate::stream::Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for envelope in batch {
            outcomes.push(self.handle_one(envelope).await);
        }
        outcomes
    }
}
