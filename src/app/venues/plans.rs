//! A hall's seat plan versions: import (a new version), replace an unused version, export,
//! delete an unused version. A version a schedule was made from never changes: the schedule
//! and a replacement both lock the version's row, so one of them waits for the other and the
//! replacement then sees `used_at` (409 `plan_in_use`).

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::hall_not_found;
use crate::app::AppError;
use crate::app::error::OnConstraint;
use crate::domain::seat_plan::{PlanErrors, SeatPlan};
use crate::infra::postgres::Db;
use crate::infra::postgres::venues::{self as repo, PlanRow};

#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    pub hall_id: Uuid,
    pub version: i32,
    pub seats: i32,
    pub for_sale: i32,
    pub categories: Vec<String>,
    /// Whether a schedule was made from this version (then it never changes).
    pub in_use: bool,
    /// SHA-256 of the JSON export; the exports' and the picture's ETag.
    pub digest: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PlanRow> for PlanSummary {
    fn from(r: PlanRow) -> Self {
        Self {
            hall_id: r.hall_id,
            version: r.version,
            seats: r.seats,
            for_sale: r.for_sale,
            categories: r.categories,
            in_use: r.used_at.is_some(),
            digest: r.digest,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub fn plan_not_found() -> AppError {
    AppError::not_found("plan_not_found", "this hall has no such plan version")
}

fn plan_in_use(version: i32) -> AppError {
    AppError::conflict(
        "plan_in_use",
        format!("version {version} is used by a schedule and never changes; import a new version instead"),
    )
}

/// An import that broke the rules: 422 `invalid_plan`, with every bad seat named (the first
/// 100) in `errors` and their number in `error_count`.
pub fn invalid_plan(errors: PlanErrors) -> AppError {
    AppError::validation("invalid_plan", errors.to_string())
        .with_extension("errors", serde_json::json!(errors.errors))
        .with_extension("error_count", serde_json::json!(errors.total))
}

/// The plan's digest: SHA-256 of its JSON export, hex.
pub fn digest(plan: &SeatPlan) -> String {
    let body = serde_json::to_vec(&plan.to_document()).unwrap_or_default();
    format!("{:x}", Sha256::digest(&body))
}

/// Stores `plan` as the hall's next version.
pub async fn import(db: &Db, hall_id: Uuid, plan: &SeatPlan) -> Result<PlanSummary, AppError> {
    let digest = digest(plan);
    let mut tx = db.begin().await.context("begin")?;
    repo::lock_hall(&mut tx, hall_id).await?.ok_or_else(hall_not_found)?;
    let version = repo::next_version(&mut tx, hall_id).await?;
    repo::write_plan(&mut tx, hall_id, version, plan, &digest).await?;
    let row = repo::find_plan(&mut tx, hall_id, version)
        .await?
        .context("plan just written")?;
    tx.commit().await.context("commit plan")?;
    tracing::info!(%hall_id, version, seats = plan.seats().len(), "seat plan imported");
    Ok(row.into())
}

/// Replaces version `version`'s seats, unless a schedule was made from it (409).
pub async fn replace(db: &Db, hall_id: Uuid, version: i32, plan: &SeatPlan) -> Result<PlanSummary, AppError> {
    let digest = digest(plan);
    let mut tx = db.begin().await.context("begin")?;
    let current = repo::lock_plan(&mut tx, hall_id, version)
        .await?
        .ok_or_else(plan_not_found)?;
    if current.used_at.is_some() {
        return Err(plan_in_use(version));
    }
    repo::delete_plan_seats(&mut tx, hall_id, version).await?;
    repo::write_plan(&mut tx, hall_id, version, plan, &digest).await?;
    let row = repo::find_plan(&mut tx, hall_id, version)
        .await?
        .context("plan just written")?;
    tx.commit().await.context("commit plan")?;
    Ok(row.into())
}

/// Deletes an unused version (409 if a schedule was made from it).
pub async fn delete(db: &Db, hall_id: Uuid, version: i32) -> Result<(), AppError> {
    let mut tx = db.begin().await.context("begin")?;
    let current = repo::lock_plan(&mut tx, hall_id, version)
        .await?
        .ok_or_else(plan_not_found)?;
    if current.used_at.is_some() {
        return Err(plan_in_use(version));
    }
    repo::delete_plan(&mut tx, hall_id, version)
        .await
        .on_constraint("schedules_plan_fkey", || plan_in_use(version))?;
    tx.commit().await.context("commit")?;
    Ok(())
}

pub async fn versions(db: &Db, hall_id: Uuid) -> Result<Vec<PlanSummary>, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    repo::find_hall(&mut conn, hall_id).await?.ok_or_else(hall_not_found)?;
    Ok(repo::plans_of(&mut conn, hall_id)
        .await?
        .into_iter()
        .map(PlanSummary::from)
        .collect())
}

pub async fn summary(db: &Db, hall_id: Uuid, version: i32) -> Result<PlanSummary, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    Ok(repo::find_plan(&mut conn, hall_id, version)
        .await?
        .ok_or_else(plan_not_found)?
        .into())
}

/// A version with every seat.
pub async fn load(db: &Db, hall_id: Uuid, version: i32) -> Result<(PlanSummary, SeatPlan), AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    let row = repo::find_plan(&mut conn, hall_id, version)
        .await?
        .ok_or_else(plan_not_found)?;
    let plan = repo::load_plan(&mut conn, &row).await?;
    Ok((row.into(), plan))
}
