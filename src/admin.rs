//! `imticket-admin`: operator commands. The binary parses arguments; this module does the work
//! and prints readable tables, or JSON with `--json` for scripts.

use std::fmt::Write as _;

use anyhow::Context;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::events::Stream;
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;
use crate::infra::redis::protocol::EntryId;
use crate::infra::redis::streams::{self, StreamStats};
use crate::infra::redis::waiting_room::{self, QueueStats, WaitingRoom};
use crate::stream::dead_letter::{self, DeadLetter};

pub struct Admin {
    pub keys: Keys,
    pub redis: Option<Redis>,
    pub db: Option<PgPool>,
    pub json: bool,
}

fn age_text(ms: u64) -> String {
    age(ms)
}

fn age(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..120_000 => format!("{:.1}s", ms as f64 / 1000.0),
        120_000..7_200_000 => format!("{:.1}m", ms as f64 / 60_000.0),
        _ => format!("{:.1}h", ms as f64 / 3_600_000.0),
    }
}

/// A dead-letter id as operators type it: a stream entry id `<ms>-<seq>`.
pub fn dead_letter_id(raw: &str) -> anyhow::Result<EntryId> {
    EntryId::parse(raw.trim()).with_context(|| format!("not a dead-letter id: {raw} (expected <ms>-<seq>)"))
}

impl Admin {
    fn redis_handle(&self) -> anyhow::Result<&Redis> {
        self.redis.as_ref().context("REDIS_URL: is required for this command")
    }

    async fn redis(&self) -> anyhow::Result<crate::infra::redis::Connection> {
        self.redis_handle()?.connection().await
    }

    fn db(&self) -> anyhow::Result<&PgPool> {
        self.db.as_ref().context("DATABASE_URL: is required for this command")
    }

    /// Every stream of the deployment: length, first/last id, groups with lag and pending,
    /// and their consumers with idle times.
    pub async fn streams(&mut self) -> anyhow::Result<String> {
        let mut keys: Vec<String> = Stream::ALL.iter().map(|s| self.keys.stream(*s)).collect();
        keys.push(self.keys.dead_letter());
        let mut all: Vec<StreamStats> = Vec::new();
        let mut conn = self.redis().await?;
        for key in &keys {
            if let Some(stats) = streams::stats(&mut conn, key).await? {
                all.push(stats);
            }
        }
        if self.json {
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

    pub async fn dlq_list(&mut self, stream: Option<&str>, limit: usize) -> anyhow::Result<String> {
        let keys = self.keys.clone();
        let letters = dead_letter::list(&mut self.redis().await?, &keys, stream, limit).await?;
        if self.json {
            return Ok(serde_json::to_string_pretty(
                &letters.iter().map(letter_json).collect::<Vec<_>>(),
            )?);
        }
        let mut out = String::new();
        writeln!(
            out,
            "{:<17} {:<14} {:<14} {:>4}  {:<22} {:<36} ERROR",
            "ID", "STREAM", "GROUP", "DLV", "TYPE", "EVENT-ID"
        )?;
        for l in &letters {
            let stream = keys.logical_name(&l.source_stream).unwrap_or(&l.source_stream);
            let mut error = l.error.replace('\n', " ");
            if error.len() > 80 {
                error.truncate(error.char_indices().nth(77).map_or(error.len(), |(i, _)| i));
                error.push_str("...");
            }
            writeln!(
                out,
                "{:<17} {:<14} {:<14} {:>4}  {:<22} {:<36} {}",
                l.id,
                stream,
                l.group,
                l.deliveries,
                l.original_field("type").unwrap_or("?"),
                l.original_field("event_id").unwrap_or("?"),
                error
            )?;
        }
        write!(out, "{} dead letter(s)", letters.len())?;
        Ok(out)
    }

    pub async fn dlq_show(&mut self, id: &str) -> anyhow::Result<String> {
        let keys = self.keys.clone();
        let id = dead_letter_id(id)?.to_string();
        let letter = dead_letter::show(&mut self.redis().await?, &keys, &id)
            .await?
            .with_context(|| format!("no dead letter with id {id}"))?;
        if self.json {
            return Ok(serde_json::to_string_pretty(&letter_json(&letter))?);
        }
        let mut out = String::new();
        for (k, v) in [
            ("id", &letter.id),
            ("source_stream", &letter.source_stream),
            ("source_id", &letter.source_id),
            ("group", &letter.group),
            ("deliveries", &letter.deliveries.to_string()),
            ("dead_lettered_at", &letter.dead_lettered_at),
            ("error", &letter.error),
        ] {
            writeln!(out, "{k:<17} {v}")?;
        }
        writeln!(out, "original entry:")?;
        for (k, v) in &letter.original {
            writeln!(out, "  {k:<15} {v}")?;
        }
        Ok(out.trim_end().to_owned())
    }

    /// Replays one dead letter, or all of them (optionally of one stream).
    pub async fn dlq_replay(&mut self, id: Option<&str>, stream: Option<&str>) -> anyhow::Result<String> {
        let keys = self.keys.clone();
        let conn = &mut self.redis().await?;
        let letters = match id {
            Some(id) => {
                let id = dead_letter_id(id)?.to_string();
                vec![
                    dead_letter::show(conn, &keys, &id)
                        .await?
                        .with_context(|| format!("no dead letter with id {id}"))?,
                ]
            }
            None => dead_letter::list(conn, &keys, stream, usize::MAX).await?,
        };
        let mut replayed = Vec::new();
        for letter in &letters {
            let new_id = dead_letter::replay(conn, &keys, letter).await?;
            replayed.push(json!({"dead_letter_id": letter.id, "stream": letter.source_stream, "new_id": new_id}));
        }
        if self.json {
            return Ok(serde_json::to_string_pretty(&replayed)?);
        }
        let mut out = String::new();
        for r in &replayed {
            writeln!(
                out,
                "replayed {} to {} as {}",
                r["dead_letter_id"], r["stream"], r["new_id"]
            )?;
        }
        write!(out, "{} dead letter(s) replayed", replayed.len())?;
        Ok(out.replace('"', ""))
    }

    pub async fn dlq_purge(&mut self, stream: Option<&str>) -> anyhow::Result<String> {
        let keys = self.keys.clone();
        let purged = dead_letter::purge(&mut self.redis().await?, &keys, stream).await?;
        Ok(if self.json {
            json!({"purged": purged}).to_string()
        } else {
            format!("{purged} dead letter(s) deleted")
        })
    }

    /// `queue list`: every open line (`queue:open`), the longest first.
    pub async fn queue_list(&mut self) -> anyhow::Result<String> {
        let redis = self.redis_handle()?;
        let mut all = Vec::new();
        for concert_id in waiting_room::open_lines(redis, &self.keys).await? {
            all.push(
                WaitingRoom::new(redis, &self.keys, concert_id)
                    .stats(concert_id)
                    .await?,
            );
        }
        all.sort_by_key(|s| (std::cmp::Reverse(s.waiting + s.pre_queue + s.active), s.concert_id));
        if self.json {
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
    pub async fn queue_stats(&mut self, concert_id: Uuid) -> anyhow::Result<String> {
        let room = WaitingRoom::new(self.redis_handle()?, &self.keys, concert_id);
        let exists = room.exists().await?;
        let stats = room.stats(concert_id).await?;
        if self.json {
            return Ok(serde_json::to_string_pretty(&queue_json(&stats, exists))?);
        }
        if !exists {
            return Ok(format!("no waiting room for {concert_id}"));
        }
        let mut out = queue_table_header();
        queue_table_row(&mut out, &stats)?;
        Ok(out.trim_end().to_owned())
    }

    /// Checks the invariants (I1–I4 in the database, I5 as far as it shows: the outbox and the
    /// streams' pending entries). Prints each violation; an error (exit 1) if there is any.
    pub async fn audit(&mut self, claim_idle_ms: u64) -> anyhow::Result<String> {
        let mut violations = {
            let mut conn = self.db()?.acquire().await.context("connect to PostgreSQL")?;
            crate::infra::postgres::audit::database(&mut conn).await?
        };
        if let Ok(mut conn) = self.redis().await {
            for stream in Stream::ALL {
                let key = self.keys.stream(stream);
                let Some(stats) = streams::stats(&mut conn, &key).await? else {
                    continue;
                };
                for group in stats.groups {
                    if let Some(age) = group.oldest_pending_age_ms
                        && age > claim_idle_ms
                    {
                        violations.push(crate::infra::postgres::audit::Violation {
                            check: "I5",
                            detail: format!(
                                "{key} group {}: an entry pending for {} (claim idle {})",
                                group.name,
                                age_text(age),
                                age_text(claim_idle_ms)
                            ),
                        });
                    }
                }
            }
        }
        let report = if self.json {
            serde_json::to_string_pretty(&violations)?
        } else {
            let mut out = String::new();
            for v in &violations {
                writeln!(out, "{}  {}", v.check, v.detail)?;
            }
            write!(out, "{} violation(s)", violations.len())?;
            out
        };
        anyhow::ensure!(violations.is_empty(), "{report}");
        Ok(report)
    }

    pub async fn outbox_status(&mut self) -> anyhow::Result<String> {
        let mut conn = self.db()?.acquire().await.context("connect to PostgreSQL")?;
        let status = crate::infra::postgres::outbox::status(&mut conn).await?;
        if self.json {
            return Ok(serde_json::to_string_pretty(&status)?);
        }
        let oldest = status.oldest_unpublished_at.map_or_else(
            || "-".to_owned(),
            |at| {
                format!(
                    "{at} ({} ago)",
                    age((chrono::Utc::now() - at).num_milliseconds().max(0) as u64)
                )
            },
        );
        Ok(format!(
            "unpublished          {}\noldest unpublished   {}\npublished (retained) {}\nlast published at    {}",
            status.unpublished,
            oldest,
            status.published_retained,
            status
                .last_published_at
                .map_or_else(|| "-".to_owned(), |t| t.to_string())
        ))
    }
}

/// A concert id as operators type it.
pub fn concert_id(raw: &str) -> anyhow::Result<Uuid> {
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
        "active": s.active, "admitted_last_minute": s.admitted_last_minute, "sold_out": s.sold_out,
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

fn letter_json(l: &DeadLetter) -> serde_json::Value {
    json!({
        "id": l.id, "source_stream": l.source_stream, "source_id": l.source_id, "group": l.group,
        "deliveries": l.deliveries, "error": l.error, "dead_lettered_at": l.dead_lettered_at,
        "original": l.original.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>(),
    })
}
