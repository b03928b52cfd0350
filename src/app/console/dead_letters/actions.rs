//! Replay and purge, in bounded batches, each recorded in the console's audit log.

use std::collections::HashSet;

use anyhow::Context as _;
use serde::Serialize;
use uuid::Uuid;

use crate::app::console::Session;
use crate::app::{AppError, Deps};
use crate::infra::redis::streams;
use crate::stream::dead_letter::{self};

use super::BATCH;
use super::index::{Scope, ids_in};

/// What a replay or purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Done {
    /// Replayed (published again) or deleted.
    pub done: u64,
    /// Asked for but no longer there (replayed or purged already, e.g. a second click).
    pub gone: u64,
    /// Still in the scope after this batch.
    pub remaining: u64,
    /// Dead letters of an event this batch already published again (another group's letter
    /// of the same event): removed, since every group of the stream reads the one replay.
    pub merged: u64,
}

/// Replays one dead letter (`id`) or the first [`BATCH`] of `scope`: each published again to
/// its source stream (same `event_id`: a handler that already applied it does nothing) and
/// removed. Every group of the stream reads the replay, so of several letters of one event
/// (one per group that failed it) the batch publishes one and removes the others. A letter another click is replaying right now is left to that click (a short
/// Redis claim), so a double click replays nothing twice. Recorded in the audit log.
pub async fn replay(deps: &Deps, session: &Session, scope: &Scope, id: Option<&str>) -> Result<(Done, Uuid), AppError> {
    let ids = match id {
        Some(id) => vec![id.to_owned()],
        None => ids_in(deps, scope, None, BATCH).await?.0,
    };
    let mut conn = deps.redis.connection().await?;
    let mut done = Done::default();
    let mut published: HashSet<(String, String)> = HashSet::new();
    for chunk in ids.chunks(100) {
        for id in chunk {
            let claim = format!("{}console:replaying:{id}", deps.keys.prefix());
            let claimed: Option<String> = redis::cmd("SET")
                .arg(&claim)
                .arg(session.user_id.to_string())
                .arg("NX")
                .arg("PX")
                .arg(60_000)
                .query_async(&mut conn)
                .await
                .context("claim dead letter for replay")?;
            if claimed.is_none() {
                done.gone += 1;
                continue;
            }
            match dead_letter::show(&mut conn, &deps.keys, id).await? {
                Some(letter) => {
                    let event = (
                        letter.source_stream.clone(),
                        letter.original_field("event_id").unwrap_or(&letter.id).to_owned(),
                    );
                    if published.contains(&event) {
                        streams::delete(&mut conn, &deps.keys.dead_letter(), &[id.as_str()]).await?;
                        done.merged += 1;
                    } else {
                        dead_letter::replay(&mut conn, &deps.keys, &letter).await?;
                        published.insert(event);
                        done.done += 1;
                    }
                }
                None => done.gone += 1,
            }
        }
    }
    done.remaining = match id {
        Some(_) => 0,
        None => ids_in(deps, scope, None, 0).await?.1,
    };
    let target = id.map_or_else(|| scope.describe(), |id| format!("dead letter {id}"));
    let mut outcome = format!(
        "{} replayed, {} already gone, {} remaining",
        done.done, done.gone, done.remaining
    );
    if done.merged > 0 {
        outcome.push_str(&format!(
            ", {} merged (another group's letter of an event replayed here)",
            done.merged
        ));
    }
    let action =
        crate::app::console::record_action(deps, session, "replay", &target, &outcome, serde_json::json!(done)).await?;
    Ok((done, action))
}

/// Deletes every dead letter of `scope` (never without the confirmation the page asks for).
pub async fn purge(deps: &Deps, session: &Session, scope: &Scope) -> Result<(Done, Uuid), AppError> {
    let (ids, _) = ids_in(deps, scope, None, usize::MAX).await?;
    let key = deps.keys.dead_letter();
    let mut conn = deps.redis.connection().await?;
    let mut done = Done::default();
    for chunk in ids.chunks(500) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let deleted = streams::delete(&mut conn, &key, &chunk).await?;
        done.done += deleted;
        done.gone += chunk.len() as u64 - deleted;
    }
    let outcome = format!("{} deleted, {} already gone", done.done, done.gone);
    let action = crate::app::console::record_action(
        deps,
        session,
        "purge",
        &scope.describe(),
        &outcome,
        serde_json::json!(done),
    )
    .await?;
    Ok((done, action))
}
