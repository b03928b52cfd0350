//! `imticket-admin queue …`: the waiting rooms, every open line or one concert's.

use std::fmt::Write as _;

use anyhow::Context as _;
use serde_json::json;
use uuid::Uuid;

use super::command::{Context, Needs, Run};
use crate::infra::redis::waiting_room::{self, QueueStats, WaitingRoom};

#[derive(clap::Subcommand)]
pub enum Queue {
    /// Every open line: waiting, pre-queue, active, admitted in the last minute, sold out, opening.
    List,
    /// The same for one concert (also when it has no open line).
    Stats { concert_id: String },
    /// Pause the concert's admission: nobody is admitted until `resume` (as
    /// `POST /admin/concerts/{id}/queue/pause`; recorded in PostgreSQL as the operator's).
    Pause { concert_id: String },
    /// Resume the concert's admission.
    Resume { concert_id: String },
}

impl Run for Queue {
    fn needs(&self) -> Needs {
        match self {
            Queue::Pause { .. } | Queue::Resume { .. } => Needs::BOTH,
            Queue::List | Queue::Stats { .. } => Needs::REDIS,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        match self {
            Queue::Stats { concert_id: id } | Queue::Pause { concert_id: id } | Queue::Resume { concert_id: id } => {
                concert_id(id).map(drop)
            }
            Queue::List => Ok(()),
        }
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        match self {
            Queue::List => list(cx).await,
            Queue::Stats { concert_id: id } => stats(cx, concert_id(&id)?).await,
            Queue::Pause { concert_id: id } => pause(cx, concert_id(&id)?, true).await,
            Queue::Resume { concert_id: id } => pause(cx, concert_id(&id)?, false).await,
        }
    }
}

/// `queue list`: every open line (`queue:open`), the longest first.
async fn list(cx: &Context) -> anyhow::Result<String> {
    let redis = cx.redis()?;
    let mut all = Vec::new();
    for concert_id in waiting_room::open_lines(redis, &cx.keys).await? {
        all.push(WaitingRoom::new(redis, &cx.keys, concert_id).stats(concert_id).await?);
    }
    all.sort_by_key(|s| (std::cmp::Reverse(s.waiting + s.pre_queue + s.active), s.concert_id));
    if cx.json {
        return Ok(serde_json::to_string_pretty(
            &all.iter().map(|s| queue_json(s, true)).collect::<Vec<_>>(),
        )?);
    }
    let mut out = queue_table_header();
    for stats in &all {
        queue_table_row(&mut out, stats)?;
    }
    write!(out, "{} open line(s)", all.len())?;
    Ok(out)
}

/// `queue stats <concert_id>`: one concert's waiting room, open or not.
async fn stats(cx: &Context, concert_id: Uuid) -> anyhow::Result<String> {
    let room = WaitingRoom::new(cx.redis()?, &cx.keys, concert_id);
    let exists = room.exists().await?;
    let stats = room.stats(concert_id).await?;
    if cx.json {
        return Ok(serde_json::to_string_pretty(&queue_json(&stats, exists))?);
    }
    if !exists {
        return Ok(format!("no waiting room for {concert_id}"));
    }
    let mut out = queue_table_header();
    queue_table_row(&mut out, &stats)?;
    if stats.paused {
        out.push_str("admission paused (imticket-admin queue resume, or POST /admin/concerts/{id}/queue/resume)");
    }
    Ok(out.trim_end().to_owned())
}

/// `queue pause|resume <concert_id>`: PostgreSQL keeps the decision (by the nil user: the
/// operator's CLI), Redis applies it at once.
async fn pause(cx: &Context, concert_id: Uuid, paused: bool) -> anyhow::Result<String> {
    let mut conn = cx.db()?.write().await.context("acquire connection")?;
    let found =
        crate::infra::postgres::catalog::set_admission_paused(&mut conn, concert_id, paused, Uuid::nil()).await?;
    conn.commit().await.context("commit admission pause")?;
    anyhow::ensure!(found, "no concert {concert_id}");
    WaitingRoom::new(cx.redis()?, &cx.keys, concert_id)
        .set_paused(paused)
        .await?;
    stats(cx, concert_id).await
}

/// A concert id as operators type it.
fn concert_id(raw: &str) -> anyhow::Result<Uuid> {
    raw.trim()
        .parse()
        .with_context(|| format!("not a concert id: {raw} (expected a UUID)"))
}

fn opens_at(ms: i64) -> Option<String> {
    (ms > 0)
        .then(|| chrono::DateTime::from_timestamp_millis(ms))
        .flatten()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// `exists`: whether the concert has any waiting-room key (always true for open lines).
fn queue_json(s: &QueueStats, exists: bool) -> serde_json::Value {
    json!({
        "concert_id": s.concert_id, "exists": exists, "waiting": s.waiting, "pre_queue": s.pre_queue,
        "active": s.active, "admitted_last_minute": s.admitted_last_minute, "sold_out": s.sold_out, "paused": s.paused,
        "opens_at_ms": s.opens_at_ms, "opens_at": opens_at(s.opens_at_ms),
    })
}

fn queue_table_header() -> String {
    format!(
        "{:<36} {:>9} {:>9} {:>7} {:>11} {:<8} OPENS-AT\n",
        "CONCERT", "WAITING", "PRE-QUEUE", "ACTIVE", "ADMIT/MIN", "SOLD-OUT"
    )
}

fn queue_table_row(out: &mut String, s: &QueueStats) -> std::fmt::Result {
    writeln!(
        out,
        "{:<36} {:>9} {:>9} {:>7} {:>11} {:<8} {}",
        s.concert_id,
        s.waiting,
        s.pre_queue,
        s.active,
        s.admitted_last_minute,
        if s.sold_out { "yes" } else { "no" },
        opens_at(s.opens_at_ms).unwrap_or_else(|| "open".to_owned())
    )
}
