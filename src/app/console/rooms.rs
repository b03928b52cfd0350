//! The waiting rooms page: every open line beside its stock, and pausing / resuming admission.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Session;
use crate::app::{AppError, Deps};
use crate::infra::postgres::console as repo;
use crate::infra::redis::waiting_room::{self, QueueStats, WaitingRoom};

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStock {
    pub schedule_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub available: i64,
    pub seats: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub title: String,
    pub stats: QueueStats,
    /// Admissions per second (the last minute's average) over the last five minutes in 5 s
    /// steps, oldest first (the newest reading within each step; 0 where none): the chart.
    pub admissions_per_s: Vec<f64>,
    /// Fans admitted in the last 10 minutes: how many, and their median and 95th percentile
    /// wait from joining to admission, in seconds.
    pub admitted_recently: i64,
    pub wait_p50_s: Option<f64>,
    pub wait_p95_s: Option<f64>,
    /// When the last fan in line would be admitted at the current rate (None: no rate).
    pub eta_s: Option<f64>,
    pub schedules: Vec<ScheduleStock>,
}

/// Every open line (or only `concert`), the longest first.
pub async fn rooms(deps: &Deps, concert: Option<Uuid>) -> Result<Vec<Room>, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let ids = match concert {
        Some(id) => vec![id],
        None => {
            // Open lines, and paused ones even when empty (the promoter drops an empty line).
            let mut ids = waiting_room::open_lines(&deps.redis, &deps.keys).await?;
            for id in repo::paused_concerts(&mut conn).await? {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            ids
        }
    };
    let mut all = Vec::new();
    for id in &ids {
        all.push(WaitingRoom::new(&deps.redis, &deps.keys, *id).stats(*id).await?);
    }
    let titles: HashMap<Uuid, (String, bool)> = repo::concert_titles(&mut conn, &ids)
        .await?
        .into_iter()
        .map(|(id, title, paused)| (id, (title, paused)))
        .collect();
    let values = all
        .iter()
        .map(|s| (s.concert_id.to_string(), s.admitted_last_minute))
        .collect();
    let readings = deps.console.record("rooms", values);
    let mut rooms = Vec::new();
    for mut stats in all {
        let Some((title, paused_in_pg)) = titles.get(&stats.concert_id).cloned() else {
            continue;
        };
        // PostgreSQL holds the decision; Redis applies it within a promoter round.
        stats.paused |= paused_in_pg;
        let (admitted_recently, wait_p50_s, wait_p95_s) = repo::measured_wait(&mut conn, stats.concert_id, 10).await?;
        let schedules = repo::seats_left(&mut conn, stats.concert_id)
            .await?
            .into_iter()
            .map(|(schedule_id, starts_at, available, seats)| ScheduleStock {
                schedule_id,
                starts_at,
                available,
                seats,
            })
            .collect();
        let name = stats.concert_id.to_string();
        let admissions_per_s = chart(&readings, &name);
        let per_s = stats.admitted_last_minute as f64 / 60.0;
        let eta_s = (per_s > 0.0 && !stats.paused).then(|| (stats.waiting + stats.pre_queue) as f64 / per_s);
        rooms.push(Room {
            title,
            stats,
            admissions_per_s,
            admitted_recently,
            wait_p50_s,
            wait_p95_s,
            eta_s,
            schedules,
        });
    }
    rooms.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.stats.waiting + r.stats.pre_queue + r.stats.active),
            r.stats.concert_id,
        )
    });
    Ok(rooms)
}

/// Pauses or resumes a concert's admission from the console, recorded in its audit log.
pub async fn set_paused(deps: &Deps, session: &Session, concert: Uuid, paused: bool) -> Result<QueueStats, AppError> {
    let stats = crate::app::waiting_room::set_admission_paused(deps, concert, paused, session.user_id).await?;
    let action = if paused { "pause" } else { "resume" };
    let outcome = format!(
        "admission {}; {} waiting, {} active",
        if paused { "paused" } else { "resumed" },
        stats.waiting,
        stats.active
    );
    super::record_action(
        deps,
        session,
        action,
        &format!("concert {concert}"),
        &outcome,
        serde_json::json!({}),
    )
    .await?;
    Ok(stats)
}

/// The last five minutes of `name`'s readings in 5-second steps (admitted in the last minute,
/// as per second).
fn chart(readings: &[super::Reading], name: &str) -> Vec<f64> {
    const STEPS: u32 = 60;
    let step = Duration::from_secs(5);
    let Some(last) = readings.last() else {
        return Vec::new();
    };
    (0..STEPS)
        .rev()
        .map(|i| {
            let end = last.at.checked_sub(step * i);
            let start = end.and_then(|e| e.checked_sub(step));
            readings
                .iter()
                .rfind(|r| start.is_some_and(|s| r.at > s) && end.is_some_and(|e| r.at <= e))
                .and_then(|r| r.values.get(name))
                .map_or(0.0, |v| *v as f64 / 60.0)
        })
        .collect()
}

/// Concerts to look at when no line is open: the next ones by their first schedule.
pub async fn upcoming(deps: &Deps) -> Result<Vec<(Uuid, String)>, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    Ok(repo::upcoming_concerts(&mut conn, 20).await?)
}
