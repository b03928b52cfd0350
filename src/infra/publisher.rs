//! Publishing outbox rows to their streams: the one piece of `infra` that uses both backends
//! (the rows are PostgreSQL's, [`super::postgres::outbox`]; the streams Redis's).
//!
//! A row is locked (`FOR UPDATE SKIP LOCKED`), XADDed, and marked published in one
//! transaction, so several publishers never publish the same row concurrently. If the process
//! dies after XADD and before the commit, the row is published again later: consumers see
//! the same `event_id` twice and their processed-events record makes the second a no-op.

use std::time::Duration;

use crate::infra::postgres::Db;
use anyhow::Context;

use super::postgres::outbox::{self as table, OutboxRow};
use super::redis::keys::Keys;
use super::redis::{Redis, streams};
use crate::events::{Event, Stream};

/// Rows a batch publishes at most ([`Publisher::batched`]).
const BATCH: usize = 500;
/// Rows waiting for the batching task at most; past that, [`Publisher::publish_soon`]
/// publishes at once.
const WAITING: usize = 10_000;

/// What a use case needs to publish the events it just committed.
#[derive(Clone)]
pub struct Publisher {
    db: Db,
    redis: Redis,
    keys: Keys,
    /// The batching task's queue ([`Publisher::batched`]), if this process runs one.
    soon: Option<tokio::sync::mpsc::Sender<i64>>,
}

impl Publisher {
    pub fn new(db: Db, redis: Redis, keys: Keys) -> Self {
        Self {
            db,
            redis,
            keys,
            soon: None,
        }
    }

    /// This publisher with a task of its own (spawned here, on the caller's runtime) that
    /// publishes the rows handed to [`Self::publish_soon`] together: it takes what has arrived
    /// (up to 500 rows) and claims, XADDs and marks them in one transaction, so the fast path's
    /// four statements and its Redis round trip are paid once per batch, not once per row.
    /// Idle, a row goes at once; under load the batches grow by themselves (a group commit).
    /// The task ends when every copy of this publisher is dropped; rows it did not reach are
    /// the outbox relay's.
    pub fn batched(self) -> Self {
        let (sender, mut queue) = tokio::sync::mpsc::channel::<i64>(WAITING);
        let (db, redis, keys) = (self.db.clone(), self.redis.clone(), self.keys.clone());
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(BATCH);
            while let Some(first) = queue.recv().await {
                ids.clear();
                ids.push(first);
                while ids.len() < BATCH {
                    match queue.try_recv() {
                        Ok(id) => ids.push(id),
                        Err(_) => break,
                    }
                }
                publish_now(&db, &redis, &keys, &ids).await;
            }
        });
        Self {
            soon: Some(sender),
            ..self
        }
    }

    /// As [`Self::publish_now`], for events whose readers can wait a few milliseconds (a
    /// hold's `reservation.created`, read by notifications and statistics): handed to the
    /// batching task, or published at once when there is none or its queue is full.
    pub async fn publish_soon(&self, ids: &[i64]) {
        let Some(sender) = &self.soon else {
            return self.publish_now(ids).await;
        };
        let now: Vec<i64> = ids.iter().copied().filter(|&id| sender.try_send(id).is_err()).collect();
        self.publish_now(&now).await;
    }

    /// The same publisher over another Redis handle.
    pub fn with_redis(&self, redis: Redis) -> Self {
        Self { redis, ..self.clone() }
    }

    /// Facts decided in Redis rather than PostgreSQL (a queue join, an admission: a script's
    /// answer), XADDed straight to their stream without an outbox row. At most once: if the
    /// process dies between the script and this call, or Redis refuses the XADD, the event is
    /// lost (logged and counted in `stream_direct_publish_failed_total`). Only facts that tell
    /// readers (notifications, statistics) go this way, never work the booking depends on.
    pub async fn publish_direct<E: Event>(&self, events: &[E]) {
        if events.is_empty() {
            return;
        }
        if let Err(err) = self.try_publish_direct(events).await {
            metrics::counter!("stream_direct_publish_failed_total", "stream" => E::STREAM.name())
                .increment(events.len() as u64);
            tracing::warn!(stream = E::STREAM.name(), events = events.len(), error = %format!("{err:#}"), "could not publish events born in Redis; they are lost");
        }
    }

    async fn try_publish_direct<E: Event>(&self, events: &[E]) -> anyhow::Result<()> {
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let envelope = crate::events::encode(event)?;
            entries.push((self.keys.stream_for(E::STREAM, envelope.event_id), envelope.to_fields()));
        }
        let mut conn = self.redis.connection().await?;
        streams::add_all(&mut conn, &entries).await.context("XADD events")?;
        Ok(())
    }

    /// The fast path: publishes the just-committed rows `ids`. Failures are logged, not
    /// returned: the commit already happened, and the relay publishes the rows later.
    #[tracing::instrument(name = "outbox publish", skip_all, fields(events = ids.len()))]
    pub async fn publish_now(&self, ids: &[i64]) {
        publish_now(&self.db, &self.redis, &self.keys, ids).await;
    }
}

enum Claim<'a> {
    Oldest(i64),
    Ids(&'a [i64]),
}

/// XADDs the rows in one pipeline; returns the entry ids in row order.
/// The key an outbox row is published to: its stream's partition of the reservation the event
/// is about (its `reservation_id`; else the event's own id).
fn stream_key(keys: &Keys, row: &OutboxRow) -> String {
    match Stream::from_name(&row.stream) {
        Some(stream) => {
            let subject = row
                .payload
                .get("reservation_id")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse().ok())
                .unwrap_or(row.event_id);
            keys.stream_for(stream, subject)
        }
        None => keys.stream_named(&row.stream),
    }
}

async fn xadd_all(redis: &Redis, keys: &Keys, rows: &[OutboxRow]) -> anyhow::Result<Vec<String>> {
    let entries: Vec<(String, Vec<(&str, String)>)> = rows
        .iter()
        .map(|row| (stream_key(keys, row), row.envelope().to_fields()))
        .collect();
    let mut conn = redis.connection().await?;
    streams::add_all(&mut conn, &entries)
        .await
        .context("XADD outbox events")
}

async fn publish_claimed(db: &Db, redis: &Redis, keys: &Keys, claim: Claim<'_>) -> anyhow::Result<usize> {
    let mut tx = db.begin().await.context("begin outbox publish")?;
    let rows = match claim {
        Claim::Oldest(limit) => table::claim_unpublished(&mut tx, limit).await?,
        Claim::Ids(ids) => table::claim_ids(&mut tx, ids).await?,
    };
    if rows.is_empty() {
        return Ok(0);
    }
    // On failure the rows stay unpublished for the relay. Rolled back here rather than on drop:
    // a dropped transaction's ROLLBACK is sent only when its connection is next used, and until
    // then the rows stay locked, so a relay round right after (SKIP LOCKED) would find nothing.
    let stream_ids = match xadd_all(redis, keys, &rows).await {
        Ok(ids) => ids,
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %format!("{rollback:#}"), "rolling back an outbox publish failed");
            }
            return Err(err);
        }
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    table::mark_published(&mut tx, &ids, &stream_ids).await?;
    tx.commit().await.context("commit outbox publish")?;
    metrics::counter!("outbox_published_total").increment(rows.len() as u64);
    Ok(rows.len())
}

/// Publishes the just-committed rows `ids`; failures are logged (see [`Publisher::publish_now`]).
pub async fn publish_now(db: &Db, redis: &Redis, keys: &Keys, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    if let Err(err) = publish_claimed(db, redis, keys, Claim::Ids(ids)).await {
        tracing::warn!(error = %format!("{err:#}"), "publishing after commit failed; the outbox relay will publish");
    }
}

/// One relay round: publishes up to `limit` of the oldest unpublished rows. Returns how many.
pub async fn publish_oldest(db: &Db, redis: &Redis, keys: &Keys, limit: usize) -> anyhow::Result<usize> {
    publish_claimed(db, redis, keys, Claim::Oldest(limit as i64)).await
}

/// Deletes published rows older than `retention`. Returns how many.
pub async fn prune(db: &Db, retention: Duration) -> anyhow::Result<u64> {
    let before = chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(1));
    let mut total = 0;
    loop {
        let mut conn = db.write().await.context("acquire connection for outbox pruning")?;
        let pruned = table::prune_published(&mut conn, before, 10_000).await?;
        conn.commit().await.context("commit outbox pruning")?;
        total += pruned;
        if pruned < 10_000 {
            return Ok(total);
        }
    }
}

/// What a relay knows of the Redis it publishes to. Redis keeps its data with AOF `everysec`: a
/// Redis killed mid-run comes back without up to a second of writes (or with none, its files
/// lost), and a stream entry XADDed in that second is gone although its outbox row says
/// published. So the relays note each Redis they see (`run_id`, in `redis_epochs`); one that
/// finds a Redis other than the latest noted publishes again every event that one of its
/// stream's groups that pin always ([`crate::events::groups::Registry::required`]) has not
/// recorded as processed — except those in the dead-letter stream. Handlers absorb what is
/// delivered twice.
#[derive(Default)]
pub struct RedisWatch {
    run_id: Option<String>,
    noted: Option<std::time::Instant>,
    groups: crate::events::groups::Registry,
}

/// How often a relay notes that the Redis it sees is still the same one.
const NOTE_EVERY: Duration = Duration::from_secs(1);
/// Serializes the relays' checks of a new Redis (`pg_advisory_xact_lock`).
const EPOCH_LOCK: i64 = 0x1d71_c4e7_0ed0_5e01;

impl RedisWatch {
    /// A watch for a deployment whose groups are `groups` (some may be retired).
    pub fn with_groups(groups: crate::events::groups::Registry) -> Self {
        Self {
            groups,
            ..Self::default()
        }
    }

    /// Once per relay round. Returns how many rows were marked for publishing again (0 unless
    /// this Redis is new).
    pub async fn check(&mut self, db: &Db, redis: &Redis, keys: &Keys) -> anyhow::Result<u64> {
        let run_id = redis_identity(redis).await?;
        if self.run_id.as_deref() == Some(run_id.as_str()) {
            if self.noted.is_none_or(|at| at.elapsed() >= NOTE_EVERY) {
                let mut pg = db.write().await.context("acquire connection to note Redis")?;
                table::saw_redis(&mut pg, &run_id).await?;
                pg.commit().await.context("commit the note of Redis")?;
                self.noted = Some(std::time::Instant::now());
            }
            return Ok(0);
        }
        let mut tx = db.begin().await.context("begin Redis epoch check")?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EPOCH_LOCK)
            .execute(&mut *tx)
            .await
            .context("lock Redis epochs")?;
        let latest = table::latest_redis(&mut tx).await?;
        let mut marked = 0;
        if latest.as_deref().is_some_and(|latest| latest != run_id) {
            let mut conn = redis.connection().await?;
            let keep = dead_lettered_events(&mut conn, keys).await?;
            let (streams, groups): (Vec<String>, Vec<String>) = self
                .groups
                .required()
                .into_iter()
                .map(|(stream, group)| (stream.name().to_owned(), group.to_owned()))
                .unzip();
            marked = table::unpublish_unprocessed(&mut tx, &streams, &groups, &keep).await?;
            tracing::warn!(
                run_id = %run_id,
                events = marked,
                "Redis is not the one last published to (restarted, may have lost its last writes): publishing again every event not processed yet"
            );
            metrics::counter!("outbox_republished_total").increment(marked);
        }
        table::saw_redis(&mut tx, &run_id).await?;
        tx.commit().await.context("commit Redis epoch check")?;
        self.run_id = Some(run_id);
        self.noted = Some(std::time::Instant::now());
        Ok(marked)
    }
}

/// The `event_id`s in the dead-letter stream (they were delivered; an operator decides).
/// Which Redis this is: its `run_id`, or on a Cluster the `run_id`s of its masters (sorted),
/// so a failover (a replica, maybe without the last writes, now serving a master's slots)
/// reads as a new Redis too.
async fn redis_identity(redis: &Redis) -> anyhow::Result<String> {
    let mut run_ids = redis
        .info("server")
        .await?
        .iter()
        .map(|info| super::redis::info_field(info, "run_id").map(str::to_owned))
        .collect::<Option<Vec<String>>>()
        .context("INFO server has no run_id")?;
    anyhow::ensure!(!run_ids.is_empty(), "INFO server answered for no node");
    run_ids.sort();
    Ok(run_ids.join(","))
}

async fn dead_lettered_events(conn: &mut super::redis::Connection, keys: &Keys) -> anyhow::Result<Vec<uuid::Uuid>> {
    let mut ids = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let page = streams::range(conn, &keys.dead_letter(), &start, "+", Some(1000)).await?;
        let Some(last) = page.last() else { break };
        start = super::redis::protocol::after(&last.id);
        let full = page.len() == 1000;
        ids.extend(
            page.iter()
                .filter_map(|e| e.field("event_id")?.parse::<uuid::Uuid>().ok()),
        );
        if !full {
            break;
        }
    }
    Ok(ids)
}
