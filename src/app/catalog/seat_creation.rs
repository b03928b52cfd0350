//! Bulk seat creation: a request is accepted at once as a job, and the job runs chunk by chunk
//! in the background — by the `seat-creation` worker (from its stream event), or inline in
//! the API process (the comparison mode). See docs/seat-creation.md.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::seat_map::seats_created;
use crate::app::Deps;
use crate::app::error::AppError;
use crate::domain::catalog::SeatLayout;
use crate::domain::seat_plan::Prices;
use crate::events::SeatCreationRequested;
use crate::infra::postgres::catalog::{self as repo, JobRow};
use crate::infra::postgres::error::violated_constraint;
use crate::infra::postgres::venues as venues_repo;
use crate::infra::{postgres::outbox, postgres::processed_events};

/// Seats inserted per transaction: large enough for UNNEST to pay off, small enough that
/// progress moves and a crash loses little work.
const CHUNK: u64 = 5_000;

#[derive(Debug, Clone, Serialize)]
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

/// Where a job's seats come from: sections given by hand, or a hall's plan version priced by
/// category. Stored as the job's `request` (a hand-made one as `{"sections": …}`, as before
/// plans existed; a plan's as `{"plan": …}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeatSource {
    Layout(SeatLayout),
    Plan { plan: PlanSource },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanSource {
    pub hall_id: Uuid,
    pub version: i32,
    pub prices: Prices,
}

/// Accepts a seat-creation request: the job and (in stream mode) its event are written in one
/// transaction; the work happens in the background.
#[tracing::instrument(name = "request seat creation", skip_all, fields(schedule_id = %schedule_id))]
pub async fn request_seats(deps: &Deps, schedule_id: Uuid, layout: SeatLayout, mode: JobMode) -> Result<Job, AppError> {
    let total =
        i32::try_from(layout.total()).map_err(|_| AppError::validation("invalid_field", "sections: too many seats"))?;
    let mut tx = deps.db.begin().await.context("begin")?;
    repo::find_schedule(&mut tx, schedule_id)
        .await?
        .ok_or_else(AppError::schedule_not_found)?;
    let (job, outbox_id) = enqueue(&mut tx, schedule_id, &SeatSource::Layout(layout), total, mode).await?;
    tx.commit().await.context("commit seat-creation request")?;
    started(deps, &job, outbox_id).await;
    Ok(job.into())
}

/// Writes a job for `source` (and in stream mode its event) in the caller's transaction.
pub(crate) async fn enqueue(
    tx: &mut sqlx::PgConnection,
    schedule_id: Uuid,
    source: &SeatSource,
    total: i32,
    mode: JobMode,
) -> Result<(JobRow, Option<i64>), AppError> {
    let job = JobRow {
        id: Uuid::now_v7(),
        kind: "seat_creation".into(),
        mode: mode.as_str().into(),
        schedule_id: Some(schedule_id),
        status: "pending".into(),
        request: serde_json::to_value(source).context("serialize seat source")?,
        total,
        done: 0,
        error: None,
    };
    repo::insert_job(&mut *tx, &job).await?;
    let outbox_id = match mode {
        JobMode::Stream => Some(outbox::append(tx, &SeatCreationRequested { job_id: job.id }).await?),
        JobMode::Inline => None,
    };
    Ok((job, outbox_id))
}

/// After the commit of [`enqueue`]: publish the event, or start the inline job.
pub(crate) async fn started(deps: &Deps, job: &JobRow, outbox_id: Option<i64>) {
    match outbox_id {
        Some(id) => deps.outbox.publish_now(&[id]).await,
        None => {
            let (deps, job_id) = (deps.clone(), job.id);
            tokio::spawn(async move {
                if let Err(err) = execute_seat_job(&deps, job_id, None).await {
                    tracing::error!(%job_id, error = %format!("{err:#}"), "inline seat creation failed");
                }
            });
        }
    }
}

pub async fn job(deps: &Deps, id: Uuid) -> Result<Job, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
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

/// How a job ended.
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
/// (consumer group, event id) is recorded in the transaction that ends the job.
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
        let source: SeatSource = match serde_json::from_value(job.request.clone()) {
            Ok(source) => source,
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
            if let Some(schedule) = repo::find_schedule(&mut *deps.db.read().await?, schedule_id).await? {
                seats_created(deps, schedule_id, schedule.concert_id).await;
            }
            return Ok(JobEnd::Done);
        }
        let end = (start + CHUNK).min(total);
        let columns = match &source {
            SeatSource::Layout(layout) => layout.columns(start, end),
            SeatSource::Plan { plan } => {
                venues_repo::sale_seats(
                    &mut tx,
                    plan.hall_id,
                    plan.version,
                    &plan.prices,
                    start as i32,
                    end as i32,
                )
                .await?
            }
        };
        match repo::insert_seats(&mut tx, schedule_id, &columns).await {
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
