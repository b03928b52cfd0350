//! `imticket-bench`: measures the event backbone, the catalog's HTTP latency, the waiting
//! room and booking (see docs/PERFORMANCE.md) and runs probe consumers for the crash tests. Reads the same
//! environment as the other binaries.

#[path = "imticket-bench/booking.rs"]
mod booking;
#[path = "imticket-bench/load.rs"]
mod load;
#[path = "imticket-bench/queue.rs"]
mod queue;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use imticket::app::Deps;
use imticket::config::Config;
use imticket::events::{Envelope, Stream};
use imticket::infra::outbox;
use imticket::stream::probe::{NoopHandler, ProbeHandler};
use imticket::stream::{Consumer, Handler, StreamRuntime, Subscription};

#[derive(Parser)]
#[command(name = "imticket-bench", about = "Benchmarks and probe consumers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum HandlerKind {
    /// Acks everything.
    Noop,
    /// processed-events insert + one effect row per event, one transaction per batch.
    Probe,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InsertStrategy {
    Unnest,
    RowByRow,
}

#[derive(Subcommand)]
enum Command {
    /// XADD `count` probe events (and `garbage` unparsable entries) to a stream.
    Produce {
        #[arg(long)]
        stream_key: String,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        garbage: usize,
    },
    /// Run one probe consumer until SIGTERM/SIGINT (what the crash tests kill).
    Consume {
        #[arg(long)]
        stream_key: String,
        #[arg(long)]
        group: String,
        #[arg(long, value_enum)]
        handler: HandlerKind,
        /// Simulated work per handler call.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Fill a fresh stream with `events` entries, then time one process consuming them.
    ConsumeRate {
        #[arg(long, value_enum)]
        handler: HandlerKind,
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Consumers (tasks) in this one process.
        #[arg(long, default_value_t = 1)]
        consumers: usize,
        /// Take strict turns with Redis (read, handle, ack) instead of reading the next batch
        /// while handling one, as the worker does: the "before" of the read-ahead.
        #[arg(long)]
        no_read_ahead: bool,
    },
    /// Insert `seats` seats into a fresh schedule, in chunks of 5,000 per transaction, with one
    /// UNNEST statement per chunk or one INSERT per seat.
    SeatInsert {
        #[arg(long, default_value_t = 100_000)]
        seats: u32,
        #[arg(long, value_enum)]
        strategy: InsertStrategy,
    },
    /// Write `events` outbox rows, then time `relays` relays publishing them.
    RelayRate {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 1)]
        relays: usize,
    },
    /// Insert `old` processed-events records older than the retention and `fresh` ones, then
    /// time the prune pass the workers run (each statement and the whole pass) and a second
    /// pass with nothing left to delete (what every maintenance period costs afterwards).
    PruneProcessed {
        #[arg(long, default_value_t = 1_000_000)]
        old: i64,
        #[arg(long, default_value_t = 100_000)]
        fresh: i64,
    },
    /// End-to-end latency of sequential GETs over one keep-alive HTTP/1.1 connection, with a
    /// client that costs next to nothing (k6 adds tens of microseconds per request).
    HttpLatency {
        /// host:port of the API.
        #[arg(long)]
        addr: String,
        /// Path to GET (repeatable); the paths are requested in turn.
        #[arg(long)]
        path: Vec<String>,
        /// A file with one path per line, added to `--path`.
        #[arg(long)]
        paths_file: Option<std::path::PathBuf>,
        /// Requests to time (0: each path once).
        #[arg(long, default_value_t = 0)]
        requests: usize,
        /// Wait for each answer by polling the socket instead of sleeping in `read`: the
        /// client then never pays the scheduler's wake-up (tens of microseconds on these VMs).
        #[arg(long)]
        spin: bool,
    },
    /// GET `path` `requests` times over `connections` keep-alive connections, each sending
    /// back to back: requests/s, p50/p99, errors (the HTTP floor with `/health/live`).
    HttpLoad {
        #[arg(long)]
        addr: String,
        #[arg(long, default_value = "/health/live")]
        path: String,
        #[arg(long, default_value_t = 100_000)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// `requests` joins of a concert's waiting room, each by a fresh user (access tokens minted
    /// with JWT_SECRET); the queue tokens are written to `tokens_out`. Also the Redis commands
    /// per join (INFO commandstats before and after).
    QueueJoin {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        concert: uuid::Uuid,
        #[arg(long, default_value_t = 100_000)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long)]
        tokens_out: std::path::PathBuf,
    },
    /// `GET /queue/status` with the queue tokens of `tokens_file` in turn (`requests` 0: each
    /// once), and the Redis commands per status call.
    QueueStatus {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        tokens_file: std::path::PathBuf,
        #[arg(long, default_value_t = 0)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// With a pre-queue joined (tokens in `tokens_file`) before `opens_at_ms`: the time from
    /// the opening until the last joiner, then every joiner, is told a position; then the
    /// promoter's round on that line.
    QueueOpen {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        concert: uuid::Uuid,
        #[arg(long)]
        tokens_file: std::path::PathBuf,
        /// Unix ms.
        #[arg(long)]
        opens_at_ms: i64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Insert `users` users with SQL, mint their access tokens and have each join `concert`'s
    /// line over HTTP (all must be active at once); writes `user_id access queue` lines to `out`.
    BookingFans {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        concert: uuid::Uuid,
        #[arg(long)]
        users: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Each fan of `fans` holds one seat of the schedules (repeatable `--schedule`): distinct
    /// seats in turn over the schedules, or `--random` seats (contention). Holds/s, p50/p99,
    /// outcomes, PostgreSQL transactions and statements; the winners (with their reservation)
    /// go to `out`. `--readers N`: N more connections read the first schedule's seat map back
    /// to back while the holds run (reads/s, latency, PostgreSQL queries per read).
    BookingHolds {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        fans: std::path::PathBuf,
        #[arg(long, required = true)]
        schedule: Vec<uuid::Uuid>,
        #[arg(long)]
        random: bool,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 0)]
        readers: usize,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Each fan of `fans` charges `amount` points (its own Idempotency-Key).
    BookingCharge {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        fans: std::path::PathBuf,
        #[arg(long, default_value_t = 100_000)]
        amount: i64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Each fan of `holds` (written by booking-holds) pays its reservation: payments/s.
    BookingPay {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        holds: std::path::PathBuf,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// `users` fresh fans each join → hold a distinct seat of `schedule` → pay, then the wait
    /// until the payment worker has confirmed every ticket: tickets/s end to end.
    BookingFlow {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        concert: uuid::Uuid,
        #[arg(long)]
        schedule: uuid::Uuid,
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Prints `EVALSHA <sha> 8 <keys> <args>` for redis-benchmark: the real join script (fresh
    /// users via __rand_int__) or status script (an entry from the middle of `tokens_file`).
    QueueEvalshaArgs {
        #[arg(long)]
        script: String,
        #[arg(long)]
        concert: uuid::Uuid,
        #[arg(long)]
        tokens_file: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::from_env_or_exit("imticket-bench");
    imticket::telemetry::init("imticket-bench");
    match run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("imticket-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn probe_envelope(n: usize) -> Envelope {
    Envelope::new("probe.ping", serde_json::json!({ "n": n }))
}

async fn produce(deps: &Deps, key: &str, count: usize, garbage: usize) -> anyhow::Result<()> {
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

async fn prune_processed(deps: &Deps, old: i64, fresh: i64) -> anyhow::Result<()> {
    use imticket::infra::processed_events;
    use imticket::stream::pruning::PRUNE_BATCH;
    let retention = deps.config.stream.processed_events_retention;
    // Runtime queries: synthetic rows for a benchmark, not part of the product's queries.
    let fill = |n: i64, age_secs: f64| {
        sqlx::query(
            "INSERT INTO processed_events (event_id, consumer_group, processed_at)
             SELECT gen_random_uuid(), 'bench-prune', now() - make_interval(secs => $2) - random() * interval '1 day'
             FROM generate_series(1, $1)",
        )
        .bind(n)
        .bind(age_secs)
        .execute(&deps.db)
    };
    fill(old, retention.as_secs_f64() + 86_400.0)
        .await
        .context("insert old records")?;
    fill(fresh, 0.0).await.context("insert fresh records")?;
    sqlx::query("ANALYZE processed_events").execute(&deps.db).await?;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM processed_events")
            .fetch_one(&deps.db)
            .await
            .context("count processed events")
    };
    let before_count = count().await?;

    // The worker's pass (`pruning::prune_processed_events`), statement by statement, timed.
    let before = chrono::Utc::now() - chrono::Duration::from_std(retention)?;
    let mut conn = deps.db.acquire().await?;
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
        .execute(&deps.db)
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

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let deps = imticket::root::deps(config)?;
    let streams = imticket::root::stream_runtime(&deps);
    match cli.command {
        Command::Produce {
            stream_key,
            count,
            garbage,
        } => produce(&deps, &stream_key, count, garbage).await,
        Command::Consume {
            stream_key,
            group,
            handler,
            delay_ms,
        } => {
            // The unit a consumer role runs: the consumer plus its stream's housekeeping.
            let shutdown = imticket::shutdown::on_signal()?;
            let mut tasks = tokio::task::JoinSet::new();
            match handler {
                HandlerKind::Noop => streams.spawn(
                    &mut tasks,
                    Subscription::custom(stream_key, group, NoopHandler),
                    shutdown,
                ),
                HandlerKind::Probe => {
                    ProbeHandler::install(&deps.db).await?;
                    let probe = ProbeHandler::new(deps.db.clone(), &group, Duration::from_millis(delay_ms));
                    streams.spawn(&mut tasks, Subscription::custom(stream_key, group, probe), shutdown)
                }
            }
            while let Some(result) = tasks.join_next().await {
                result.context("consumer task")?;
            }
            Ok(())
        }
        Command::ConsumeRate {
            handler,
            events,
            consumers,
            no_read_ahead,
        } => {
            let read_ahead = !no_read_ahead;
            let key = format!("bench:{}", uuid::Uuid::new_v4().simple());
            let started = Instant::now();
            produce(&deps, &key, events, 0).await?;
            let produced = started.elapsed();
            println!(
                "produced {events} events in {:.2}s ({:.0}/s, pipelined XADD)",
                produced.as_secs_f64(),
                events as f64 / produced.as_secs_f64()
            );
            let rate = match handler {
                HandlerKind::Noop => {
                    drain(&streams, &key, events, consumers, read_ahead, || Arc::new(NoopHandler)).await?
                }
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
        Command::SeatInsert { seats, strategy } => {
            use imticket::infra::catalog as repo;
            let sections = vec![imticket::domain::catalog::RawSection {
                name: "Bench".into(),
                rows: i64::from(seats.div_ceil(500)),
                seats_per_row: 500,
                price: 1000,
            }];
            let layout = imticket::domain::catalog::SeatLayout::parse(sections).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut tx = deps.db.begin().await?;
            let concert = repo::insert_concert(&mut tx, uuid::Uuid::now_v7(), "bench", "", None).await?;
            let schedule = repo::insert_schedule(
                &mut tx,
                uuid::Uuid::now_v7(),
                concert.id,
                chrono::Utc::now() + chrono::Duration::days(9),
            )
            .await?;
            tx.commit().await?;
            let total = u64::from(seats);
            let started = Instant::now();
            for start in (0..total).step_by(5_000) {
                let end = (start + 5_000).min(total);
                let mut tx = deps.db.begin().await?;
                match strategy {
                    InsertStrategy::Unnest => {
                        repo::insert_seats(&mut tx, schedule.id, &layout.columns(start, end)).await?;
                    }
                    InsertStrategy::RowByRow => {
                        for p in &layout.positions(start, end) {
                            repo::insert_seat_row_by_row(
                                &mut tx,
                                schedule.id,
                                uuid::Uuid::now_v7(),
                                p.section,
                                p.row,
                                p.number,
                                p.price,
                            )
                            .await?;
                        }
                    }
                }
                tx.commit().await?;
            }
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "inserted {seats} seats in {elapsed:.2}s ({:.0} seats/s)",
                f64::from(seats) / elapsed
            );
            Ok(())
        }
        Command::PruneProcessed { old, fresh } => prune_processed(&deps, old, fresh).await,
        Command::HttpLatency {
            addr,
            mut path,
            paths_file,
            requests,
            spin,
        } => {
            if let Some(file) = paths_file {
                let text = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
                path.extend(
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| l.trim().to_owned()),
                );
            }
            anyhow::ensure!(!path.is_empty(), "no path to GET");
            let requests = if requests == 0 { path.len() } else { requests };
            let mut times = tokio::task::spawn_blocking(move || http_latency(&addr, &path, requests, spin)).await??;
            times.sort();
            let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
            println!(
                "{requests} requests: median {:.1} us, p90 {:.1} us, p99 {:.1} us",
                at(0.5).as_secs_f64() * 1e6,
                at(0.9).as_secs_f64() * 1e6,
                at(0.99).as_secs_f64() * 1e6
            );
            Ok(())
        }
        Command::HttpLoad {
            addr,
            path,
            requests,
            connections,
        } => queue::http_load(&addr, &path, requests, connections).await,
        Command::QueueJoin {
            addr,
            concert,
            requests,
            connections,
            tokens_out,
        } => queue::join(&deps, &addr, concert, requests, connections, &tokens_out).await,
        Command::QueueStatus {
            addr,
            tokens_file,
            requests,
            connections,
        } => queue::status(&deps, &addr, &tokens_file, requests, connections).await,
        Command::QueueOpen {
            addr,
            concert,
            tokens_file,
            opens_at_ms,
            connections,
        } => queue::open(&deps, &addr, concert, &tokens_file, opens_at_ms, connections).await,
        Command::QueueEvalshaArgs {
            script,
            concert,
            tokens_file,
        } => queue::evalsha_args(&deps, &script, concert, tokens_file.as_deref()),
        Command::BookingFans {
            addr,
            concert,
            users,
            connections,
            out,
        } => booking::fans(&deps, &addr, concert, users, connections, &out).await,
        Command::BookingHolds {
            addr,
            fans,
            schedule,
            random,
            connections,
            readers,
            out,
        } => {
            let run = booking::HoldsRun {
                random,
                connections,
                readers,
                out,
            };
            booking::holds(&deps, &addr, &fans, &schedule, &run).await
        }
        Command::BookingCharge {
            addr,
            fans,
            amount,
            connections,
        } => booking::charge(&addr, &fans, amount, connections).await,
        Command::BookingPay {
            addr,
            holds,
            connections,
        } => booking::pay(&deps, &addr, &holds, connections).await,
        Command::BookingFlow {
            addr,
            concert,
            schedule,
            users,
            connections,
        } => booking::flow(&deps, &addr, concert, schedule, users, connections).await,
        Command::RelayRate { events, relays } => {
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
                let batch = deps.config.stream.outbox_batch_size;
                tasks.spawn(async move {
                    let mut published = 0;
                    loop {
                        let n = outbox::publish_oldest(&db, &redis, &keys, batch).await?;
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
    }
}

/// Reads from a non-blocking socket, polling until bytes arrive.
struct Spinning(std::net::TcpStream);

impl std::io::Read for Spinning {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                other => return other,
            }
        }
    }
}

/// Times `requests` sequential GETs of `paths` (in turn) on one connection; every answer must
/// be 200 with a Content-Length body, read in full.
fn http_latency(addr: &str, paths: &[String], requests: usize, spin: bool) -> anyhow::Result<Vec<Duration>> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let source: Box<dyn Read> = if spin {
        stream.set_nonblocking(true)?;
        Box::new(Spinning(stream))
    } else {
        Box::new(stream)
    };
    let mut reader = BufReader::new(source);
    let mut times = Vec::with_capacity(requests);
    let (mut line, mut body) = (String::new(), Vec::new());
    for i in 0..requests {
        let path = &paths[i % paths.len()];
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let started = Instant::now();
        let mut pending = request.as_bytes();
        while !pending.is_empty() {
            // In spin mode the socket is non-blocking (the clone shares the flag).
            match writer.write(pending) {
                Ok(n) => pending = &pending[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => return Err(e.into()),
            }
        }
        let (mut status, mut length) = (String::new(), None);
        loop {
            line.clear();
            anyhow::ensure!(reader.read_line(&mut line)? > 0, "connection closed");
            if line == "\r\n" {
                break;
            }
            if status.is_empty() {
                status = line.trim_end().to_owned();
            } else if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        body.resize(length.context("no Content-Length")?, 0);
        reader.read_exact(&mut body)?;
        times.push(started.elapsed());
        anyhow::ensure!(status.starts_with("HTTP/1.1 200"), "GET {path}: {status}");
    }
    Ok(times)
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
