//! The declared consumer groups at work on a stream ([`crate::events::groups`]): creating the
//! ones missing, and telling, group by group, which entries they still need, so trimming keeps
//! exactly those and an operator sees who holds the trim point.

use std::time::Duration;

use serde::Serialize;

use crate::events::Stream;
use crate::events::groups::{Pinning, Registry};
use crate::infra::redis::ConnectionLike;
use crate::infra::redis::keys::Keys;
use crate::infra::redis::protocol::EntryId;
use crate::infra::redis::streams::{self, GroupStats, StreamStats};

/// Creates the declared groups of stream key `key` (of `stream`) that do not exist yet, at the
/// stream's beginning; returns how many it created. Several processes at once are fine.
pub async fn ensure(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    registry: &Registry,
    stream: Stream,
    key: &str,
) -> anyhow::Result<usize> {
    let mut created = 0;
    for group in registry.live_groups(stream) {
        if streams::create_group_if_missing(conn, key, group).await? {
            // Its abandonment, if it never gets a consumer, counts from now.
            let now = chrono::Utc::now().timestamp_millis();
            streams::note_group_seen(conn, &keys.groups_seen(), key, group, now, true).await?;
            tracing::info!(stream = key, group, "created a declared consumer group");
            created += 1;
        }
    }
    Ok(created)
}

/// [`ensure`] on every key of every stream: what each process does at start, so that from the
/// first event on every group it will be read by exists.
pub async fn ensure_all(conn: &mut impl ConnectionLike, keys: &Keys, registry: &Registry) -> anyhow::Result<usize> {
    let mut created = 0;
    for stream in Stream::ALL {
        for key in keys.stream_keys(stream) {
            created += ensure(conn, keys, registry, stream, &key).await?;
        }
    }
    Ok(created)
}

/// [`ensure_all`] when a process starts. A Redis that cannot be reached now is no reason not
/// to start: each stream's maintenance creates what is missing before it trims anything.
pub async fn ensure_at_start(redis: &crate::infra::redis::Redis, keys: &Keys, registry: &Registry) {
    let ensured = async {
        let mut conn = redis.connection().await?;
        ensure_all(&mut conn, keys, registry).await
    }
    .await;
    if let Err(err) = ensured {
        tracing::warn!(error = %format!("{err:#}"), "could not create the declared consumer groups at start; stream maintenance will");
    }
}

/// One group of a stream as trimming sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub group: String,
    /// How its declaration says it pins (`always`, `until-abandoned`, `retired`).
    pub pinning: &'static str,
    /// An until-abandoned group none of whose consumers has been seen for the abandon time.
    pub abandoned: bool,
    /// The lowest entry id it still needs: its oldest pending entry, or else the first one
    /// after the last delivered to it.
    pub needs: String,
    /// Whether it counts for the trim point (pins always, or until abandoned and not yet).
    pub pins: bool,
}

/// What a stream's groups say about trimming it.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub groups: Vec<Standing>,
    /// Entries below this id are trimmed; `None`: keep everything (no group at all).
    pub trim_point: Option<String>,
    /// The group whose need is the trim point (the slowest pinning group), if any.
    pub held_by: Option<String>,
}

/// The lowest id `group` still needs (see [`Standing::needs`]).
fn needs(group: &GroupStats) -> EntryId {
    let delivered = EntryId::parse(&group.last_delivered_id).unwrap_or(EntryId { ms: 0, seq: 0 });
    let pending = group.oldest_pending_id.as_deref().and_then(EntryId::parse);
    match pending {
        Some(p) => p.min(delivered.next()),
        None => delivered.next(),
    }
}

/// Each group's standing and the stream's trim point. `last_seen_ms[i]` is when a consumer
/// of `stats.groups[i]` was last seen (`None`: never noted).
pub fn assess(
    stats: &StreamStats,
    stream: Option<Stream>,
    registry: &Registry,
    last_seen_ms: &[Option<i64>],
    now_ms: i64,
    abandon_after: Duration,
) -> Assessment {
    let abandon_ms = i64::try_from(abandon_after.as_millis()).unwrap_or(i64::MAX);
    let groups: Vec<Standing> = stats
        .groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let pinning = stream.map_or(Pinning::Always, |s| registry.pinning(s, &group.name));
            // Alive: a consumer that read recently, or a maintenance pass that noted the group.
            let consumer_seen = group
                .consumers
                .iter()
                .map(|c| now_ms - i64::try_from(c.idle_ms).unwrap_or(i64::MAX))
                .max();
            let seen = consumer_seen.max(last_seen_ms.get(i).copied().flatten());
            let abandoned = pinning == Pinning::UntilAbandoned && seen.is_none_or(|at| now_ms - at > abandon_ms);
            let pins = match pinning {
                Pinning::Always => true,
                Pinning::UntilAbandoned => !abandoned,
                Pinning::Retired => false,
            };
            Standing {
                group: group.name.clone(),
                pinning: pinning.name(),
                abandoned,
                needs: needs(group).to_string(),
                pins,
            }
        })
        .collect();
    let holder = stats
        .groups
        .iter()
        .zip(&groups)
        .filter(|(_, standing)| standing.pins)
        .min_by_key(|(group, _)| needs(group));
    let (trim_point, held_by) = match holder {
        Some((group, standing)) => (Some(needs(group)), Some(standing.group.clone())),
        // Groups, none of them pinning (retired or abandoned): nobody needs any entry.
        None if !stats.groups.is_empty() => (
            stats.last_id.as_deref().and_then(EntryId::parse).map(EntryId::next),
            None,
        ),
        None => (None, None),
    };
    Assessment {
        groups,
        trim_point: trim_point.map(|p| p.to_string()),
        held_by,
    }
}

/// Reads a stream's statistics and when its groups were last seen, and assesses it. `None`
/// when the key does not exist.
pub async fn read_and_assess(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    registry: &Registry,
    abandon_after: Duration,
    key: &str,
) -> anyhow::Result<Option<(StreamStats, Assessment)>> {
    let Some(stats) = streams::stats(conn, key).await? else {
        return Ok(None);
    };
    let names: Vec<&str> = stats.groups.iter().map(|g| g.name.as_str()).collect();
    let seen = streams::groups_seen(conn, &keys.groups_seen(), key, &names).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let assessment = assess(&stats, keys.stream_of(key), registry, &seen, now, abandon_after);
    Ok(Some((stats, assessment)))
}

/// I5 as the streams show it: every group of `streams` whose oldest pending entry has waited
/// longer than the reclaim time (`claim_idle`), one violation each (`imticket-admin audit` and
/// the console's audit page).
pub async fn pending_too_long(
    conn: &mut impl ConnectionLike,
    streams: &[String],
    claim_idle: Duration,
) -> anyhow::Result<Vec<crate::infra::postgres::audit::Violation>> {
    let claim_idle_ms = claim_idle.as_millis() as u64;
    let mut found = Vec::new();
    for key in streams {
        let Some(stats) = streams::stats(conn, key).await? else {
            continue;
        };
        for group in stats.groups {
            if let Some(pending_for) = group.oldest_pending_age_ms
                && pending_for > claim_idle_ms
            {
                found.push(crate::infra::postgres::audit::Violation {
                    check: "I5",
                    detail: format!(
                        "{key} group {}: an entry pending for {:.1} s (claim idle {:.1} s)",
                        group.name,
                        pending_for as f64 / 1000.0,
                        claim_idle_ms as f64 / 1000.0
                    ),
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::redis::streams::ConsumerStats;

    fn group(name: &str, last: &str, oldest_pending: Option<&str>, consumer_idle_ms: Option<u64>) -> GroupStats {
        GroupStats {
            name: name.into(),
            consumers: consumer_idle_ms
                .map(|idle_ms| ConsumerStats {
                    name: "c".into(),
                    pending: 0,
                    idle_ms,
                })
                .into_iter()
                .collect(),
            pending: u64::from(oldest_pending.is_some()),
            last_delivered_id: last.into(),
            lag: None,
            oldest_pending_id: oldest_pending.map(str::to_owned),
            oldest_pending_age_ms: None,
        }
    }

    fn stats(groups: Vec<GroupStats>) -> StreamStats {
        StreamStats {
            key: "k".into(),
            length: 10,
            first_id: Some("1-0".into()),
            last_id: Some("300-0".into()),
            entries_added: Some(10),
            max_deleted_id: None,
            groups,
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const NOW: i64 = 10_000_000_000;

    fn point(groups: Vec<GroupStats>, seen: &[Option<i64>]) -> Assessment {
        assess(
            &stats(groups),
            Some(Stream::Payments),
            &Registry::default(),
            seen,
            NOW,
            HOUR,
        )
    }

    #[test]
    fn the_slowest_pinning_group_holds_the_trim_point() {
        assert_eq!(point(vec![], &[]).trim_point, None);
        let fast = group("payment", "100-5", None, Some(10));
        let slow = group("settlement", "100-5", Some("50-0"), Some(10));
        let behind = group("settlement", "20-1", None, Some(10));
        let a = point(vec![fast.clone()], &[None]);
        assert_eq!(
            (a.trim_point.as_deref(), a.held_by.as_deref()),
            (Some("100-6"), Some("payment"))
        );
        let a = point(vec![fast.clone(), slow], &[None, None]);
        assert_eq!(
            (a.trim_point.as_deref(), a.held_by.as_deref()),
            (Some("50-0"), Some("settlement"))
        );
        assert_eq!(
            point(vec![fast, behind], &[None, None]).trim_point.as_deref(),
            Some("20-2")
        );
        // A group that never read anything keeps the whole stream.
        assert_eq!(
            point(vec![group("payment", "0-0", None, None)], &[None])
                .trim_point
                .as_deref(),
            Some("0-1")
        );
    }

    #[test]
    fn an_abandoned_group_stops_pinning_and_a_live_one_does_not() {
        let payment = group("payment", "200-0", None, Some(10));
        // Undeclared on payments: pins until abandoned. Its consumer went away two hours ago.
        let gone = group("adhoc", "5-0", None, Some(2 * 3_600_000));
        let a = point(vec![payment.clone(), gone.clone()], &[None, None]);
        assert_eq!(
            (a.trim_point.as_deref(), a.held_by.as_deref()),
            (Some("200-1"), Some("payment"))
        );
        assert!(a.groups[1].abandoned && !a.groups[1].pins);
        // Seen a minute ago by a maintenance pass: still pinning.
        let a = point(vec![payment.clone(), gone.clone()], &[None, Some(NOW - 60_000)]);
        assert_eq!(
            (a.trim_point.as_deref(), a.held_by.as_deref()),
            (Some("5-1"), Some("adhoc"))
        );
        // A group that pins always is never abandoned, however long it has been away.
        let settlement = group("settlement", "5-0", None, Some(100 * 3_600_000));
        let a = point(vec![payment, settlement], &[None, Some(0)]);
        assert_eq!(a.held_by.as_deref(), Some("settlement"));
        assert!(!a.groups[1].abandoned);
    }

    #[test]
    fn retired_groups_pin_nothing() {
        let registry = Registry::new(vec!["payments:settlement".into()]);
        let settlement = group("settlement", "5-0", None, Some(10));
        let a = assess(
            &stats(vec![settlement]),
            Some(Stream::Payments),
            &registry,
            &[None],
            NOW,
            HOUR,
        );
        assert_eq!((a.trim_point.as_deref(), a.held_by), (Some("300-1"), None));
        assert_eq!(a.groups[0].pinning, "retired");
    }
}
