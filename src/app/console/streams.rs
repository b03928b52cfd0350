//! The streams page: every stream with its groups and consumers, throughput, the trim point's
//! holder, and the "needs attention" list (worst first).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::{Reading, rate};
use crate::app::{AppError, Deps};
use crate::events::Stream;
use crate::infra::redis::streams::ConsumerStats;
use crate::stream::groups;

/// A consumer counts as a live process while it read within this long (workers block for a
/// few seconds at most between reads). Redis 7.0 creates a consumer only once it is handed an
/// entry, so an idle stream's workers show no consumer at all: a group also counts as served
/// while a consumer of it noted the group seen (every maintenance round, `groups_seen`)
/// within two rounds.
pub const LIVE_WITHIN: Duration = Duration::from_secs(30);
/// New dead letters are counted up to this many.
pub const RECENT_CAP: usize = 1000;
/// A lag compared with its reading this long ago tells whether it grows.
const TREND: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub name: String,
    pub lag: Option<u64>,
    pub pending: u64,
    pub oldest_pending_age_ms: Option<u64>,
    pub last_delivered_id: String,
    pub consumers: Vec<ConsumerStats>,
    /// Consumers that read within [`LIVE_WITHIN`].
    pub live_consumers: usize,
    /// How long ago a consumer of the group last noted it seen (its maintenance round).
    pub seen_ms_ago: Option<u64>,
    /// A process serves the group: a live consumer, or seen within two maintenance rounds.
    pub served: bool,
    /// Entries the group took off the stream per second over the last minute.
    pub out_per_s: Option<f64>,
    /// The lag now minus its reading [`TREND`] ago.
    pub lag_change: Option<i64>,
    /// How its declaration pins the trim point (`always`, `until-abandoned`, `retired`).
    pub pinning: &'static str,
    pub abandoned: bool,
    pub pins: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamView {
    pub key: String,
    /// `payments`, `payments:3` (a partition), `dead-letter`.
    pub name: String,
    pub length: u64,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    /// Entries added per second over the last minute and the last five.
    pub in_per_s: Option<f64>,
    pub in_per_s_5m: Option<f64>,
    pub trim_point: Option<String>,
    pub trim_held_by: Option<String>,
    pub groups: Vec<GroupView>,
}

/// Something an operator should look at, with where to look.
#[derive(Debug, Clone, Serialize)]
pub struct Attention {
    /// 1 (worst) … 4.
    pub severity: u8,
    pub kind: &'static str,
    pub text: String,
    pub link: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub streams: Vec<StreamView>,
    pub attention: Vec<Attention>,
    /// Dead letters now, and added in the last ten minutes (by their ids' times).
    pub dead_letters: u64,
    pub dead_letters_recent: u64,
}

/// Reads every stream of the deployment (and the dead-letter stream) and this process's
/// readings of them.
pub async fn overview(deps: &Deps) -> Result<Overview, AppError> {
    let mut keys: Vec<String> = Stream::ALL.iter().flat_map(|s| deps.keys.stream_keys(*s)).collect();
    let dead_letter_key = deps.keys.dead_letter();
    keys.push(dead_letter_key.clone());
    let mut conn = deps.redis.connection().await?;
    let settings = &deps.config.streams;
    let mut read = Vec::new();
    let mut values = HashMap::new();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for key in &keys {
        if let Some((stats, trim)) = groups::read_and_assess(
            &mut conn,
            &deps.keys,
            &settings.groups,
            settings.group_abandon_after,
            key,
        )
        .await?
        {
            if let Some(added) = stats.entries_added {
                values.insert(format!("{key}|added"), added);
            }
            for group in &stats.groups {
                if let Some(lag) = group.lag {
                    values.insert(format!("{key}|{}|lag", group.name), lag);
                }
            }
            let names: Vec<&str> = stats.groups.iter().map(|g| g.name.as_str()).collect();
            let seen =
                crate::infra::redis::streams::groups_seen(&mut conn, &deps.keys.groups_seen(), key, &names).await?;
            let seen: Vec<Option<u64>> = seen
                .into_iter()
                .map(|at| at.map(|at| now_ms.saturating_sub(at).max(0) as u64))
                .collect();
            read.push((stats, trim, seen));
        }
    }
    let readings = deps.console.record("streams", values);
    // New dead letters: those of the last ten minutes (by their ids' times), counted up to
    // RECENT_CAP (a bad night shows "1000+" without reading every entry on every poll).
    let cutoff = (chrono::Utc::now().timestamp_millis().max(0) as u64).saturating_sub(10 * 60 * 1000);
    let recent: Vec<crate::infra::redis::reply::StreamEntry> =
        crate::infra::redis::streams::range(&mut conn, &dead_letter_key, &cutoff.to_string(), "+", Some(RECENT_CAP))
            .await?;
    let dead_letters_recent = recent.len() as u64;
    let mut streams = Vec::new();
    let seen_within = (settings.maintenance_interval * 2 + Duration::from_secs(5)).as_millis() as u64;
    for (stats, trim, seen) in read {
        let key = stats.key.clone();
        let name = if key == dead_letter_key {
            "dead-letter".to_owned()
        } else {
            deps.keys.logical_name(&key).unwrap_or(&key).to_owned()
        };
        let in_per_s = rate(&readings, &format!("{key}|added"), Duration::from_secs(60));
        let groups = stats
            .groups
            .iter()
            .zip(&trim.groups)
            .zip(seen)
            .map(|((g, standing), seen_ms_ago)| {
                let lag_name = format!("{key}|{}|lag", g.name);
                let lag_change = lag_change(&readings, &lag_name, TREND);
                let out_per_s = match (
                    in_per_s,
                    lag_change_per_s(&readings, &lag_name, Duration::from_secs(60)),
                ) {
                    (Some(inflow), Some(d)) => Some((inflow - d).max(0.0)),
                    _ => None,
                };
                let live_consumers = g
                    .consumers
                    .iter()
                    .filter(|c| c.idle_ms < LIVE_WITHIN.as_millis() as u64)
                    .count();
                GroupView {
                    served: live_consumers > 0 || seen_ms_ago.is_some_and(|ago| ago < seen_within),
                    seen_ms_ago,
                    live_consumers,
                    name: g.name.clone(),
                    lag: g.lag,
                    pending: g.pending,
                    oldest_pending_age_ms: g.oldest_pending_age_ms,
                    last_delivered_id: g.last_delivered_id.clone(),
                    consumers: g.consumers.clone(),
                    out_per_s,
                    lag_change,
                    pinning: standing.pinning,
                    abandoned: standing.abandoned,
                    pins: standing.pins,
                }
            })
            .collect();
        streams.push(StreamView {
            in_per_s,
            in_per_s_5m: rate(&readings, &format!("{key}|added"), Duration::from_secs(300)),
            key,
            name,
            length: stats.length,
            first_id: stats.first_id,
            last_id: stats.last_id,
            trim_point: trim.trim_point,
            trim_held_by: trim.held_by,
            groups,
        });
    }
    let dead_letters = streams
        .iter()
        .find(|s| s.key == dead_letter_key)
        .map_or(0, |s| s.length);
    let attention = attention(&streams, dead_letters_recent, settings.claim_idle);
    Ok(Overview {
        streams,
        attention,
        dead_letters,
        dead_letters_recent,
    })
}

fn lag_change(readings: &[Reading], name: &str, ago: Duration) -> Option<i64> {
    let last = readings.last()?;
    let then = readings
        .iter()
        .rev()
        .find(|r| last.at.duration_since(r.at) >= ago)
        .or_else(|| readings.first().filter(|r| last.at.duration_since(r.at) >= ago / 3))?;
    Some(*last.values.get(name)? as i64 - *then.values.get(name)? as i64)
}

fn lag_change_per_s(readings: &[Reading], name: &str, window: Duration) -> Option<f64> {
    let last = readings.last()?;
    let first = readings.iter().find(|r| last.at.duration_since(r.at) <= window)?;
    let seconds = last.at.duration_since(first.at).as_secs_f64();
    (seconds >= 1.0).then_some(())?;
    Some((*last.values.get(name)? as f64 - *first.values.get(name)? as f64) / seconds)
}

/// Worst first: a lag growing, a pending entry older than the reclaim time, new dead letters,
/// a group with no live consumer.
fn attention(streams: &[StreamView], dead_letters_recent: u64, claim_idle: Duration) -> Vec<Attention> {
    let mut out = Vec::new();
    for s in streams.iter().filter(|s| s.name != "dead-letter") {
        for g in s.groups.iter().filter(|g| g.pinning != "retired" && !g.abandoned) {
            let link = format!("/console/streams?stream={}", s.name);
            if let (Some(change), Some(lag)) = (g.lag_change, g.lag)
                && change > 0
                && lag > 0
            {
                out.push(Attention {
                    severity: 1,
                    kind: "lag growing",
                    text: format!("{} / {}: lag {lag}, up {change} in the last 30 s", s.name, g.name),
                    link: link.clone(),
                });
            }
            if let Some(age) = g.oldest_pending_age_ms
                && age > claim_idle.as_millis() as u64
            {
                out.push(Attention {
                    severity: 2,
                    kind: "pending too old",
                    text: format!(
                        "{} / {}: an entry pending for {} s (reclaimed after {} s)",
                        s.name,
                        g.name,
                        age / 1000,
                        claim_idle.as_secs()
                    ),
                    link: link.clone(),
                });
            }
            if !g.served {
                out.push(Attention {
                    severity: 4,
                    kind: "no live process",
                    text: format!(
                        "{} / {}: no consumer read in the last {} s nor was seen for {}: is a worker serving `{}` running?",
                        s.name,
                        g.name,
                        LIVE_WITHIN.as_secs(),
                        g.seen_ms_ago.map_or("ever".to_owned(), |ms| format!("{} s", ms / 1000)),
                        g.name
                    ),
                    link,
                });
            }
        }
    }
    if dead_letters_recent > 0 {
        out.push(Attention {
            severity: 3,
            kind: "dead letters new",
            text: format!(
                "{}{} dead letter(s) in the last 10 minutes",
                dead_letters_recent,
                if dead_letters_recent >= RECENT_CAP as u64 {
                    "+"
                } else {
                    ""
                }
            ),
            link: "/console/dead-letters".to_owned(),
        });
    }
    out.sort_by_key(|a| a.severity);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(lag: u64, lag_change: Option<i64>, oldest: Option<u64>, served: bool) -> GroupView {
        GroupView {
            name: "payment".into(),
            lag: Some(lag),
            pending: 0,
            oldest_pending_age_ms: oldest,
            last_delivered_id: "0-0".into(),
            consumers: Vec::new(),
            live_consumers: 0,
            seen_ms_ago: None,
            served,
            out_per_s: None,
            lag_change,
            pinning: "always",
            abandoned: false,
            pins: true,
        }
    }

    fn stream(groups: Vec<GroupView>) -> StreamView {
        StreamView {
            key: "imticket:stream:payments".into(),
            name: "payments".into(),
            length: 0,
            first_id: None,
            last_id: None,
            in_per_s: None,
            in_per_s_5m: None,
            trim_point: None,
            trim_held_by: None,
            groups,
        }
    }

    #[test]
    fn attention_lists_the_worst_first_and_nothing_when_all_is_well() {
        let claim_idle = Duration::from_secs(60);
        assert!(attention(&[stream(vec![group(0, Some(0), None, true)])], 0, claim_idle).is_empty());
        let found = attention(
            &[stream(vec![
                group(0, None, None, false),
                group(9, Some(5), Some(120_000), true),
            ])],
            3,
            claim_idle,
        );
        let kinds: Vec<&str> = found.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            ["lag growing", "pending too old", "dead letters new", "no live process"]
        );
        // A lag that shrinks or stays, a pending entry younger than the reclaim time: nothing.
        assert!(attention(&[stream(vec![group(9, Some(-3), Some(30_000), true)])], 0, claim_idle).is_empty());
    }
}
