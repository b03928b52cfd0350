//! Dead letters joined to the rows they touch, as PostgreSQL has them now, and what a replay of
//! each would do: the pages and the dry run.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use serde::Serialize;
use uuid::Uuid;

use crate::app::{AppError, Deps};
use crate::events::Envelope;
use crate::infra::postgres::console::{self as repo, JobState, PaymentState, ReservationState};
use crate::stream::dead_letter::{self, DeadLetter};

use super::BATCH;
use super::index::{Scope, fetch, group_id, ids_in, normalise};

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
