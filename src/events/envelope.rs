//! The event envelope: flat, human-readable field/value pairs, so that
//! `redis-cli XRANGE imticket:stream:seat-creation - +` tells an operator what happened.
//!
//! | field | example |
//! |---|---|
//! | `event_id` | `0193b1c4-…` (UUID v7; the idempotency key of every handler) |
//! | `type` | `payment.completed` |
//! | `version` | `1` (payload schema version of this type) |
//! | `occurred_at` | `2026-11-21T18:30:00.123Z` |
//! | `payload` | `{"reservation_id":"…"}` (JSON) |
//! | `trace_id` | `00-4bf9…4736-00f0…02b7-01`: the W3C `traceparent` of the span that wrote the event (omitted when traces are not exported; see `telemetry::trace_context`) |

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
    pub trace_id: Option<String>,
}

/// Why an entry cannot be an envelope. Always permanent: redelivery cannot fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparsable entry: {0}")]
pub struct Unparsable(pub String);

impl Envelope {
    pub fn new(event_type: impl Into<String>, payload: Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            version: 1,
            occurred_at: Utc::now(),
            payload,
            trace_id: None,
        }
    }

    /// The entry's field/value pairs, in a fixed order.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("event_id", self.event_id.to_string()),
            ("type", self.event_type.clone()),
            ("version", self.version.to_string()),
            (
                "occurred_at",
                self.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
            ("payload", self.payload.to_string()),
        ];
        if let Some(trace) = &self.trace_id {
            fields.push(("trace_id", trace.clone()));
        }
        fields
    }

    /// Parses an entry's fields, as returned by XREADGROUP/XCLAIM/XRANGE.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, Unparsable> {
        let (mut id, mut kind, mut version, mut occurred, mut payload, mut trace) =
            (None, None, None, None, None, None);
        for (name, value) in fields {
            match name {
                "event_id" => id = Some(value),
                "type" => kind = Some(value),
                "version" => version = Some(value),
                "occurred_at" => occurred = Some(value),
                "payload" => payload = Some(value),
                "trace_id" => trace = Some(value),
                _ => {}
            }
        }
        let missing = |field: &str| Unparsable(format!("missing field `{field}`"));
        let event_id = id.ok_or_else(|| missing("event_id"))?;
        let event_type = kind.ok_or_else(|| missing("type"))?;
        let version = version.ok_or_else(|| missing("version"))?;
        let occurred_at = occurred.ok_or_else(|| missing("occurred_at"))?;
        let payload = payload.ok_or_else(|| missing("payload"))?;
        if event_type.trim().is_empty() {
            return Err(Unparsable("empty `type`".into()));
        }
        Ok(Self {
            event_id: event_id
                .parse()
                .map_err(|_| Unparsable(format!("`event_id` is not a UUID: {event_id:?}")))?,
            event_type: event_type.to_owned(),
            version: version
                .parse()
                .map_err(|_| Unparsable(format!("`version` is not a number: {version:?}")))?,
            occurred_at: DateTime::parse_from_rfc3339(occurred_at)
                .map_err(|_| Unparsable(format!("`occurred_at` is not an RFC 3339 time: {occurred_at:?}")))?
                .with_timezone(&Utc),
            payload: serde_json::from_str(payload).map_err(|e| Unparsable(format!("`payload` is not JSON: {e}")))?,
            trace_id: trace.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_fields() {
        let mut envelope = Envelope::new(
            "payment.completed",
            serde_json::json!({"reservation_id": "r1", "amount": 5}),
        );
        envelope.trace_id = Some("req-1".into());
        let fields = envelope.to_fields();
        let parsed = Envelope::from_fields(fields.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        // Millisecond precision on the wire.
        assert_eq!(
            parsed.occurred_at.timestamp_millis(),
            envelope.occurred_at.timestamp_millis()
        );
        assert_eq!(
            Envelope {
                occurred_at: envelope.occurred_at,
                ..parsed
            },
            envelope
        );
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let good = Envelope::new("x.y", serde_json::json!({})).to_fields();
        let with = |name: &str, value: &str| {
            let fields: Vec<(&str, &str)> = good
                .iter()
                .map(|(k, v)| (*k, if *k == name { value } else { v.as_str() }))
                .collect();
            Envelope::from_fields(fields).unwrap_err().0
        };
        assert!(with("event_id", "nope").contains("event_id"));
        assert!(with("payload", "{not json").contains("payload"));
        assert!(with("version", "one").contains("version"));
        assert!(with("occurred_at", "yesterday").contains("occurred_at"));
        assert!(
            Envelope::from_fields([("garbage", "1")])
                .unwrap_err()
                .0
                .contains("missing")
        );
    }
}
