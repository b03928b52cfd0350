//! The operator console's use cases (served as HTML by [`crate::api::console`]): its sessions,
//! what each page shows, and the actions an operator may take, each recorded with the admin's
//! id in `console_actions`. How it is meant to be used: docs/console.md.
//!
//! Rates (throughput, admissions per second) are differences of readings this process took
//! ([`ConsoleState`]): each API process keeps the last minutes of the readings its own pages
//! asked for, so the first view of a page shows levels and the rates follow within seconds.

pub mod dead_letters;
pub mod rooms;
pub mod sales;
pub mod session;
pub mod streams;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use session::{Session, SessionLogin};

use super::{AppError, Deps};

/// How long a reading is kept for rates and trends.
pub const HISTORY: Duration = Duration::from_secs(10 * 60);

/// A timestamped reading of counters (entries added, lags, admissions…), by name.
#[derive(Debug, Clone)]
pub struct Reading {
    pub at: Instant,
    pub values: HashMap<String, u64>,
}

/// This process's readings for the console's rates, and its dead-letter index.
#[derive(Default)]
pub struct ConsoleState {
    series: Mutex<HashMap<String, VecDeque<Reading>>>,
    pub(super) dead_letters: tokio::sync::Mutex<dead_letters::Index>,
}

impl ConsoleState {
    /// Adds `values` as the newest reading of `series` (at most one a half second: several
    /// pages polling at once share it) and answers the readings of the last [`HISTORY`], oldest
    /// first.
    pub fn record(&self, series: &str, values: HashMap<String, u64>) -> Vec<Reading> {
        let mut all = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = all.entry(series.to_owned()).or_default();
        let now = Instant::now();
        if list
            .back()
            .is_none_or(|last| now.duration_since(last.at) >= Duration::from_millis(500))
        {
            list.push_back(Reading { at: now, values });
        }
        while list.front().is_some_and(|first| now.duration_since(first.at) > HISTORY) {
            list.pop_front();
        }
        list.iter().cloned().collect()
    }
}

/// The rate of `name` per second over the readings of the last `window` (None: fewer than two
/// readings that far apart, or the counter went backwards).
pub fn rate(readings: &[Reading], name: &str, window: Duration) -> Option<f64> {
    let last = readings.last()?;
    let first = readings
        .iter()
        .find(|r| last.at.duration_since(r.at) <= window && r.values.contains_key(name))?;
    let seconds = last.at.duration_since(first.at).as_secs_f64();
    let (a, b) = (*first.values.get(name)?, *last.values.get(name)?);
    (seconds >= 1.0 && b >= a).then(|| (b - a) as f64 / seconds)
}

/// Records an action taken from the console (replay, purge, pause, resume) in its audit log.
pub async fn record_action(
    deps: &Deps,
    session: &Session,
    action: &str,
    target: &str,
    outcome: &str,
    detail: serde_json::Value,
) -> Result<uuid::Uuid, AppError> {
    let mut conn = deps.db.write().await.context("acquire connection")?;
    let id =
        crate::infra::postgres::console::record_action(&mut conn, session.user_id, action, target, outcome, &detail)
            .await?;
    conn.commit().await.context("commit console action")?;
    tracing::info!(admin_id = %session.user_id, action, target, outcome, "console action");
    Ok(id)
}

/// The audit log page: the newest actions first.
pub async fn actions(
    deps: &Deps,
    before: Option<uuid::Uuid>,
    limit: i64,
) -> Result<Vec<crate::infra::postgres::console::ActionRow>, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    Ok(crate::infra::postgres::console::actions(&mut conn, before, limit).await?)
}

/// The invariants checked now (as `imticket-admin audit`): I1–I4 and the counts in the
/// database, I5 in the outbox and the streams' pending entries.
pub async fn audit(deps: &Deps) -> Result<Vec<crate::infra::postgres::audit::Violation>, AppError> {
    let mut violations = {
        let mut conn = deps.db.read().await.context("acquire connection")?;
        crate::infra::postgres::audit::database(&mut conn).await?
    };
    let keys: Vec<String> = crate::events::Stream::ALL
        .iter()
        .flat_map(|s| deps.keys.stream_keys(*s))
        .collect();
    let mut conn = deps.redis.connection().await?;
    violations.extend(crate::stream::groups::pending_too_long(&mut conn, &keys, deps.config.streams.claim_idle).await?);
    Ok(violations)
}

/// Every row with this id, whatever its table (the console's row page).
pub async fn rows(deps: &Deps, id: uuid::Uuid) -> Result<Vec<(String, serde_json::Value)>, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    Ok(crate::infra::postgres::console::rows_with_id(&mut conn, id).await?)
}

/// One entry of the audit log.
pub async fn action(
    deps: &Deps,
    id: uuid::Uuid,
) -> Result<Option<crate::infra::postgres::console::ActionRow>, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    Ok(crate::infra::postgres::console::action(&mut conn, id).await?)
}
