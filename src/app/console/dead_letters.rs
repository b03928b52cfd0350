//! Dead letters as the console shows them: grouped by their normalised error, joined to the
//! reservation, payment or job each touches (its current row in PostgreSQL), a dry run that
//! says what a replay would do to each, and replay / purge in bounded batches.
//!
//! Grouping needs every entry's error: this process keeps an index of the dead-letter stream
//! (ids per group) that it extends with the entries added since its last look, and rebuilds
//! only when entries went away (a replay or purge anywhere: the stream is shorter than the
//! index plus what was added since, or `max-deleted-entry-id` moved).

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::Session;
use crate::app::{AppError, Deps};
use crate::events::Envelope;
use crate::infra::postgres::console::{self as repo, JobState, PaymentState, ReservationState};
use crate::infra::redis::protocol::{EntryId, after};
use crate::infra::redis::reply::{StreamEntry, StreamSummary};
use crate::infra::redis::streams;
use crate::stream::dead_letter::{self, DeadLetter};

/// At most this many dead letters are replayed or dry-run by one action; the page says how
/// many remain and offers the next batch.
pub const BATCH: usize = 1000;
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
    ids: Vec<String>,
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

fn group_id(stream: &str, group: &str, error: &str) -> String {
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
async fn refreshed(deps: &Deps) -> Result<tokio::sync::MutexGuard<'_, Index>, AppError> {
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
async fn ids_in(
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

async fn fetch(deps: &Deps, ids: &[String]) -> Result<Vec<DeadLetter>, AppError> {
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

/// One page of dead letters, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub letters: Vec<Letter>,
    /// The `after` of the next page (None: this is the last).
    pub next_after: Option<String>,
    pub total: u64,
}

/// A dead letter with its group, its event and what it touches.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    pub letter: DeadLetter,
    pub stream: String,
    pub group_id: String,
    pub event_type: String,
    pub event_id: Option<Uuid>,
    pub touches: Vec<Touched>,
    pub verdict: Verdict,
}

/// A row a dead letter touches, as it is now in PostgreSQL.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Touched {
    Reservation(ReservationState),
    Payment(PaymentState),
    Job(JobState),
    Missing { what: &'static str, id: Uuid },
}

/// What replaying a dead letter would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `no_op` (its effect already happened), `would_apply`, `would_fail`.
    pub outcome: &'static str,
    pub why: String,
}

impl Verdict {
    fn no_op(why: impl Into<String>) -> Self {
        Self {
            outcome: "no_op",
            why: why.into(),
        }
    }
    fn apply(why: impl Into<String>) -> Self {
        Self {
            outcome: "would_apply",
            why: why.into(),
        }
    }
    fn fail(why: impl Into<String>) -> Self {
        Self {
            outcome: "would_fail",
            why: why.into(),
        }
    }
}

pub async fn page(deps: &Deps, scope: &Scope, after_id: Option<&str>, limit: usize) -> Result<Page, AppError> {
    let (ids, total) = ids_in(deps, scope, after_id, limit + 1).await?;
    let more = ids.len() > limit;
    let ids = &ids[..ids.len().min(limit)];
    let letters = joined(deps, fetch(deps, ids).await?).await?;
    Ok(Page {
        next_after: more.then(|| ids.last().cloned()).flatten(),
        letters,
        total,
    })
}

/// One dead letter, joined, or None if there is none with this id (replayed or purged).
pub async fn one(deps: &Deps, id: &str) -> Result<Option<Letter>, AppError> {
    let mut conn = deps.redis.connection().await?;
    let Some(letter) = dead_letter::show(&mut conn, &deps.keys, id).await? else {
        return Ok(None);
    };
    Ok(joined(deps, vec![letter]).await?.into_iter().next())
}

fn uuid_of(payload: &serde_json::Value, name: &str) -> Option<Uuid> {
    payload.get(name).and_then(|v| v.as_str()).and_then(|s| s.parse().ok())
}

/// Each letter with the rows it touches and its verdict: a handful of statements for any
/// number of letters (one per kind of row, one per group for what it processed).
async fn joined(deps: &Deps, letters: Vec<DeadLetter>) -> Result<Vec<Letter>, AppError> {
    let envelopes: Vec<Result<Envelope, String>> = letters
        .iter()
        .map(|l| {
            Envelope::from_fields(l.original.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| e.to_string())
        })
        .collect();
    let mut reservation_ids = HashSet::new();
    let mut payment_ids = HashSet::new();
    let mut job_ids = HashSet::new();
    let mut by_group: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for (letter, envelope) in letters.iter().zip(&envelopes) {
        if let Ok(e) = envelope {
            reservation_ids.extend(uuid_of(&e.payload, "reservation_id"));
            payment_ids.extend(uuid_of(&e.payload, "payment_id"));
            job_ids.extend(uuid_of(&e.payload, "job_id"));
            by_group.entry(letter.group.as_str()).or_default().push(e.event_id);
        }
    }
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let ids = |set: HashSet<Uuid>| set.into_iter().collect::<Vec<_>>();
    let reservations: HashMap<Uuid, ReservationState> = repo::reservations(&mut conn, &ids(reservation_ids))
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let payments: HashMap<Uuid, PaymentState> = repo::payments(&mut conn, &ids(payment_ids))
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let jobs: HashMap<Uuid, JobState> = repo::jobs(&mut conn, &ids(job_ids))
        .await?
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    let mut processed: HashSet<(String, Uuid)> = HashSet::new();
    for (group, event_ids) in by_group {
        for id in repo::processed(&mut conn, group, &event_ids).await? {
            processed.insert((group.to_owned(), id));
        }
    }
    drop(conn);
    let mut out = Vec::with_capacity(letters.len());
    for (letter, envelope) in letters.into_iter().zip(envelopes) {
        let stream = deps
            .keys
            .logical_name(&letter.source_stream)
            .unwrap_or(&letter.source_stream)
            .to_owned();
        let group_id = group_id(&stream, &letter.group, &normalise(&letter.error));
        let event_type = letter.original_field("type").unwrap_or("?").to_owned();
        let (touches, verdict, event_id) = match &envelope {
            Err(why) => (
                Vec::new(),
                Verdict::fail(format!(
                    "the entry is not an event envelope ({why}): it would be dead-lettered again"
                )),
                None,
            ),
            Ok(e) => {
                let mut touches = Vec::new();
                if let Some(id) = uuid_of(&e.payload, "reservation_id") {
                    touches.push(reservations.get(&id).cloned().map_or(
                        Touched::Missing {
                            what: "reservation",
                            id,
                        },
                        Touched::Reservation,
                    ));
                }
                if let Some(id) = uuid_of(&e.payload, "payment_id") {
                    touches.push(
                        payments
                            .get(&id)
                            .cloned()
                            .map_or(Touched::Missing { what: "payment", id }, Touched::Payment),
                    );
                }
                if let Some(id) = uuid_of(&e.payload, "job_id") {
                    touches.push(
                        jobs.get(&id)
                            .cloned()
                            .map_or(Touched::Missing { what: "job", id }, Touched::Job),
                    );
                }
                let verdict = if processed.contains(&(letter.group.clone(), e.event_id)) {
                    Verdict::no_op(format!(
                        "group {} already processed event {}: a replay changes nothing",
                        letter.group, e.event_id
                    ))
                } else {
                    verdict_for(e, &letter.group, &touches)
                };
                (touches, verdict, Some(e.event_id))
            }
        };
        out.push(Letter {
            letter,
            stream,
            group_id,
            event_type,
            event_id,
            touches,
            verdict,
        });
    }
    Ok(out)
}

/// Whether the event's payload is what its type says (as every handler decodes it first).
fn decodes(e: &Envelope) -> Result<(), String> {
    use crate::events::{self as ev, Event as _, decode};
    let decoded = match e.event_type.as_str() {
        ev::PaymentCompleted::TYPE => decode::<ev::PaymentCompleted>(e).map(drop),
        ev::HoldExpired::TYPE => decode::<ev::HoldExpired>(e).map(drop),
        ev::ReservationExpired::TYPE => decode::<ev::ReservationExpired>(e).map(drop),
        ev::ReservationCreated::TYPE => decode::<ev::ReservationCreated>(e).map(drop),
        ev::ReservationConfirmed::TYPE => decode::<ev::ReservationConfirmed>(e).map(drop),
        ev::QueueJoined::TYPE => decode::<ev::QueueJoined>(e).map(drop),
        ev::QueueAdmitted::TYPE => decode::<ev::QueueAdmitted>(e).map(drop),
        ev::SeatCreationRequested::TYPE => decode::<ev::SeatCreationRequested>(e).map(drop),
        other => return Err(format!("no handler knows the event type {other:?}")),
    };
    decoded.map_err(|err| err.to_string())
}

/// What the group's handler would do with the event, from the rows as they are now.
fn verdict_for(e: &Envelope, group: &str, touches: &[Touched]) -> Verdict {
    if let Err(why) = decodes(e) {
        return Verdict::fail(format!("{why}: it would be dead-lettered again"));
    }
    let reservation = touches.iter().find_map(|t| match t {
        Touched::Reservation(r) => Some(r),
        _ => None,
    });
    let missing = touches.iter().find_map(|t| match t {
        Touched::Missing { what, id } => Some((*what, *id)),
        _ => None,
    });
    match (e.event_type.as_str(), group) {
        ("payment.completed", "payment") => match (reservation, missing) {
            (_, Some((what, id))) => Verdict::fail(format!("its {what} {id} does not exist: it would fail again")),
            (Some(r), _) if r.status == "confirmed" => Verdict::no_op(format!(
                "reservation {} is already confirmed (ticket {}): a replay changes nothing",
                r.id,
                r.ticket_code.as_deref().unwrap_or("?")
            )),
            (Some(r), _) if r.status == "paid" => Verdict::apply(format!(
                "would confirm reservation {} ({} seat(s), {} points paid): ticket issued, seats sold",
                r.id, r.seats, r.amount
            )),
            (Some(r), _) => Verdict::apply(format!(
                "reservation {} is {}: the payment worker would handle the payment of a {} reservation",
                r.id, r.status, r.status
            )),
            (None, None) => Verdict::fail("the payment names no reservation: it would fail again"),
        },
        ("hold.expired", "expiry") => match reservation {
            None => Verdict::fail("the hold names no existing reservation: it would fail again"),
            Some(r) if r.status != "held" => {
                Verdict::no_op(format!("reservation {} is {}: nothing to release", r.id, r.status))
            }
            Some(r) if r.expires_at <= chrono::Utc::now() => Verdict::apply(format!(
                "would release reservation {} ({} seat(s)): its hold ended at {}",
                r.id,
                r.seats,
                r.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            Some(r) => Verdict::apply(format!(
                "reservation {} is held until {}: the expiry worker would wait for it",
                r.id,
                r.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        },
        ("seat_creation.requested", "seat-creation") => match touches.first() {
            Some(Touched::Job(j)) if j.status == "done" => Verdict::no_op(format!(
                "job {} is done ({}/{} seats): a replay changes nothing",
                j.id, j.done, j.total
            )),
            Some(Touched::Job(j)) => Verdict::apply(format!(
                "would resume job {} ({}, {}/{} seats done)",
                j.id, j.status, j.done, j.total
            )),
            _ => Verdict::fail("the job does not exist: it would fail again"),
        },
        (kind, group) => Verdict::apply(format!(
            "group {group} has not processed this {kind} event: it would process it once"
        )),
    }
}

/// The dry run of an action on `scope` (or one `id`): each of the first [`BATCH`] letters with
/// its verdict, and how many the scope holds.
pub async fn dry_run(deps: &Deps, scope: &Scope, id: Option<&str>) -> Result<(Vec<Letter>, u64), AppError> {
    match id {
        Some(id) => {
            let letter = one(deps, id).await?;
            let n = u64::from(letter.is_some());
            Ok((letter.into_iter().collect(), n))
        }
        None => {
            let (ids, total) = ids_in(deps, scope, None, BATCH).await?;
            Ok((joined(deps, fetch(deps, &ids).await?).await?, total))
        }
    }
}

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
    let action = super::record_action(deps, session, "replay", &target, &outcome, serde_json::json!(done)).await?;
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
    let action = super::record_action(
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
