//! `imticket-admin dlq …`: the dead-letter stream, listed, shown, replayed and purged.

use std::fmt::Write as _;

use anyhow::Context as _;
use serde_json::json;

use super::command::{Context, Needs, Run};
use crate::infra::redis::protocol::EntryId;
use crate::stream::dead_letter::{self, DeadLetter};

#[derive(clap::Subcommand)]
pub enum Dlq {
    /// Dead letters, oldest first.
    List {
        /// Only those from this stream (logical name like `payments`, or the key).
        #[arg(long)]
        stream: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One dead letter with every field of its original entry.
    Show { id: String },
    /// Publish dead letters to their source stream again (a fresh entry, the same event_id).
    #[command(
        override_usage = "imticket-admin dlq replay <ID>\n       imticket-admin dlq replay --all [--stream <STREAM>]"
    )]
    Replay(Replay),
    /// Delete dead letters (all, or one stream's). Needs --yes.
    Purge {
        #[arg(long)]
        stream: Option<String>,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

/// One dead letter, or `--all` (optionally of one `--stream`).
#[derive(clap::Args)]
pub struct Replay {
    /// The dead letter's id.
    #[arg(required_unless_present = "all", conflicts_with_all = ["all", "stream"])]
    id: Option<String>,
    /// Every dead letter (with --stream: of that stream).
    #[arg(long)]
    all: bool,
    /// With --all: only the dead letters of this stream (logical name like `payments`, or the key).
    #[arg(long)]
    stream: Option<String>,
}

impl Run for Dlq {
    fn needs(&self) -> Needs {
        Needs::REDIS
    }

    fn check(&self) -> anyhow::Result<()> {
        match self {
            Dlq::Show { id } | Dlq::Replay(Replay { id: Some(id), .. }) => dead_letter_id(id).map(drop),
            Dlq::Purge { yes: false, .. } => anyhow::bail!("refusing to delete dead letters without --yes"),
            _ => Ok(()),
        }
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        match self {
            Dlq::List { stream, limit } => list(cx, stream.as_deref(), limit).await,
            Dlq::Show { id } => show(cx, &id).await,
            Dlq::Replay(Replay { id, all: _, stream }) => replay(cx, id.as_deref(), stream.as_deref()).await,
            Dlq::Purge { stream, .. } => purge(cx, stream.as_deref()).await,
        }
    }
}

/// A dead-letter id as operators type it: a stream entry id `<ms>-<seq>`.
fn dead_letter_id(raw: &str) -> anyhow::Result<EntryId> {
    EntryId::parse(raw.trim()).with_context(|| format!("not a dead-letter id: {raw} (expected <ms>-<seq>)"))
}

async fn list(cx: &Context, stream: Option<&str>, limit: usize) -> anyhow::Result<String> {
    let keys = cx.keys.clone();
    let letters = dead_letter::list(&mut cx.redis_connection().await?, &keys, stream, limit).await?;
    if cx.json {
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

async fn show(cx: &Context, id: &str) -> anyhow::Result<String> {
    let keys = cx.keys.clone();
    let id = dead_letter_id(id)?.to_string();
    let letter = dead_letter::show(&mut cx.redis_connection().await?, &keys, &id)
        .await?
        .with_context(|| format!("no dead letter with id {id}"))?;
    if cx.json {
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
async fn replay(cx: &Context, id: Option<&str>, stream: Option<&str>) -> anyhow::Result<String> {
    let keys = cx.keys.clone();
    let conn = &mut cx.redis_connection().await?;
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
    if cx.json {
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

async fn purge(cx: &Context, stream: Option<&str>) -> anyhow::Result<String> {
    let keys = cx.keys.clone();
    let purged = dead_letter::purge(&mut cx.redis_connection().await?, &keys, stream).await?;
    Ok(if cx.json {
        json!({"purged": purged}).to_string()
    } else {
        format!("{purged} dead letter(s) deleted")
    })
}

fn letter_json(l: &DeadLetter) -> serde_json::Value {
    json!({
        "id": l.id, "source_stream": l.source_stream, "source_id": l.source_id, "group": l.group,
        "deliveries": l.deliveries, "error": l.error, "dead_lettered_at": l.dead_lettered_at,
        "original": l.original.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>(),
    })
}
