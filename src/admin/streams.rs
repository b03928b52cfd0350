//! `imticket-admin streams`: every stream of the deployment with its groups and consumers.

use std::fmt::Write as _;

use serde::Serialize;

use super::command::{Context, Needs, Run, age};
use crate::events::Stream;
use crate::infra::redis::streams::StreamStats;
use crate::stream::groups::{self, Assessment};

/// A stream's statistics and what its groups say about trimming it (`--json`: the statistics'
/// fields, then `trim`).
#[derive(Serialize)]
struct Assessed {
    #[serde(flatten)]
    stats: StreamStats,
    trim: Assessment,
}

/// Every stream: length, first/last id, the trim point and the group holding it, groups (lag,
/// pending, how they pin) and consumers (idle time).
#[derive(clap::Args)]
pub struct Streams;

impl Run for Streams {
    fn needs(&self) -> Needs {
        Needs::REDIS
    }

    /// Every stream of the deployment: length, first/last id, groups with lag and pending,
    /// and their consumers with idle times.
    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let mut keys: Vec<String> = Stream::ALL.iter().flat_map(|s| cx.keys.stream_keys(*s)).collect();
        keys.push(cx.keys.dead_letter());
        let mut all: Vec<Assessed> = Vec::new();
        let mut conn = cx.redis_connection().await?;
        let (registry, abandon_after) = (&cx.settings.groups, cx.settings.group_abandon_after);
        for key in &keys {
            if let Some((stats, trim)) =
                groups::read_and_assess(&mut conn, &cx.keys, registry, abandon_after, key).await?
            {
                all.push(Assessed { stats, trim });
            }
        }
        if cx.json {
            return Ok(serde_json::to_string_pretty(&all)?);
        }
        let mut out = String::new();
        writeln!(
            out,
            "{:<36} {:>8}  {:<17} {:<17}",
            "STREAM", "LENGTH", "FIRST-ID", "LAST-ID"
        )?;
        for key in &keys {
            let Some(Assessed { stats, trim }) = all.iter().find(|s| &s.stats.key == key) else {
                writeln!(out, "{key:<36} {:>8}  (does not exist yet)", "-")?;
                continue;
            };
            let dash = || "-".to_owned();
            writeln!(
                out,
                "{:<36} {:>8}  {:<17} {:<17}",
                stats.key,
                stats.length,
                stats.first_id.clone().unwrap_or_else(dash),
                stats.last_id.clone().unwrap_or_else(dash)
            )?;
            if !stats.groups.is_empty() {
                let point = trim.trim_point.as_deref().unwrap_or("-");
                match &trim.held_by {
                    Some(group) => writeln!(out, "  trim point {point}, held by group {group}")?,
                    None => writeln!(out, "  trim point {point}, held by no group (all retired or abandoned)")?,
                }
            }
            for (group, standing) in stats.groups.iter().zip(&trim.groups) {
                let lag = group.lag.map_or_else(|| "unknown".to_owned(), |l| l.to_string());
                let oldest = group.oldest_pending_age_ms.map_or_else(|| "-".to_owned(), age);
                let pins = match (standing.abandoned, standing.pins) {
                    (true, _) => format!("{} (abandoned: not pinning)", standing.pinning),
                    (false, true) => format!("{} (pinning)", standing.pinning),
                    (false, false) => format!("{} (not pinning)", standing.pinning),
                };
                writeln!(
                    out,
                    "  group {:<20} lag {:<8} pending {:<6} oldest pending {:<8} last delivered {:<17} {}",
                    group.name, lag, group.pending, oldest, group.last_delivered_id, pins
                )?;
                for consumer in &group.consumers {
                    writeln!(
                        out,
                        "    consumer {:<40} pending {:<6} idle {}",
                        consumer.name,
                        consumer.pending,
                        age(consumer.idle_ms)
                    )?;
                }
            }
        }
        Ok(out)
    }
}
