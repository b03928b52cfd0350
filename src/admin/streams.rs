//! `imticket-admin streams`: every stream of the deployment with its groups and consumers.

use std::fmt::Write as _;

use super::command::{Context, Needs, Run, age};
use crate::events::Stream;
use crate::infra::redis::streams::{self, StreamStats};

/// Every stream: length, first/last id, groups (lag, pending) and consumers (idle time).
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
        let mut all: Vec<StreamStats> = Vec::new();
        let mut conn = cx.redis_connection().await?;
        for key in &keys {
            if let Some(stats) = streams::stats(&mut conn, key).await? {
                all.push(stats);
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
            let Some(stats) = all.iter().find(|s| &s.key == key) else {
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
            for group in &stats.groups {
                let lag = group.lag.map_or_else(|| "unknown".to_owned(), |l| l.to_string());
                let oldest = group.oldest_pending_age_ms.map_or_else(|| "-".to_owned(), age);
                writeln!(
                    out,
                    "  group {:<20} lag {:<8} pending {:<6} oldest pending {:<8} last delivered {}",
                    group.name, lag, group.pending, oldest, group.last_delivered_id
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
