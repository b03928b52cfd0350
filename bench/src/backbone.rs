//! Event-backbone benchmarks (scripts/bench.sh, scripts/bench-prune.sh): consumers draining a
//! stream with a no-op or an idempotent PostgreSQL handler, outbox relays, and the pruning of
//! the processed-events records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use imticket::app::Deps;
use imticket::events::{Envelope, Stream};
use imticket::infra::postgres::outbox;
use imticket::infra::publisher;
use imticket::stream::probe::{NoopHandler, ProbeHandler};
use imticket::stream::{Consumer, Handler, StreamRuntime, Subscription};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum HandlerKind {
    /// Acks everything.
    Noop,
    /// processed-events insert + one effect row per event, one transaction per batch.
    Probe,
}

/// XADD `count` probe events (and `garbage` unparsable entries) to a stream.
#[derive(clap::Args)]
pub struct Produce {
    #[arg(long)]
    pub stream_key: String,
    #[arg(long)]
    pub count: usize,
    #[arg(long, default_value_t = 0)]
    pub garbage: usize,
}

/// Fill a fresh stream with `events` entries, then time one process consuming them.
#[derive(clap::Args)]
pub struct ConsumeRate {
    #[arg(long, value_enum)]
    pub handler: HandlerKind,
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Consumers (tasks) in this one process.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Take strict turns with Redis (read, handle, ack) instead of reading the next batch
    /// while handling one, as the worker does: the "before" of the read-ahead.
    #[arg(long)]
    pub no_read_ahead: bool,
}

/// Write `events` outbox rows, then time `relays` relays publishing them.
#[derive(clap::Args)]
pub struct RelayRate {
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    #[arg(long, default_value_t = 1)]
    pub relays: usize,
}

/// Insert `old` processed-events records older than the retention and `fresh` ones, then
/// time the prune pass the workers run (each statement and the whole pass) and a second
/// pass with nothing left to delete (what every maintenance period costs afterwards).
#[derive(clap::Args)]
pub struct PruneProcessed {
    #[arg(long, default_value_t = 1_000_000)]
    pub old: i64,
    #[arg(long, default_value_t = 100_000)]
    pub fresh: i64,
}

fn probe_envelope(n: usize) -> Envelope {
    Envelope::new("probe.ping", serde_json::json!({ "n": n }))
}

pub async fn produce(deps: &Deps, args: &Produce) -> anyhow::Result<()> {
    produce_to(deps, &args.stream_key, args.count, args.garbage).await
}

async fn produce_to(deps: &Deps, key: &str, count: usize, garbage: usize) -> anyhow::Result<()> {
    let mut conn = deps.redis.connection().await?;
    for start in (0..count).step_by(1000) {
        let mut pipe = redis::pipe();
        for n in start..(start + 1000).min(count) {
            pipe.cmd("XADD")
                .arg(key)
                .arg("*")
                .arg(probe_envelope(n).to_fields())
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await.context("XADD")?;
    }
    for n in 0..garbage {
        let () = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("garbage")
            .arg(n)
            .query_async(&mut conn)
            .await?;
    }
    Ok(())
}

pub async fn consume_rate(deps: &Deps, args: &ConsumeRate) -> anyhow::Result<()> {
    let ConsumeRate {
        handler,
        events,
        consumers,
        no_read_ahead,
    } = *args;
    let streams = imticket::root::stream_runtime(deps);
    let read_ahead = !no_read_ahead;
    let key = format!("bench:{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();
    produce_to(deps, &key, events, 0).await?;
    let produced = started.elapsed();
    println!(
        "produced {events} events in {:.2}s ({:.0}/s, pipelined XADD)",
        produced.as_secs_f64(),
        events as f64 / produced.as_secs_f64()
    );
    let rate = match handler {
        HandlerKind::Noop => drain(&streams, &key, events, consumers, read_ahead, || Arc::new(NoopHandler)).await?,
        HandlerKind::Probe => {
            ProbeHandler::install(&deps.db).await?;
            let db = deps.db.clone();
            drain(&streams, &key, events, consumers, read_ahead, move || {
                Arc::new(ProbeHandler::new(db.clone(), "bench", Duration::ZERO))
            })
            .await?
        }
    };
    println!(
        "consumed {events} events: {rate:.0} events/s; peak RSS {:.1} MiB",
        peak_rss_mib()
    );
    let () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut deps.redis.connection().await?)
        .await?;
    Ok(())
}

pub async fn relay_rate(deps: &Deps, args: &RelayRate) -> anyhow::Result<()> {
    let RelayRate { events, relays } = *args;
    let keys = deps.keys.clone();
    let mut tx = deps.db.begin().await?;
    for _ in 0..events {
        outbox::append_envelope(&mut tx, Stream::Expiry, &probe_envelope(0)).await?;
    }
    tx.commit().await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..relays {
        let (db, redis, keys) = (deps.db.clone(), deps.redis.clone(), keys.clone());
        let batch = deps.config.streams.outbox_batch_size;
        tasks.spawn(async move {
            let mut published = 0;
            loop {
                let n = publisher::publish_oldest(&db, &redis, &keys, batch).await?;
                if n == 0 {
                    return anyhow::Ok(published);
                }
                published += n;
            }
        });
    }
    let mut total = 0;
    while let Some(result) = tasks.join_next().await {
        total += result??;
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(total == events, "published {total}, expected {events}");
    println!(
        "relayed {events} outbox events with {relays} relay(s) in {:.2}s: {:.0} events/s; peak RSS {:.1} MiB",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}

pub async fn prune_processed(deps: &Deps, &PruneProcessed { old, fresh }: &PruneProcessed) -> anyhow::Result<()> {
    use imticket::infra::postgres::processed_events;
    use imticket::stream::pruning::PRUNE_BATCH;
    let retention = deps.config.streams.processed_events_retention;
    // Runtime queries: synthetic rows for a benchmark, not part of the product's queries.
    let fill = |n: i64, age_secs: f64| {
        sqlx::query(
            "INSERT INTO processed_events (event_id, consumer_group, processed_at)
             SELECT gen_random_uuid(), 'bench-prune', now() - make_interval(secs => $2) - random() * interval '1 day'
             FROM generate_series(1, $1)",
        )
        .bind(n)
        .bind(age_secs)
        .execute(deps.db.pool())
    };
    fill(old, retention.as_secs_f64() + 86_400.0)
        .await
        .context("insert old records")?;
    fill(fresh, 0.0).await.context("insert fresh records")?;
    sqlx::query("ANALYZE processed_events").execute(deps.db.pool()).await?;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM processed_events")
            .fetch_one(deps.db.pool())
            .await
            .context("count processed events")
    };
    let before_count = count().await?;

    // The worker's pass (`pruning::prune_processed_events`), statement by statement, timed.
    let before = chrono::Utc::now() - chrono::Duration::from_std(retention)?;
    let mut conn = deps.db.pool().acquire().await?;
    let (mut deleted, mut times) = (0u64, Vec::new());
    let started = Instant::now();
    loop {
        let at = Instant::now();
        let n = processed_events::prune(&mut conn, before, PRUNE_BATCH).await?;
        times.push(at.elapsed());
        deleted += n;
        if n < PRUNE_BATCH as u64 {
            break;
        }
    }
    let pass = started.elapsed();
    times.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let at = Instant::now();
    let idle = imticket::stream::pruning::prune_processed_events(
        &deps.db,
        retention,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await?;
    let idle_pass = at.elapsed();
    println!(
        "processed_events: {before_count} rows before ({old} older than the retention, {fresh} fresh), {} after",
        count().await?
    );
    println!(
        "prune pass: deleted {deleted} in {:.2}s ({:.0} rows/s), {} statements of <= {PRUNE_BATCH}: median {:.1} ms, slowest {:.1} ms",
        pass.as_secs_f64(),
        deleted as f64 / pass.as_secs_f64(),
        times.len(),
        ms(times.get(times.len() / 2)),
        ms(times.last())
    );
    println!(
        "next pass (nothing to prune): deleted {idle} in {:.2} ms",
        idle_pass.as_secs_f64() * 1e3
    );
    sqlx::query("DELETE FROM processed_events WHERE consumer_group = 'bench-prune'")
        .execute(deps.db.pool())
        .await?;
    Ok(())
}

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Consumes until `events` entries were acked; returns events per second.
async fn drain<H: Handler>(
    streams: &StreamRuntime,
    key: &str,
    events: usize,
    consumers: usize,
    read_ahead: bool,
    handler: impl Fn() -> Arc<H>,
) -> anyhow::Result<f64> {
    let mut instances = Vec::new();
    for _ in 0..consumers {
        let mut c: Consumer<H> = streams.consumer(Subscription::custom(key, "bench", handler()));
        c.ensure_group().await?;
        instances.push(c);
    }
    let started = Instant::now();
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in instances {
        let acked = acked.clone();
        tasks.spawn(async move {
            while acked.load(std::sync::atomic::Ordering::Relaxed) < events {
                let report = if read_ahead {
                    c.process_batch_reading_ahead().await?
                } else {
                    c.process_batch().await?
                };
                acked.fetch_add(report.acked, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}
