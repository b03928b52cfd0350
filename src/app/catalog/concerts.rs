//! Concerts and their schedules: create, list, and the (cached) concert details page.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::seat_creation::{self, JobMode, PlanSource, SeatSource};
use crate::app::error::{AppError, OnConstraint};
use crate::app::{Deps, to_json};
use crate::cache::{JsonBody, Ttl};
use crate::domain::catalog::{ConcertTitle, Description, PageRequest, SaleOpensAt, StartsAt};
use crate::domain::seat_plan::Prices;
use crate::infra::postgres::catalog as repo;
use crate::infra::postgres::venues as venues_repo;
use crate::infra::redis::keys::CacheEntry;

/// Concert details change only when a schedule is added or seats change (both invalidate), so
/// they are kept long, and in each API process too: the hottest page of an on-sale.
pub const CONCERT_TTL: Ttl = Ttl {
    base: Duration::from_secs(300),
    jitter: Duration::from_secs(30),
    near: true,
};

#[derive(Debug, Serialize, Deserialize)]
pub struct Concert {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// `None`: on sale now.
    pub sale_opens_at: Option<DateTime<Utc>>,
}

impl From<repo::ConcertRow> for Concert {
    fn from(row: repo::ConcertRow) -> Self {
        Self {
            id: row.id,
            title: row.title,
            description: row.description,
            created_at: row.created_at,
            sale_opens_at: row.sale_opens_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConcertPage {
    pub items: Vec<Concert>,
    pub page: u32,
    pub size: u32,
    pub total: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ScheduleSummary {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub total_seats: i32,
    pub available_seats: i32,
}

/// The body of `GET /concerts/{id}`, as cached.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConcertDetails {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// `None`: on sale now.
    pub sale_opens_at: Option<DateTime<Utc>>,
    pub schedules: Vec<ScheduleSummary>,
}

#[derive(Debug, Serialize)]
pub struct Schedule {
    pub id: Uuid,
    pub concert_id: Uuid,
    pub starts_at: DateTime<Utc>,
    /// The job creating its seats, for a schedule made from a hall's plan.
    pub seat_job: Option<super::seat_creation::Job>,
}

/// A hall's plan version to make a schedule's seats from, with a price per category.
pub struct PlanChoice {
    pub hall_id: Uuid,
    pub version: i32,
    pub prices: std::collections::BTreeMap<String, i64>,
}

/// Creates a concert; `sale_opens_at` absent means on sale at once.
pub async fn create_concert(
    deps: &Deps,
    title: &str,
    description: &str,
    sale_opens_at: Option<DateTime<Utc>>,
) -> Result<Concert, AppError> {
    let title = ConcertTitle::parse(title)?;
    let description = Description::parse(description)?;
    let sale_opens_at = sale_opens_at.map(|at| SaleOpensAt::parse(at, Utc::now())).transpose()?;
    let mut conn = deps.db.write().await.context("acquire connection")?;
    let row = repo::insert_concert(
        &mut conn,
        Uuid::now_v7(),
        title.as_str(),
        description.as_str(),
        sale_opens_at.map(SaleOpensAt::get),
    )
    .await?;
    conn.commit().await.context("commit concert")?;
    Ok(row.into())
}

pub async fn list_concerts(deps: &Deps, page: PageRequest) -> Result<ConcertPage, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let (rows, total) = repo::list_concerts(&mut conn, i64::from(page.size), page.offset()).await?;
    let items = rows.into_iter().map(Concert::from).collect();
    Ok(ConcertPage {
        items,
        page: page.page,
        size: page.size,
        total,
    })
}

pub(crate) async fn load_concert_details(deps: &Deps, id: Uuid) -> Result<JsonBody, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let concert = repo::find_concert(&mut conn, id)
        .await?
        .ok_or_else(AppError::concert_not_found)?;
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
        sale_opens_at: concert.sale_opens_at,
        schedules,
    })
}

/// `GET /concerts/{id}` as a JSON body, from the cache when possible.
#[tracing::instrument(name = "concert details", skip_all, fields(concert_id = %id))]
pub async fn concert_details(deps: &Deps, id: Uuid) -> Result<JsonBody, AppError> {
    deps.cache
        .get_or_load("concert", &CacheEntry::concert(id), CONCERT_TTL, || {
            load_concert_details(deps, id)
        })
        .await
}

pub async fn create_schedule(
    deps: &Deps,
    concert_id: Uuid,
    starts_at: DateTime<Utc>,
    plan: Option<PlanChoice>,
) -> Result<Schedule, AppError> {
    let starts_at = StartsAt::parse(starts_at, Utc::now())?;
    let mut tx = deps.db.begin().await.context("begin")?;
    let row = repo::insert_schedule(&mut tx, Uuid::now_v7(), concert_id, starts_at.get())
        .await
        .on_constraint("schedules_concert_fkey", AppError::concert_not_found)?;
    let job = match plan {
        None => None,
        Some(choice) => Some(from_plan(&mut tx, row.id, choice).await?),
    };
    tx.commit().await.context("commit schedule")?;
    if let Some((job, outbox_id)) = &job {
        seat_creation::started(deps, job, *outbox_id).await;
    }
    deps.cache
        .invalidate("concert", &[CacheEntry::concert(concert_id)])
        .await;
    Ok(Schedule {
        id: row.id,
        concert_id: row.concert_id,
        starts_at: row.starts_at,
        seat_job: job.map(|(job, _)| job.into()),
    })
}

/// Ties the new schedule to the plan version and writes the job creating its seats. The
/// version's row is locked: a replacement of it waits, then finds it in use.
async fn from_plan(
    tx: &mut sqlx::PgConnection,
    schedule_id: Uuid,
    choice: PlanChoice,
) -> Result<(repo::JobRow, Option<i64>), AppError> {
    let plan = venues_repo::lock_plan(&mut *tx, choice.hall_id, choice.version)
        .await?
        .ok_or_else(|| AppError::validation("invalid_field", "hall_plan_id, version: no such hall plan version"))?;
    let sold = venues_repo::sold_categories(&mut *tx, plan.hall_id, plan.version).await?;
    let sold: Vec<&str> = sold.iter().map(String::as_str).collect();
    let prices = Prices::parse(choice.prices, &plan.categories, &sold)?;
    venues_repo::mark_plan_used(&mut *tx, plan.hall_id, plan.version).await?;
    venues_repo::set_schedule_plan(&mut *tx, schedule_id, plan.hall_id, plan.version).await?;
    let source = SeatSource::Plan {
        plan: PlanSource {
            hall_id: plan.hall_id,
            version: plan.version,
            prices,
        },
    };
    seat_creation::enqueue(tx, schedule_id, &source, plan.for_sale, JobMode::Stream).await
}
