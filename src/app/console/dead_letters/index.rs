//! The index of the dead-letter stream each process keeps: every letter's id under its group
//! (source stream, consumer group, normalised error), extended with what was added since the
//! last look and rebuilt when entries went away; the scopes actions and pages cover.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::app::{AppError, Deps};
use crate::infra::redis::protocol::{EntryId, after};
use crate::infra::redis::reply::{StreamEntry, StreamSummary};
use crate::infra::redis::streams;
use crate::stream::dead_letter::DeadLetter;

const SCAN_PAGE: usize = 1000;

/// Dead letters sharing a source stream, group and normalised error.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// A short stable id for URLs (hash of stream, group and error).
    pub id: String,
    pub stream: String,
    pub group: String,
    /// The error with ids, numbers and addresses replaced by placeholders.
    pub error: String,
    /// The newest raw error of the group.
    pub sample: String,
    pub count: u64,
    pub first_id: String,
    pub last_id: String,
    pub event_types: Vec<String>,
    #[serde(skip)]
    pub(super) ids: Vec<String>,
}

/// This process's index of the dead-letter stream.
#[derive(Default)]
pub struct Index {
    key: String,
    entries_added: Option<u64>,
    max_deleted: Option<String>,
    scanned_to: Option<String>,
    groups: BTreeMap<String, Group>,
}

impl Index {
    fn reset(&mut self, key: &str) {
        *self = Index {
            key: key.to_owned(),
            ..Index::default()
        };
    }

    fn add(&mut self, letter: &DeadLetter, keys: &crate::infra::redis::keys::Keys) {
        let stream = keys
            .logical_name(&letter.source_stream)
            .unwrap_or(&letter.source_stream)
            .to_owned();
        let error = normalise(&letter.error);
        let id = group_id(&stream, &letter.group, &error);
        let event_type = letter.original_field("type").unwrap_or("?").to_owned();
        let group = self.groups.entry(id.clone()).or_insert_with(|| Group {
            id,
            stream,
            group: letter.group.clone(),
            error,
            sample: String::new(),
            count: 0,
            first_id: letter.id.clone(),
            last_id: letter.id.clone(),
            event_types: Vec::new(),
            ids: Vec::new(),
        });
        group.count += 1;
        group.sample = letter.error.clone();
        group.last_id = letter.id.clone();
        if !group.event_types.contains(&event_type) {
            group.event_types.push(event_type);
        }
        group.ids.push(letter.id.clone());
    }
}

pub(super) fn group_id(stream: &str, group: &str, error: &str) -> String {
    let digest = Sha256::digest(format!("{stream}\0{group}\0{error}").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// An error as it groups: UUIDs, stream ids, numbers and long hex runs replaced by
/// placeholders, whitespace collapsed, at most 200 characters.
pub fn normalise(error: &str) -> String {
    let mut out = String::with_capacity(error.len().min(200));
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.is_empty() {
            return;
        }
        let placeholder = if Uuid::parse_str(token).is_ok() {
            Some("<uuid>")
        } else if token.chars().any(|c| c.is_ascii_digit())
            && token.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '.')
        {
            Some("<n>")
        } else if token.len() >= 16 && token.chars().all(|c| c.is_ascii_hexdigit()) {
            Some("<hex>")
        } else {
            None
        };
        out.push_str(placeholder.unwrap_or(token));
        token.clear();
    };
    for c in error.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || (c == '.' && token.chars().all(|t| t.is_ascii_digit())) {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            if c.is_whitespace() {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            } else {
                out.push(c);
            }
        }
    }
    flush(&mut token, &mut out);
    let out = out.trim();
    match out.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out.to_owned(),
    }
}

async fn summary_of(
    conn: &mut impl crate::infra::redis::ConnectionLike,
    key: &str,
) -> anyhow::Result<Option<StreamSummary>> {
    match redis::cmd("XINFO").arg("STREAM").arg(key).query_async(conn).await {
        Ok(summary) => Ok(Some(summary)),
        Err(err) if err.code() == Some("ERR") => Ok(None),
        Err(err) => Err(anyhow::Error::new(err).context("XINFO STREAM dead letters")),
    }
}

/// Brings this process's index up to date: the entries added since it last looked, or all of
/// them again when some went away.
pub(super) async fn refreshed(deps: &Deps) -> Result<tokio::sync::MutexGuard<'_, Index>, AppError> {
    let key = deps.keys.dead_letter();
    let mut index = deps.console.dead_letters.lock().await;
    let mut conn = deps.redis.connection().await?;
    let Some(summary) = summary_of(&mut conn, &key).await? else {
        index.reset(&key);
        return Ok(index);
    };
    // Entries went away when the highest deleted id moved, or when the stream is shorter than
    // what the index holds plus what was added since (a deletion below that id, a trim).
    let held: u64 = index.groups.values().map(|g| g.count).sum();
    let added_since = summary
        .entries_added
        .unwrap_or(0)
        .saturating_sub(index.entries_added.unwrap_or(0));
    let went_away = index.key != key
        || index.max_deleted != summary.max_deleted_id
        || summary.entries_added < index.entries_added
        || held + added_since != summary.length;
    if went_away {
        index.reset(&key);
    }
    if index.entries_added == summary.entries_added && index.entries_added.is_some() {
        return Ok(index);
    }
    let mut start = index.scanned_to.as_deref().map_or_else(|| "-".to_owned(), after);
    loop {
        let entries: Vec<StreamEntry> = streams::range(&mut conn, &key, &start, "+", Some(SCAN_PAGE)).await?;
        let full = entries.len() >= SCAN_PAGE;
        for entry in entries {
            index.scanned_to = Some(entry.id.clone());
            let letter = DeadLetter::from_stream_entry(entry);
            index.add(&letter, &deps.keys);
        }
        match (&index.scanned_to, full) {
            (Some(last), true) => start = after(last),
            _ => break,
        }
    }
    index.entries_added = summary.entries_added;
    index.max_deleted = summary.max_deleted_id;
    Ok(index)
}

/// The groups, the largest first, and the total.
pub async fn groups(deps: &Deps) -> Result<(u64, Vec<Group>), AppError> {
    let index = refreshed(deps).await?;
    let mut groups: Vec<Group> = index
        .groups
        .values()
        .cloned()
        .map(|mut g| {
            g.ids = Vec::new();
            g
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_id.cmp(&b.first_id)));
    Ok((groups.iter().map(|g| g.count).sum(), groups))
}

/// Which dead letters a page or an action covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// One group's (its [`Group::id`]).
    pub group: Option<String>,
    /// One source stream's (`payments`, or a partition `payments:2`).
    pub stream: Option<String>,
}

impl Scope {
    pub fn describe(&self) -> String {
        match (&self.group, &self.stream) {
            (Some(g), _) => format!("group {g}"),
            (None, Some(s)) => format!("stream {s}"),
            (None, None) => "all".to_owned(),
        }
    }
}

/// The ids of the dead letters in `scope` after `after`, oldest first, at most `limit`, and
/// how many there are in the scope in all.
pub(super) async fn ids_in(
    deps: &Deps,
    scope: &Scope,
    after_id: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, u64), AppError> {
    let index = refreshed(deps).await?;
    let matching: Vec<&Group> = index
        .groups
        .values()
        .filter(|g| scope.group.as_ref().is_none_or(|id| &g.id == id))
        .filter(|g| {
            scope
                .stream
                .as_ref()
                .is_none_or(|s| &g.stream == s || g.stream.split(':').next() == Some(s.as_str()))
        })
        .collect();
    let total = matching.iter().map(|g| g.count).sum();
    let floor = after_id.and_then(EntryId::parse);
    let mut ids: Vec<(EntryId, &String)> = matching
        .iter()
        .flat_map(|g| g.ids.iter())
        .filter_map(|id| EntryId::parse(id).map(|e| (e, id)))
        .filter(|(e, _)| floor.is_none_or(|f| *e > f))
        .collect();
    ids.sort_unstable();
    Ok((ids.into_iter().take(limit).map(|(_, id)| id.clone()).collect(), total))
}

pub(super) async fn fetch(deps: &Deps, ids: &[String]) -> Result<Vec<DeadLetter>, AppError> {
    let key = deps.keys.dead_letter();
    let mut conn = deps.redis.connection().await?;
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("XRANGE").arg(&key).arg(id).arg(id);
    }
    let found: Vec<Vec<StreamEntry>> = if ids.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut conn).await.context("XRANGE dead letters")?
    };
    Ok(found.into_iter().flatten().map(DeadLetter::from_stream_entry).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_group_by_their_shape_not_their_ids() {
        let a = normalise("reservation 0192f3a4-7b1c-7d2e-8f90-123456789abc not found after 3 attempts");
        let b = normalise("reservation 0192f3a4-7b1c-7d2e-8f90-cba987654321 not found after 12 attempts");
        assert_eq!(a, b);
        assert_eq!(a, "reservation <uuid> not found after <n> attempts");
        assert_eq!(normalise("entry 1712-0  timed  out"), "entry <n> timed out");
        assert_ne!(
            normalise("payload: missing field `amount`"),
            normalise("payload: missing field `user_id`")
        );
        assert!(normalise(&"x ".repeat(300)).chars().count() <= 201);
    }
}
