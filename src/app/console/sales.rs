//! The sales page: one schedule's seats by state, holds by outcome and payments per minute
//! over the last minutes, how late expiry runs, and the webhook endpoints' delivery health.

use anyhow::Context as _;
use serde::Serialize;
use uuid::Uuid;

use crate::app::{AppError, Deps};
use crate::infra::postgres::console::{self as repo, ScheduleRow, SeatCounts, WebhookHealth};

/// The minutes the page's counts and charts cover.
pub const MINUTES: i32 = 15;

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleSales {
    pub schedule: ScheduleRow,
    pub seats: SeatCounts,
    /// Holds placed in the last [`MINUTES`], by what became of them (`held`, `paid`,
    /// `confirmed`, `expired`, `cancelled`).
    pub holds_by_outcome: Vec<(String, i64)>,
    /// Payments per minute, oldest first, the current minute last.
    pub payments_per_minute: Vec<i64>,
    /// Seconds the oldest hold past its end has waited to be released (None: none waits).
    pub expiry_lag_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sales {
    pub schedules: Vec<ScheduleRow>,
    pub selected: Option<ScheduleSales>,
    pub webhooks: Vec<WebhookHealth>,
}

/// The schedules to pick from (the next 200), `schedule`'s figures (or the first's), and
/// the webhook endpoints.
pub async fn sales(deps: &Deps, schedule: Option<Uuid>) -> Result<Sales, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let schedules = repo::schedules(&mut conn, 200).await?;
    let chosen = match schedule {
        Some(id) => match schedules.iter().find(|s| s.id == id) {
            Some(s) => Some(s.clone()),
            None => return Err(AppError::not_found("schedule_not_found", "no such schedule")),
        },
        None => schedules.first().cloned(),
    };
    let selected = match chosen {
        None => None,
        Some(schedule) => Some(ScheduleSales {
            seats: repo::seat_counts(&mut conn, schedule.id).await?,
            holds_by_outcome: repo::holds_by_outcome(&mut conn, schedule.id, MINUTES).await?,
            payments_per_minute: repo::payments_per_minute(&mut conn, schedule.id, MINUTES).await?,
            expiry_lag_s: repo::expiry_lag(&mut conn, schedule.id).await?,
            schedule,
        }),
    };
    let webhooks = repo::webhook_health(&mut conn).await?;
    Ok(Sales {
        schedules,
        selected,
        webhooks,
    })
}
