//! One consumer-group consumer: reads a stream in batches, runs a [`Handler`], acks after the
//! handler's transaction committed, reclaims entries that other (dead or failing) consumers
//! left pending ([`super::reclaim`]), and dead-letters poison entries so the stream never
//! stalls behind them.
//!
//! Delivery is at-least-once; handlers make the *effect* exactly-once by recording the
//! `event_id` in `processed_events` inside their own transaction (see
//! [`crate::infra::postgres::processed_events`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::dead_letter;
use super::delivery::Delivery;
use super::handler::{Handler, Outcome};
use super::subscription::Subscription;
use crate::config::ConsumerSettings;
use crate::events::Envelope;
use crate::infra::redis::keys::Keys;
use crate::infra::redis::streams::{self, is_missing_group};
use crate::infra::redis::{GroupReader, Redis};
use crate::retry::retry_delay;
use crate::telemetry::trace_context;

/// A consumer name unique per process: host, pid and a random suffix (a restarted process
/// with a recycled pid must not inherit a dead consumer's pending entries by name).
pub fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
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

pub struct Consumer<H> {
    pub(super) stream_key: String,
    pub(super) stream_label: String,
    pub(super) group: String,
    dead_letter_key: String,
    pub(super) name: String,
    pub(super) redis: Redis,
    /// Blocking reads get a connection of their own: a BLOCKed XREADGROUP would otherwise
    /// hold up every other command multiplexed on the shared connection.
    reader: Option<GroupReader>,
    handler: Arc<H>,
    pub(super) settings: ConsumerSettings,
    last_reclaim: Option<Instant>,
    /// Where the next reclaim round goes on scanning the pending list (an exclusive XPENDING
    /// start, `(id`); `None`: from the head. See [`super::reclaim::RECLAIM_PAGES_PER_ROUND`].
    pub(super) reclaim_cursor: Option<String>,
    group_ready: bool,
    /// A batch read ahead while the previous one was being handled: delivered to this
    /// consumer (pending under its name) but not handled yet. The next round handles it.
    ahead: Option<Vec<Delivery>>,
}

impl<H: Handler> Consumer<H> {
    pub fn new(redis: Redis, keys: &Keys, subscription: Subscription<H>, settings: ConsumerSettings) -> Self {
        let Subscription {
            stream_key,
            label,
            group,
            handler,
        } = subscription;
        Self {
            stream_key,
            stream_label: label,
            group,
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

    /// The logical stream name used in metrics and logs.
    pub fn label(&self) -> &str {
        &self.stream_label
    }

    /// Creates the stream and the group if missing. The group starts at id 0, so entries
    /// published before any worker ever ran are delivered too.
    pub async fn ensure_group(&mut self) -> anyhow::Result<()> {
        let mut conn = self.redis.connection().await?;
        streams::create_group(&mut conn, &self.stream_key, &self.group).await?;
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
                    if is_missing_group(&err) {
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

    /// The connection for XREADGROUP (a clone shares it), opened on first use.
    async fn reader(&mut self) -> anyhow::Result<GroupReader> {
        if let Some(reader) = &self.reader {
            return Ok(reader.clone());
        }
        let reader = self.redis.group_reader(self.settings.block).await?;
        self.reader = Some(reader.clone());
        Ok(reader)
    }

    /// XREADGROUP of up to one batch of new entries, blocking up to `block` if given.
    async fn read_new(&self, mut reader: GroupReader, block: Option<Duration>) -> anyhow::Result<Vec<Delivery>> {
        let entries = reader
            .read_group(
                &self.stream_key,
                &self.group,
                &self.name,
                self.settings.batch_size,
                block,
            )
            .await?;
        Ok(entries.into_iter().map(|e| Delivery::first(e.id, e.fields)).collect())
    }

    async fn handle(&self, deliveries: Vec<Delivery>, report: &mut BatchReport) -> anyhow::Result<()> {
        let max = self.settings.max_deliveries;
        let mut to_ack: Vec<String> = Vec::new();
        let mut to_dead_letter: Vec<(Delivery, String)> = Vec::new();
        // Deliveries that did not count (a dependency was down), by the count to set back.
        let mut uncounted: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
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
            let handler = &self.handler;
            let calls = if handler.whole_batches() {
                1
            } else {
                self.settings.concurrency.max(1)
            };
            let chunk_len = envelopes.len().div_ceil(calls);
            let histogram = metrics::histogram!("stream_handler_duration_seconds",
                "stream" => self.stream_label.clone(), "group" => self.group.clone());
            let calls = envelopes.chunks(chunk_len).map(|chunk| {
                let histogram = histogram.clone();
                let span = self.handler_span(chunk);
                async move {
                    let started = Instant::now();
                    let mut outcomes = handler.handle(chunk).instrument(span).await;
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
                    Outcome::Unavailable(error) => {
                        tracing::warn!(stream = %self.stream_label, group = %self.group, event_id = %envelope.event_id,
                            error = %error, "a dependency is down; the event stays pending and this delivery does not count");
                        uncounted
                            .entry(delivery.deliveries.saturating_sub(1))
                            .or_default()
                            .push(delivery.id);
                        report.retried += 1;
                    }
                }
            }
        }

        let mut conn = self.redis.connection().await?;
        if !to_ack.is_empty() {
            streams::ack(&mut conn, &self.stream_key, &self.group, &to_ack).await?;
            report.acked = to_ack.len();
        }
        for (count, ids) in &uncounted {
            streams::set_delivery_count(&mut conn, &self.stream_key, &self.group, &self.name, ids, *count).await?;
        }
        if !to_dead_letter.is_empty() {
            for (delivery, error) in &to_dead_letter {
                tracing::error!(stream = %self.stream_label, group = %self.group, entry_id = %delivery.id,
                    deliveries = delivery.deliveries, error = %error, "entry dead-lettered");
            }
            dead_letter::move_to_dead_letter(
                &mut conn,
                &self.dead_letter_key,
                &self.stream_key,
                &self.group,
                &to_dead_letter,
            )
            .await?;
            report.dead_lettered = to_dead_letter.len();
        }
        self.count("acked", report.acked);
        self.count("retried", report.retried);
        self.count("dead_lettered", report.dead_lettered);
        Ok(())
    }

    /// The span a handler call runs in, for every handler alike: a child of the span that
    /// wrote the first event of the chunk (its `traceparent`, carried by the outbox row and the
    /// stream entry), linked to the writers of the others, so a request's trace goes on into
    /// the worker. Events without a trace context start a trace of their own.
    fn handler_span(&self, chunk: &[Envelope]) -> tracing::Span {
        let first = chunk.first();
        let span = tracing::info_span!("handle events",
            otel.name = %format_args!("handle {}", self.stream_label),
            otel.kind = "consumer",
            stream = %self.stream_label, group = %self.group, events = chunk.len(),
            event_type = first.map_or("", |e| e.event_type.as_str()),
            event_id = tracing::field::Empty);
        if let [only] = chunk {
            span.record("event_id", tracing::field::display(only.event_id));
        }
        trace_context::set_remote_parent(&span, first.and_then(|e| e.trace_id.as_deref()));
        for envelope in chunk.iter().skip(1) {
            trace_context::add_remote_link(&span, envelope.trace_id.as_deref());
        }
        span
    }

    pub(super) fn count(&self, outcome: &'static str, n: usize) {
        if n > 0 {
            metrics::counter!("stream_events_total", "stream" => self.stream_label.clone(),
                "group" => self.group.clone(), "outcome" => outcome)
            .increment(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_unique() {
        assert_ne!(consumer_name(), consumer_name());
        assert!(consumer_name().contains(&std::process::id().to_string()));
    }
}
