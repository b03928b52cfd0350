//! The dead-letter stream: entries that could not be processed, with where they came from and
//! why, for operators to inspect and replay (`imticket-admin dlq …`).
//!
//! A dead-letter entry keeps every field of the original entry and adds:
//! `source_stream` (key), `source_id`, `group`, `deliveries`, `error`, `dead_lettered_at`.

use crate::infra::redis::ConnectionLike;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::delivery::Delivery;
use crate::infra::redis::keys::Keys;
use crate::infra::redis::reply::StreamEntry;
use crate::infra::redis::streams::{self, Topology};

const ADDED: [&str; 6] = [
    "source_stream",
    "source_id",
    "group",
    "deliveries",
    "error",
    "dead_lettered_at",
];

/// The fields of a dead-letter entry for `original` (a source entry's fields).
pub fn fields(
    original: &[(String, String)],
    source_stream: &str,
    source_id: &str,
    group: &str,
    deliveries: u32,
    error: &str,
) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = original
        .iter()
        .filter(|(k, _)| !ADDED.contains(&k.as_str()))
        .cloned()
        .collect();
    fields.extend([
        ("source_stream".to_owned(), source_stream.to_owned()),
        ("source_id".to_owned(), source_id.to_owned()),
        ("group".to_owned(), group.to_owned()),
        ("deliveries".to_owned(), deliveries.to_string()),
        ("error".to_owned(), error.to_owned()),
        (
            "dead_lettered_at".to_owned(),
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
    ]);
    fields
}

/// Adds a dead letter for each of `entries` (with its error) and acks its source entry,
/// atomically: an entry is never both lost and unacked, nor dead-lettered twice by one
/// consumer.
pub(super) async fn move_to_dead_letter(
    conn: &mut (impl ConnectionLike + Topology),
    dead_letter_key: &str,
    stream_key: &str,
    group: &str,
    entries: &[(Delivery, String)],
) -> anyhow::Result<()> {
    let letters: Vec<(String, Vec<(String, String)>)> = entries
        .iter()
        .map(|(delivery, error)| {
            let fields = fields(
                &delivery.fields,
                stream_key,
                &delivery.id,
                group,
                delivery.deliveries,
                error,
            );
            (delivery.id.clone(), fields)
        })
        .collect();
    streams::move_entries(conn, dead_letter_key, stream_key, group, &letters).await
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Id of the dead-letter entry.
    pub id: String,
    pub source_stream: String,
    pub source_id: String,
    pub group: String,
    pub deliveries: u32,
    pub error: String,
    pub dead_lettered_at: String,
    /// The original entry's fields (what a replay publishes again).
    pub original: Vec<(String, String)>,
}

impl DeadLetter {
    fn from_entry(StreamEntry { id, fields }: StreamEntry) -> Self {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Self {
            source_stream: get("source_stream"),
            source_id: get("source_id"),
            group: get("group"),
            deliveries: get("deliveries").parse().unwrap_or(0),
            error: get("error"),
            dead_lettered_at: get("dead_lettered_at"),
            original: fields
                .iter()
                .filter(|(k, _)| !ADDED.contains(&k.as_str()))
                .cloned()
                .collect(),
            id,
        }
    }

    /// A dead-letter stream entry read by someone else (the console's index).
    pub fn from_stream_entry(entry: StreamEntry) -> Self {
        Self::from_entry(entry)
    }

    pub fn original_field(&self, name: &str) -> Option<&str> {
        self.original.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether this entry came from `stream` (a logical name like `payments`, or a full key).
    pub fn is_from(&self, keys: &Keys, stream: &str) -> bool {
        self.source_stream == stream
            || keys.logical_name(&self.source_stream) == Some(stream)
            || crate::events::Stream::from_name(stream).is_some_and(|s| keys.stream_of(&self.source_stream) == Some(s))
    }
}

/// Dead letters, oldest first, optionally only those from one source stream.
pub async fn list(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    stream: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut found = Vec::new();
    streams::each_page(conn, &keys.dead_letter(), 500, |entries| {
        for entry in entries {
            let letter = DeadLetter::from_entry(entry);
            if stream.is_none_or(|s| letter.is_from(keys, s)) {
                found.push(letter);
                if found.len() >= limit {
                    return std::ops::ControlFlow::Break(());
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    })
    .await?;
    Ok(found)
}

pub async fn show(conn: &mut impl ConnectionLike, keys: &Keys, id: &str) -> anyhow::Result<Option<DeadLetter>> {
    let entries = streams::range(conn, &keys.dead_letter(), id, id, None).await?;
    Ok(entries.into_iter().next().map(DeadLetter::from_entry))
}

/// Publishes the original entry again to its source stream (a fresh entry id, the same
/// `event_id`, so a handler that did process it once still has no second effect) and removes
/// the dead letter, atomically. Returns the new entry's id.
pub async fn replay(
    conn: &mut (impl ConnectionLike + Topology),
    keys: &Keys,
    letter: &DeadLetter,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        !letter.source_stream.is_empty(),
        "dead letter {} names no source stream",
        letter.id
    );
    anyhow::ensure!(
        !letter.original.is_empty(),
        "dead letter {} has no original fields",
        letter.id
    );
    streams::republish(
        conn,
        &letter.source_stream,
        &letter.original,
        &keys.dead_letter(),
        &letter.id,
    )
    .await
}

/// Deletes dead letters (all, or those of one source stream). Returns how many.
pub async fn purge(conn: &mut impl ConnectionLike, keys: &Keys, stream: Option<&str>) -> anyhow::Result<usize> {
    let letters = list(conn, keys, stream, usize::MAX).await?;
    for chunk in letters.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|l| l.id.as_str()).collect();
        streams::delete(conn, &keys.dead_letter(), &ids).await?;
    }
    Ok(letters.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_fields_keep_the_original_and_add_the_context() {
        let original = vec![
            ("event_id".to_owned(), "e1".to_owned()),
            ("error".to_owned(), "spoofed".to_owned()),
        ];
        let fields = fields(&original, "imticket:stream:payments", "1-1", "payment", 5, "boom");
        let letter = DeadLetter::from_entry(StreamEntry {
            id: "9-9".into(),
            fields,
        });
        assert_eq!(letter.source_stream, "imticket:stream:payments");
        assert_eq!(
            (letter.source_id.as_str(), letter.group.as_str(), letter.deliveries),
            ("1-1", "payment", 5)
        );
        assert_eq!(letter.error, "boom");
        assert_eq!(letter.original, vec![("event_id".to_owned(), "e1".to_owned())]);
        assert!(letter.is_from(&Keys::new("imticket:"), "payments"));
        assert!(!letter.is_from(&Keys::new("imticket:"), "expiry"));
    }
}
