//! Each reply shape ImTicket reads, parsed once into a typed value ([`FromRedisValue`]), so no
//! caller indexes a raw array. Where the `redis` crate already types a reply well
//! (`XINFO GROUPS`, `XINFO CONSUMERS`, `XPENDING`), its types are used instead
//! ([`redis::streams`]); stream entries are parsed here because their field order matters
//! (a dead letter shows the fields as they were written) and the crate keeps them in a map.

use redis::{ErrorKind, FromRedisValue, RedisError, RedisResult, Value};

fn type_error(what: &'static str, got: &Value) -> RedisError {
    RedisError::from((ErrorKind::TypeError, what, format!("{got:?}")))
}

/// The items of an array reply (RESP2 array, RESP3 set or map flattened to pairs).
fn items(value: &Value) -> Option<Vec<&Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items.iter().collect()),
        Value::Map(pairs) => Some(pairs.iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// As [`items`], taking the reply over.
fn into_items(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

/// As [`text`], taking the bytes over instead of copying them (the consumer's hot path).
fn into_text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(
            String::from_utf8(bytes).unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
        ),
        other => text(&other),
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

/// Field `name` of a flat `[name, value, …]` reply (the shape of `XINFO`).
fn field<'a>(flat: &[&'a Value], name: &str) -> Option<&'a Value> {
    flat.chunks(2)
        .find(|pair| pair.first().and_then(|k| text(k)).as_deref() == Some(name))
        .and_then(|pair| pair.get(1).copied())
}

/// One stream entry, `[id, [field, value, …]]`, with its fields in the order they were written.
/// A nil (a pending entry whose stream entry was deleted) reads as `None` through
/// `Option<StreamEntry>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: String,
    pub fields: Vec<(String, String)>,
}

impl StreamEntry {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl FromRedisValue for StreamEntry {
    fn from_redis_value(v: &Value) -> RedisResult<Self> {
        let parts = items(v).ok_or_else(|| type_error("a stream entry", v))?;
        let id = parts
            .first()
            .and_then(|id| text(id))
            .ok_or_else(|| type_error("a stream entry id", v))?;
        let flat = parts.get(1).and_then(|f| items(f)).unwrap_or_default();
        let fields = flat
            .chunks(2)
            .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
            .collect();
        Ok(Self { id, fields })
    }

    fn from_owned_redis_value(v: Value) -> RedisResult<Self> {
        let Value::Array(parts) = v else {
            return Self::from_redis_value(&v);
        };
        let mut parts = parts.into_iter();
        let id = parts
            .next()
            .and_then(into_text)
            .ok_or_else(|| type_error("a stream entry id", &Value::Nil))?;
        let flat = parts.next().and_then(into_items).unwrap_or_default();
        let mut fields = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
            if let (Some(name), Some(value)) = (into_text(name), into_text(value)) {
                fields.push((name, value));
            }
        }
        Ok(Self { id, fields })
    }
}

/// The entries of an `XREADGROUP` reply, `[[key, [entry, …]], …]`; nil (nothing new within the
/// block time) is no entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadEntries(pub Vec<StreamEntry>);

impl FromRedisValue for ReadEntries {
    fn from_redis_value(v: &Value) -> RedisResult<Self> {
        if matches!(v, Value::Nil) {
            return Ok(Self::default());
        }
        let streams = items(v).ok_or_else(|| type_error("an XREADGROUP reply", v))?;
        let mut entries = Vec::new();
        // RESP2: [[key, entries], …]; RESP3: a map key → entries, flattened to [key, entries, …].
        let per_stream: Vec<&Value> = if matches!(v, Value::Map(_)) {
            streams.chunks(2).filter_map(|pair| pair.get(1).copied()).collect()
        } else {
            streams
                .iter()
                .filter_map(|s| items(s).and_then(|parts| parts.get(1).copied()))
                .collect()
        };
        for list in per_stream {
            for entry in items(list).unwrap_or_default() {
                entries.push(StreamEntry::from_redis_value(entry)?);
            }
        }
        Ok(Self(entries))
    }

    fn from_owned_redis_value(v: Value) -> RedisResult<Self> {
        if matches!(v, Value::Nil) {
            return Ok(Self::default());
        }
        let resp3 = matches!(v, Value::Map(_));
        let Some(streams) = into_items(v) else {
            return Err(type_error("an XREADGROUP reply", &Value::Nil));
        };
        let per_stream: Vec<Value> = if resp3 {
            let mut lists = Vec::new();
            let mut flat = streams.into_iter();
            while let (Some(_key), Some(list)) = (flat.next(), flat.next()) {
                lists.push(list);
            }
            lists
        } else {
            streams
                .into_iter()
                .filter_map(|s| into_items(s).and_then(|parts| parts.into_iter().nth(1)))
                .collect()
        };
        let mut entries = Vec::new();
        for list in per_stream {
            for entry in into_items(list).unwrap_or_default() {
                entries.push(StreamEntry::from_owned_redis_value(entry)?);
            }
        }
        Ok(Self(entries))
    }
}

/// `XINFO STREAM`: the length and the first and last entries' ids (none while empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    pub length: u64,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    /// Every entry ever added (Redis 7: `entries-added`), so a rate is the difference of two
    /// readings whatever was trimmed or deleted in between.
    pub entries_added: Option<u64>,
    /// The highest id ever deleted (`max-deleted-entry-id`; `0-0` if none).
    pub max_deleted_id: Option<String>,
}

impl FromRedisValue for StreamSummary {
    fn from_redis_value(v: &Value) -> RedisResult<Self> {
        let flat = items(v).ok_or_else(|| type_error("an XINFO STREAM reply", v))?;
        let entry_id = |name: &str| {
            field(&flat, name)
                .and_then(items)
                .and_then(|parts| parts.first().and_then(|id| text(id)))
        };
        Ok(Self {
            length: field(&flat, "length").and_then(int).unwrap_or(0).max(0) as u64,
            first_id: entry_id("first-entry"),
            last_id: entry_id("last-entry"),
            entries_added: field(&flat, "entries-added").and_then(int).map(|n| n.max(0) as u64),
            max_deleted_id: field(&flat, "max-deleted-entry-id").and_then(text),
        })
    }
}

/// One slot of the waiting room as its scripts answer (`lua/queue_prelude.lua`, `view`):
/// `{entry, status, number, opens_at, sold_out, admitted in the last minute, now, oldest
/// admission}`, read into the domain's typed view.
impl FromRedisValue for crate::domain::queue::EntryView {
    fn from_redis_value(v: &Value) -> RedisResult<Self> {
        use crate::domain::queue::{EntryView, Standing};
        let parts = items(v).ok_or_else(|| type_error("a waiting-room reply", v))?;
        let at = |i: usize| parts.get(i).copied();
        let number = at(2).and_then(int).unwrap_or(0);
        let position = number.max(1) as u64;
        let standing = match at(1).and_then(text).as_deref() {
            Some("active") => Standing::Active { until_ms: number },
            Some("pre_queue") => Standing::PreQueue,
            Some("waiting") => Standing::Waiting { position },
            Some("sold_out") => Standing::SoldOut { position },
            Some("done") => Standing::Done,
            Some("expired") => Standing::Expired,
            _ => return Err(type_error("a waiting-room status", v)),
        };
        let entry = at(0)
            .and_then(text)
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| type_error("an entry id in a waiting-room reply", v))?;
        let number_at = |i: usize| at(i).and_then(int).unwrap_or(0);
        Ok(EntryView {
            entry,
            standing,
            opens_at_ms: number_at(3),
            sold_out: number_at(4) == 1,
            admitted_last_minute: number_at(5),
            now_ms: number_at(6),
            oldest_admission_ms: number_at(7),
        })
    }
}

/// What one admission round did (`lua/queue_admit.lua`):
/// `{admitted, expired, waiting, active, open (0/1), wait ms of each admitted…}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmitReport {
    pub admitted: u64,
    pub expired: u64,
    pub waiting: u64,
    pub active: u64,
    /// Whether the sale is open (admission may happen at all).
    pub open: bool,
    /// How long each admitted entry waited, join to admission (ms).
    pub waits_ms: Vec<u64>,
    /// The entries admitted, in line order.
    pub entries: Vec<AdmittedEntry>,
    /// When the admitted entries' active slots end (ms since the epoch; 0 if none).
    pub active_until_ms: u64,
}

/// One entry an admission let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedEntry {
    pub entry_id: String,
    pub user_id: String,
}

impl FromRedisValue for AdmitReport {
    fn from_redis_value(v: &Value) -> RedisResult<Self> {
        let all = items(v).ok_or_else(|| type_error("an admission reply", v))?;
        let at = |i: usize| all.get(i).and_then(|n| int(n)).unwrap_or(0).max(0) as u64;
        let mut waits_ms = Vec::new();
        let mut entries = Vec::new();
        for admitted in all.get(6..).unwrap_or_default().chunks(3) {
            let [wait, entry, user] = admitted else {
                return Err(type_error("an admitted entry (wait, entry, user)", v));
            };
            waits_ms.push(int(wait).unwrap_or(0).max(0) as u64);
            entries.push(AdmittedEntry {
                entry_id: text(entry).unwrap_or_default(),
                user_id: text(user).unwrap_or_default(),
            });
        }
        Ok(Self {
            admitted: at(0),
            expired: at(1),
            waiting: at(2),
            active: at(3),
            open: at(4) == 1,
            active_until_ms: at(5),
            waits_ms,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::queue::{EntryView, Standing};

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_keep_their_field_order_and_nil_is_none() {
        let entry = Value::Array(vec![
            bulk("1-1"),
            Value::Array(vec![bulk("b"), bulk("2"), bulk("a"), bulk("1")]),
        ]);
        let parsed = StreamEntry::from_redis_value(&entry).unwrap();
        assert_eq!(parsed.id, "1-1");
        assert_eq!(parsed.fields, vec![("b".into(), "2".into()), ("a".into(), "1".into())]);
        assert_eq!(parsed.field("a"), Some("1"));
        assert_eq!(Option::<StreamEntry>::from_redis_value(&Value::Nil).unwrap(), None);
    }

    #[test]
    fn a_read_with_nothing_new_is_empty() {
        assert_eq!(
            ReadEntries::from_redis_value(&Value::Nil).unwrap(),
            ReadEntries::default()
        );
        let read = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("f"), bulk("v")]),
            ])]),
        ])]);
        assert_eq!(ReadEntries::from_redis_value(&read).unwrap().0.len(), 1);
        let owned = ReadEntries::from_owned_redis_value(read.clone()).unwrap();
        assert_eq!(
            owned,
            ReadEntries::from_redis_value(&read).unwrap(),
            "owned and borrowed agree"
        );
        assert_eq!(owned.0[0].fields, vec![("f".to_owned(), "v".to_owned())]);
    }

    #[test]
    fn waiting_room_views_are_typed() {
        let reply = |status: &str, number: i64| {
            Value::Array(vec![
                bulk("0193b1c4-0000-7000-8000-000000000000"),
                bulk(status),
                Value::Int(number),
                Value::Int(0),
                Value::Int(0),
                Value::Int(3),
                Value::Int(1000),
                Value::Int(900),
            ])
        };
        let view = EntryView::from_redis_value(&reply("waiting", 7)).unwrap();
        assert_eq!(view.standing, Standing::Waiting { position: 7 });
        assert_eq!((view.admitted_last_minute, view.now_ms), (3, 1000));
        let active = EntryView::from_redis_value(&reply("active", 5000)).unwrap();
        assert_eq!(active.standing, Standing::Active { until_ms: 5000 });
        assert_eq!(
            EntryView::from_redis_value(&reply("done", 0)).unwrap().standing,
            Standing::Done
        );
        assert!(EntryView::from_redis_value(&reply("lost", 0)).is_err());
    }

    #[test]
    fn admission_reports_carry_the_waits() {
        let mut reply: Vec<Value> = [2, 1, 10, 5, 1, 9000].map(Value::Int).to_vec();
        reply.extend([
            Value::Int(300),
            bulk("e1"),
            bulk("u1"),
            Value::Int(400),
            bulk("e2"),
            bulk("u2"),
        ]);
        let report = AdmitReport::from_redis_value(&Value::Array(reply)).unwrap();
        assert_eq!(
            (report.admitted, report.expired, report.waiting, report.active),
            (2, 1, 10, 5)
        );
        assert!(report.open);
        assert_eq!(report.waits_ms, vec![300, 400]);
        assert_eq!(report.active_until_ms, 9000);
        assert_eq!(
            report.entries,
            vec![
                AdmittedEntry {
                    entry_id: "e1".into(),
                    user_id: "u1".into()
                },
                AdmittedEntry {
                    entry_id: "e2".into(),
                    user_id: "u2".into()
                }
            ]
        );
        // Before the opening: five numbers, nobody admitted.
        let closed = AdmitReport::from_redis_value(&Value::Array([0, 0, 3, 0, 0].map(Value::Int).to_vec())).unwrap();
        assert!(!closed.open && closed.entries.is_empty());
    }
}
