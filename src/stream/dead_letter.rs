//! The dead-letter stream: entries that could not be processed, with where they came from and
//! why, for operators to inspect and replay (`imticket-admin dlq …`).
//!
//! A dead-letter entry keeps every field of the original entry and adds:
//! `source_stream` (key), `source_id`, `group`, `deliveries`, `error`, `dead_lettered_at`.

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use redis::Value;
use redis::aio::ConnectionLike;
use serde::Serialize;

use super::delivery::Delivery;
use super::resp::{as_array, parse_entry};
use crate::keys::Keys;

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
    conn: &mut impl ConnectionLike,
    dead_letter_key: &str,
    stream_key: &str,
    group: &str,
    entries: &[(Delivery, String)],
) -> anyhow::Result<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (delivery, error) in entries {
        let fields = fields(
            &delivery.fields,
            stream_key,
            &delivery.id,
            group,
            delivery.deliveries,
            error,
        );
        pipe.cmd("XADD").arg(dead_letter_key).arg("*").arg(fields).ignore();
        pipe.cmd("XACK").arg(stream_key).arg(group).arg(&delivery.id).ignore();
    }
    pipe.query_async::<()>(conn).await.context("dead-letter entries")
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
    fn from_entry(id: String, fields: Vec<(String, String)>) -> Self {
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

    pub fn original_field(&self, name: &str) -> Option<&str> {
        self.original.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether this entry came from `stream` (a logical name like `payments`, or a full key).
    pub fn is_from(&self, keys: &Keys, stream: &str) -> bool {
        self.source_stream == stream || keys.logical_name(&self.source_stream) == Some(stream)
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
    let mut start = "-".to_owned();
    loop {
        let page: Value = redis::cmd("XRANGE")
            .arg(keys.dead_letter())
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await
            .context("XRANGE dead letters")?;
        let entries: Vec<_> = as_array(page).into_iter().filter_map(parse_entry).collect();
        let Some((last_id, _)) = entries.last() else { break };
        start = format!("({last_id}");
        let page_len = entries.len();
        for (id, fields) in entries {
            let letter = DeadLetter::from_entry(id, fields);
            if stream.is_none_or(|s| letter.is_from(keys, s)) {
                found.push(letter);
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
        if page_len < 500 {
            break;
        }
    }
    Ok(found)
}

pub async fn show(conn: &mut impl ConnectionLike, keys: &Keys, id: &str) -> anyhow::Result<Option<DeadLetter>> {
    let reply: Value = redis::cmd("XRANGE")
        .arg(keys.dead_letter())
        .arg(id)
        .arg(id)
        .query_async(conn)
        .await
        .context("XRANGE dead letter")?;
    Ok(as_array(reply)
        .into_iter()
        .find_map(parse_entry)
        .map(|(id, fields)| DeadLetter::from_entry(id, fields)))
}

/// Publishes the original entry again to its source stream (a fresh entry id, the same
/// `event_id`, so a handler that did process it once still has no second effect) and removes
/// the dead letter, atomically. Returns the new entry's id.
pub async fn replay(conn: &mut impl ConnectionLike, keys: &Keys, letter: &DeadLetter) -> anyhow::Result<String> {
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
    let (new_id, _deleted): (String, i64) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg(&letter.source_stream)
        .arg("*")
        .arg(&letter.original)
        .cmd("XDEL")
        .arg(keys.dead_letter())
        .arg(&letter.id)
        .query_async(conn)
        .await
        .context("replay dead letter")?;
    Ok(new_id)
}

/// Deletes dead letters (all, or those of one source stream). Returns how many.
pub async fn purge(conn: &mut impl ConnectionLike, keys: &Keys, stream: Option<&str>) -> anyhow::Result<usize> {
    let letters = list(conn, keys, stream, usize::MAX).await?;
    for chunk in letters.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|l| l.id.as_str()).collect();
        let _: i64 = redis::cmd("XDEL")
            .arg(keys.dead_letter())
            .arg(ids)
            .query_async(conn)
            .await
            .context("XDEL")?;
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
        let letter = DeadLetter::from_entry("9-9".into(), fields);
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
