//! One consumer-group consumer: reads a stream in batches, runs a [`Handler`], acks after the
//! handler's transaction committed, reclaims entries that other (dead or failing) consumers
//! left pending with an exponential back-off, and dead-letters poison entries so the stream
//! never stalls behind them.
//!
//! Delivery is at-least-once; handlers make the *effect* exactly-once by recording the
//! `event_id` in `processed_events` inside their own transaction (see
//! [`crate::infra::processed_events`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::Value;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use tokio_util::sync::CancellationToken;

use super::envelope::Envelope;
use super::{Keys, consumer_name, dead_letter};
use crate::config::Config;
use crate::infra::redis::Redis;

/// How many XPENDING pages (of `batch_size` idle entries each) one reclaim round examines at
/// most, looking for due entries. Bounds the cost of a round when the pending list is long
/// and mostly backing off (say, every entry of a backlog failed during a database outage):
/// with the defaults, 5,000 entries per reclaim interval (5 s). Later rounds go on from where
/// one stopped, so every entry is looked at within `pending / (pages × batch_size)` rounds.
pub const RECLAIM_PAGES_PER_ROUND: usize = 10;

/// What a handler says about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or a duplicate that was done before): acknowledge.
    Ack,
    /// Transient failure (database or Redis down): leave pending; it is redelivered after the
    /// back-off, and dead-lettered once it has been delivered `max_deliveries` times.
    Retry(String),
    /// Permanent failure (payload the handler cannot use, unknown type): dead-letter now.
    DeadLetter(String),
}

/// The work done for one stream. Implementations must commit their effect (and the
/// processed-events record) before answering [`Outcome::Ack`].
pub trait Handler: Send + Sync + 'static {
    /// Handles a batch and answers one outcome per envelope, in order. A batch lets a handler
    /// use one transaction for many events; it may also handle them one by one.
    fn handle(&self, batch: &[Envelope]) -> impl Future<Output = Vec<Outcome>> + Send;
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub batch_size: usize,
    pub concurrency: usize,
    pub block: Duration,
    /// A pending entry becomes claimable after `claim_idle × 2^(deliveries−1)`, capped.
    pub claim_idle: Duration,
    pub backoff_cap: Duration,
    pub max_deliveries: u32,
    /// How often the pending list is scanned for claimable entries.
    pub reclaim_interval: Duration,
}

impl ConsumerSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            batch_size: config.stream.batch_size,
            concurrency: config.stream.concurrency,
            block: config.stream.block,
            claim_idle: config.stream_claim_idle,
            backoff_cap: config.stream.backoff_cap,
            max_deliveries: config.stream_max_deliveries,
            reclaim_interval: (config.stream_claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)),
        }
    }

    /// How long after its first delivery an entry can still be delivered again: the sum of
    /// the back-offs of `max_deliveries` deliveries. One more back-off than the handler can
    /// run after (the last reclaim dead-letters without calling it), which leaves a margin for
    /// reclaim intervals and handler time. Records in `processed_events` must outlive it.
    pub fn redelivery_window(&self) -> Duration {
        (1..=self.max_deliveries)
            .map(|n| self.backoff(n))
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// How long an entry delivered `deliveries` times must sit idle before it is reclaimed.
    pub fn backoff(&self, deliveries: u32) -> Duration {
        let factor = 2u32.saturating_pow(deliveries.saturating_sub(1).min(30));
        self.claim_idle
            .saturating_mul(factor)
            .min(self.backoff_cap.max(self.claim_idle))
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    /// New entries read with XREADGROUP.
    pub read: usize,
    /// Pending entries claimed from a consumer (possibly this one) after their back-off.
    pub reclaimed: usize,
    pub acked: usize,
    pub retried: usize,
    pub dead_lettered: usize,
    /// Pending entries whose stream entry no longer exists (removed from the pending list).
    pub deleted: usize,
}

impl BatchReport {
    pub fn is_idle(&self) -> bool {
        self.read == 0 && self.reclaimed == 0 && self.deleted == 0
    }
}

/// One delivered entry.
struct Delivery {
    id: String,
    fields: Vec<(String, String)>,
    /// How many times it has been delivered, this delivery included.
    deliveries: u32,
}

pub struct Consumer<H> {
    stream_key: String,
    stream_label: String,
    group: String,
    dead_letter_key: String,
    name: String,
    redis: Redis,
    /// Blocking reads get a connection of their own: a BLOCKed XREADGROUP would otherwise
    /// hold up every other command multiplexed on the shared connection.
    reader: Option<MultiplexedConnection>,
    handler: Arc<H>,
    settings: ConsumerSettings,
    last_reclaim: Option<Instant>,
    /// Where the next reclaim round goes on scanning the pending list (an exclusive XPENDING
    /// start, `(id`); `None`: from the head. See [`RECLAIM_PAGES_PER_ROUND`].
    reclaim_cursor: Option<String>,
    group_ready: bool,
    /// A batch read ahead while the previous one was being handled: delivered to this
    /// consumer (pending under its name) but not handled yet. The next round handles it.
    ahead: Option<Vec<Delivery>>,
}

impl<H: Handler> Consumer<H> {
    /// `stream_label` names the stream in metrics and logs (the logical name, not the key).
    pub fn new(
        redis: Redis,
        keys: &Keys,
        stream_key: String,
        stream_label: &str,
        group: &str,
        handler: Arc<H>,
        settings: ConsumerSettings,
    ) -> Self {
        Self {
            stream_key,
            stream_label: stream_label.to_owned(),
            group: group.to_owned(),
            dead_letter_key: keys.dead_letter(),
            name: consumer_name(),
            redis,
            reader: None,
            handler,
            settings,
            last_reclaim: None,
            reclaim_cursor: None,
            group_ready: false,
            ahead: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stream_key(&self) -> &str {
        &self.stream_key
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Creates the stream and the group if missing. The group starts at id 0, so entries
    /// published before any worker ever ran are delivered too.
    pub async fn ensure_group(&mut self) -> anyhow::Result<()> {
        let mut conn = self.redis.connection().await?;
        create_group(&mut conn, &self.stream_key, &self.group).await?;
        self.group_ready = true;
        Ok(())
    }

    /// One round: reclaim due pending entries (when the reclaim interval has passed) or else
    /// read new ones (blocking up to `block`), handle them, ack or dead-letter them. Every
    /// entry this round read is acked or dead-lettered (or left for a retry) when it returns.
    pub async fn process_batch(&mut self) -> anyhow::Result<BatchReport> {
        self.round(false).await
    }

    /// A round as [`Self::process_batch`], except that when it reads a full batch (a backlog)
    /// it reads the next batch, without blocking, while the handler works on this one; the
    /// next round handles that batch first. Redis then serves the read while the consumer
    /// handles, instead of the two taking turns. [`Self::run`] works this way; the entries read
    /// ahead are pending under this consumer until a later round handles them
    /// ([`Self::read_ahead`] counts them).
    pub async fn process_batch_reading_ahead(&mut self) -> anyhow::Result<BatchReport> {
        self.round(true).await
    }

    /// Entries read ahead and not handled yet.
    pub fn read_ahead(&self) -> usize {
        self.ahead.as_ref().map_or(0, Vec::len)
    }

    async fn round(&mut self, read_ahead: bool) -> anyhow::Result<BatchReport> {
        if !self.group_ready {
            self.ensure_group().await?;
        }
        let mut report = BatchReport::default();
        let mut deliveries = Vec::new();
        if self
            .last_reclaim
            .is_none_or(|at| at.elapsed() >= self.settings.reclaim_interval)
        {
            let (claimed, deleted) = self.reclaim().await?;
            self.last_reclaim = Some(Instant::now());
            report.reclaimed = claimed.len();
            report.deleted = deleted;
            deliveries = claimed;
        }
        if deliveries.is_empty() {
            deliveries = match self.ahead.take() {
                Some(ahead) => ahead,
                None => {
                    let reader = self.reader().await?;
                    self.read_new(reader, Some(self.settings.block)).await?
                }
            };
            report.read = deliveries.len();
        }
        if deliveries.is_empty() {
            return Ok(report);
        }
        if read_ahead && self.ahead.is_none() && report.read >= self.settings.batch_size {
            let reader = self.reader().await?;
            // The read goes first (`join!` polls in order), and the handler yields once before
            // its synchronous part (envelope parsing): the read is then already on its way to
            // Redis, whose connection is driven by a task of its own that must get to run.
            let (next, handled) = tokio::join!(self.read_new(reader, None), async {
                tokio::task::yield_now().await;
                self.handle(deliveries, &mut report).await
            });
            // Entries read ahead are delivered to this consumer whatever became of the
            // handling: keep them for the next round.
            let next = next.map(|next| {
                if !next.is_empty() {
                    self.ahead = Some(next);
                }
            });
            handled?;
            next?;
        } else {
            self.handle(deliveries, &mut report).await?;
        }
        Ok(report)
    }

    /// Runs rounds, reading ahead, until `shutdown` is cancelled. A round in progress always
    /// completes — its handlers finish and their entries are acked — before the loop looks at
    /// the token; after it, a batch already read ahead is still handled (nothing more is read),
    /// and reads block at most `block`, so shutdown takes at most two rounds.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(stream = %self.stream_label, group = %self.group, consumer = %self.name, "consumer started");
        let mut failures = 0u32;
        while !shutdown.is_cancelled() || self.ahead.is_some() {
            match self.round(!shutdown.is_cancelled()).await {
                Ok(report) if report.retried > 0 && report.acked == 0 => failures += 1,
                Ok(_) => failures = 0,
                Err(err) => {
                    failures += 1;
                    if redis_error_code(&err) == Some("NOGROUP") {
                        // Redis lost the group (restarted without its data): recreate it.
                        self.group_ready = false;
                    }
                    self.reader = None;
                    tracing::warn!(stream = %self.stream_label, group = %self.group, error = %format!("{err:#}"), "consumer round failed; backing off");
                }
            }
            if failures > 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(retry_delay(failures)) => {}
                }
            }
        }
        tracing::info!(stream = %self.stream_label, group = %self.group, consumer = %self.name, "consumer stopped");
    }

    /// Claims pending entries whose idle time exceeds their back-off. Returns the claimed
    /// deliveries and how many pending entries pointed at deleted stream entries.
    async fn reclaim(&mut self) -> anyhow::Result<(Vec<Delivery>, usize)> {
        let mut conn = self.redis.connection().await?;
        let claim_idle_ms = self.settings.claim_idle.as_millis() as u64;
        let due = self.due_pending(&mut conn).await?;
        if due.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // XCLAIM (not XAUTOCLAIM): the back-off differs per entry, which XAUTOCLAIM's single
        // min-idle-time cannot express. Without JUSTID, XCLAIM increments the delivery counter.
        // Its own min-idle check makes a race with another reclaimer harmless: an entry just
        // claimed by someone else is no longer idle and is skipped.
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&self.stream_key)
            .arg(&self.group)
            .arg(&self.name)
            .arg(claim_idle_ms);
        for (id, _) in &due {
            cmd.arg(id);
        }
        let claimed: Value = cmd.query_async(&mut conn).await.context("XCLAIM")?;
        let mut deliveries = Vec::new();
        let mut deleted = Vec::new();
        for (position, item) in as_array(claimed).into_iter().enumerate() {
            match parse_entry(item) {
                Some((id, fields)) => {
                    let previous = due.iter().find(|(d, _)| *d == id).map(|(_, n)| *n).unwrap_or(0);
                    deliveries.push(Delivery {
                        id,
                        fields,
                        deliveries: previous.saturating_add(1),
                    });
                }
                // Redis 6.2 answers nil for a pending entry whose stream entry was deleted;
                // Redis 7 drops such entries from the pending list and the reply by itself.
                None => {
                    if let Some((id, _)) = due.get(position) {
                        deleted.push(id.clone());
                    }
                }
            }
        }
        if !deleted.is_empty() {
            let _: i64 = redis::cmd("XACK")
                .arg(&self.stream_key)
                .arg(&self.group)
                .arg(&deleted)
                .query_async(&mut conn)
                .await
                .context("XACK deleted entries")?;
            self.count("deleted", deleted.len());
        }
        Ok((deliveries, deleted.len()))
    }

    /// Pending entries idle past their own back-off, with their delivery counts: up to one
    /// batch. XPENDING's `IDLE` filter can only apply the shortest back-off (`claim_idle`), so
    /// the list is paged (`(id` exclusive starts) until a batch of due entries is found:
    /// otherwise a batch of entries still backing off at the head would hide due ones behind
    /// them until the head became due (up to the back-off cap). One round examines at most
    /// [`RECLAIM_PAGES_PER_ROUND`] pages and the next round goes on where it stopped, wrapping
    /// to the head at the end, so a huge pending list costs each round a bounded scan and is
    /// still walked entirely, over several rounds.
    async fn due_pending(&mut self, conn: &mut impl ConnectionLike) -> anyhow::Result<Vec<(String, u32)>> {
        let page_size = self.settings.batch_size.max(1);
        let mut due = Vec::new();
        let mut start = self.reclaim_cursor.take();
        for _ in 0..RECLAIM_PAGES_PER_ROUND {
            let page: Value = redis::cmd("XPENDING")
                .arg(&self.stream_key)
                .arg(&self.group)
                .arg("IDLE")
                .arg(self.settings.claim_idle.as_millis() as u64)
                .arg(start.as_deref().unwrap_or("-"))
                .arg("+")
                .arg(page_size)
                .query_async(conn)
                .await
                .context("XPENDING")?;
            let page = as_array(page);
            let page_len = page.len();
            let mut examined = 0;
            for entry in page {
                if due.len() >= self.settings.batch_size {
                    break;
                }
                examined += 1;
                let fields = as_array(entry);
                let Some(id) = fields.first().and_then(as_string) else {
                    continue;
                };
                start = Some(format!("({id}"));
                let (Some(idle), Some(count)) = (fields.get(2).and_then(as_int), fields.get(3).and_then(as_int)) else {
                    continue;
                };
                let deliveries = u32::try_from(count).unwrap_or(u32::MAX);
                if Duration::from_millis(idle.max(0) as u64) >= self.settings.backoff(deliveries) {
                    due.push((id, deliveries));
                }
            }
            if page_len < page_size && examined == page_len {
                // The end of the list: the next round starts from the head again.
                start = None;
                break;
            }
            if due.len() >= self.settings.batch_size {
                break;
            }
        }
        self.reclaim_cursor = start;
        Ok(due)
    }

    /// The connection for XREADGROUP (a clone shares it), opened on first use.
    async fn reader(&mut self) -> anyhow::Result<MultiplexedConnection> {
        if let Some(reader) = &self.reader {
            return Ok(reader.clone());
        }
        let reader = self.redis.dedicated_connection(self.settings.block).await?;
        self.reader = Some(reader.clone());
        Ok(reader)
    }

    /// XREADGROUP of up to one batch of new entries, blocking up to `block` if given.
    async fn read_new(
        &self,
        mut reader: MultiplexedConnection,
        block: Option<Duration>,
    ) -> anyhow::Result<Vec<Delivery>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(self.settings.batch_size);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis() as u64);
        }
        let reply: Value = cmd
            .arg("STREAMS")
            .arg(&self.stream_key)
            .arg(">")
            .query_async(&mut reader)
            .await
            .context("XREADGROUP")?;
        let mut deliveries = Vec::new();
        for stream in as_array(reply) {
            let mut parts = as_array(stream).into_iter();
            let _key = parts.next();
            for entry in parts.next().map(as_array).unwrap_or_default() {
                if let Some((id, fields)) = parse_entry(entry) {
                    deliveries.push(Delivery {
                        id,
                        fields,
                        deliveries: 1,
                    });
                }
            }
        }
        Ok(deliveries)
    }

    async fn handle(&self, deliveries: Vec<Delivery>, report: &mut BatchReport) -> anyhow::Result<()> {
        let max = self.settings.max_deliveries;
        let mut to_ack: Vec<String> = Vec::new();
        let mut to_dead_letter: Vec<(Delivery, String)> = Vec::new();
        let mut runnable: Vec<(Delivery, Envelope)> = Vec::new();
        for delivery in deliveries {
            if delivery.deliveries > max {
                let error = format!("delivered {} times (limit {max}) without success", delivery.deliveries);
                to_dead_letter.push((delivery, error));
                continue;
            }
            match Envelope::from_fields(delivery.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                Ok(envelope) => runnable.push((delivery, envelope)),
                Err(unparsable) => to_dead_letter.push((delivery, unparsable.to_string())),
            }
        }

        if !runnable.is_empty() {
            let (runnable, envelopes): (Vec<Delivery>, Vec<Envelope>) = runnable.into_iter().unzip();
            let chunk_len = envelopes.len().div_ceil(self.settings.concurrency.max(1));
            let handler = &self.handler;
            let histogram = metrics::histogram!("stream_handler_duration_seconds",
                "stream" => self.stream_label.clone(), "group" => self.group.clone());
            let calls = envelopes.chunks(chunk_len).map(|chunk| {
                let histogram = histogram.clone();
                async move {
                    let started = Instant::now();
                    let mut outcomes = handler.handle(chunk).await;
                    histogram.record(started.elapsed().as_secs_f64());
                    outcomes.resize(chunk.len(), Outcome::Retry("the handler answered no outcome".into()));
                    outcomes
                }
            });
            let outcomes: Vec<Outcome> = futures_util::future::join_all(calls)
                .await
                .into_iter()
                .flatten()
                .collect();
            for ((delivery, envelope), outcome) in runnable.into_iter().zip(&envelopes).zip(outcomes) {
                match outcome {
                    Outcome::Ack => to_ack.push(delivery.id),
                    Outcome::DeadLetter(error) => to_dead_letter.push((delivery, error)),
                    Outcome::Retry(error) if delivery.deliveries >= max => to_dead_letter.push((delivery, error)),
                    Outcome::Retry(error) => {
                        tracing::warn!(stream = %self.stream_label, group = %self.group, event_id = %envelope.event_id,
                            deliveries = delivery.deliveries, error = %error, "handler failed; will retry after back-off");
                        report.retried += 1;
                    }
                }
            }
        }

        let mut conn = self.redis.connection().await?;
        if !to_ack.is_empty() {
            let _: i64 = redis::cmd("XACK")
                .arg(&self.stream_key)
                .arg(&self.group)
                .arg(&to_ack)
                .query_async(&mut conn)
                .await
                .context("XACK")?;
            report.acked = to_ack.len();
        }
        if !to_dead_letter.is_empty() {
            // Each dead letter is added and its source entry acked atomically, so an entry is
            // never both lost and unacked, nor dead-lettered twice by one consumer.
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (delivery, error) in &to_dead_letter {
                tracing::error!(stream = %self.stream_label, group = %self.group, entry_id = %delivery.id,
                    deliveries = delivery.deliveries, error = %error, "entry dead-lettered");
                let fields = dead_letter::fields(
                    &delivery.fields,
                    &self.stream_key,
                    &delivery.id,
                    &self.group,
                    delivery.deliveries,
                    error,
                );
                pipe.cmd("XADD")
                    .arg(&self.dead_letter_key)
                    .arg("*")
                    .arg(fields)
                    .ignore();
                pipe.cmd("XACK")
                    .arg(&self.stream_key)
                    .arg(&self.group)
                    .arg(&delivery.id)
                    .ignore();
            }
            let () = pipe.query_async(&mut conn).await.context("dead-letter entries")?;
            report.dead_lettered = to_dead_letter.len();
        }
        self.count("acked", report.acked);
        self.count("retried", report.retried);
        self.count("dead_lettered", report.dead_lettered);
        Ok(())
    }

    fn count(&self, outcome: &'static str, n: usize) {
        if n > 0 {
            metrics::counter!("stream_events_total", "stream" => self.stream_label.clone(),
                "group" => self.group.clone(), "outcome" => outcome)
            .increment(n as u64);
        }
    }
}

/// `XGROUP CREATE … 0 MKSTREAM`; an existing group (BUSYGROUP) is fine.
pub async fn create_group(conn: &mut impl ConnectionLike, stream_key: &str, group: &str) -> anyhow::Result<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream_key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("create consumer group {group} on {stream_key}"))),
    }
}

/// The code (`NOGROUP`, `ERR`, …) of the Redis server error somewhere in `err`'s chain, if
/// any: errors are told apart by their code, never by their message text.
pub(crate) fn redis_error_code(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<redis::RedisError>())
        .and_then(redis::RedisError::code)
}

/// Exponential back-off with jitter for a loop whose last `failures` rounds failed:
/// 100 ms doubling to 10 s, each ±50%, so many workers do not retry in lockstep.
pub fn retry_delay(failures: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)));
    base.min(Duration::from_secs(10)).mul_f64(rand::random_range(0.5..1.5))
}

// ---- RESP helpers: replies are parsed by hand to keep field order and avoid a map per entry.

pub(crate) fn as_array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => as_string(other)?.parse().ok(),
    }
}

/// As [`as_string`], taking the bytes over instead of copying them.
fn into_string(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(
            String::from_utf8(bytes).unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
        ),
        other => as_string(&other),
    }
}

/// `[id, [field, value, …]]` → (id, fields); nil (a deleted entry) → None.
pub(crate) fn parse_entry(value: Value) -> Option<(String, Vec<(String, String)>)> {
    let mut parts = as_array(value).into_iter();
    let id = into_string(parts.next()?)?;
    let flat = parts.next().map(as_array)?;
    let mut fields = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        if let (Some(name), Some(value)) = (into_string(name), into_string(value)) {
            fields.push((name, value));
        }
    }
    Some((id, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(claim_idle_ms: u64, cap_ms: u64) -> ConsumerSettings {
        ConsumerSettings {
            batch_size: 10,
            concurrency: 1,
            block: Duration::from_millis(10),
            claim_idle: Duration::from_millis(claim_idle_ms),
            backoff_cap: Duration::from_millis(cap_ms),
            max_deliveries: 5,
            reclaim_interval: Duration::ZERO,
        }
    }

    #[test]
    fn backoff_doubles_per_delivery_up_to_the_cap() {
        let s = settings(1000, 5000);
        let waits: Vec<u128> = (1..=6).map(|n| s.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(s.backoff(u32::MAX).as_millis(), 5000);
        // A cap below claim_idle never shortens the first wait.
        assert_eq!(settings(1000, 10).backoff(1).as_millis(), 1000);
    }

    #[test]
    fn retry_delay_grows_and_is_bounded() {
        for failures in 1..40 {
            let d = retry_delay(failures);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_secs(15),
                "{failures}: {d:?}"
            );
        }
    }

    #[test]
    fn entries_parse_in_order_and_nil_is_none() {
        let entry = Value::Array(vec![
            Value::BulkString(b"1-1".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"b".to_vec()),
                Value::BulkString(b"2".to_vec()),
                Value::BulkString(b"a".to_vec()),
                Value::BulkString(b"1".to_vec()),
            ]),
        ]);
        let (id, fields) = parse_entry(entry).unwrap();
        assert_eq!(id, "1-1");
        assert_eq!(fields, vec![("b".into(), "2".into()), ("a".into(), "1".into())]);
        assert!(parse_entry(Value::Nil).is_none());
    }
}
