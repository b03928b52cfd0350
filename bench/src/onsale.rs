//! `onsale`: a whole on-sale through the lean load generator (scripts/bench-onsale.sh). Fans
//! are inserted with SQL and charged over HTTP, join the pre-queue before the opening, ask
//! their status as `poll_after_seconds` tells them, and once active hold 1–2 seats (dealt from
//! the schedule's seats, shuffled; others after a 409), pay, and are done; a fan who finds it
//! sold out leaves the line. Every request of the sale is recorded (seconds since the opening,
//! kind, latency, status) into a CSV for the per-second plot (scripts/plot-onsale.py), and the
//! run ends with one summary per kind of request.
//!
//! The fans' requests share `connections` keep-alive connections, as a balancer's to the API
//! would: the API sees the requests of 20,000 fans, not 20,000 sockets (the SSE benchmark is
//! the one that holds a connection per fan). The time a request waited for a free connection
//! is reported apart, so a generator that fell behind shows.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use imticket::app::Deps;
use rand::seq::SliceRandom;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::booking::{access_token, charge_request, insert_fans};
use crate::load;

#[derive(clap::Args)]
pub struct Onsale {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub concert: Uuid,
    #[arg(long)]
    pub schedule: Uuid,
    /// The concert's `sale_opens_at`: every fan joins before it.
    #[arg(long)]
    pub opens_at: DateTime<Utc>,
    #[arg(long, default_value_t = 20_000)]
    pub fans: usize,
    /// Keep-alive connections the fans' requests share.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Every request of the sale, one line each: `seconds_since_opening,kind,latency_ms,status`.
    #[arg(long)]
    pub csv: PathBuf,
    /// The sale stops here at the latest (what it did is reported).
    #[arg(long, default_value_t = 600)]
    pub max_seconds: u64,
    /// `name=pid` of a process whose CPU during the sale (from the opening to the last fan)
    /// is reported, with its children's (the postmaster's backends); this process is `loadgen`.
    #[arg(long = "watch")]
    pub watch: Vec<String>,
}

/// CPU seconds (utime + stime) of `pid` and, with `children`, of every process whose parent it
/// is, from /proc.
fn cpu_seconds(pid: u32, children: bool) -> f64 {
    let ticks = |pid: &str| -> Option<(u64, u32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        let (ppid, utime, stime) = (
            f.get(1)?.parse().ok()?,
            f.get(11)?.parse::<u64>().ok()?,
            f.get(12)?.parse::<u64>().ok()?,
        );
        Some((utime + stime, ppid))
    };
    let mut total = ticks(&pid.to_string()).map_or(0, |t| t.0);
    if children && let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
                continue;
            };
            if let Some((t, ppid)) = ticks(name)
                && ppid == pid
            {
                total += t;
            }
        }
    }
    // CLK_TCK is 100 on Linux.
    total as f64 / 100.0
}

/// The CPU of each watched process (and this one) now.
fn cpu_now(watch: &[(String, u32)]) -> Vec<f64> {
    let mut now: Vec<f64> = watch
        .iter()
        .map(|(name, pid)| cpu_seconds(*pid, name == "postgres"))
        .collect();
    now.push(cpu_seconds(std::process::id(), false));
    now
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Status,
    Hold,
    Pay,
    Leave,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Status => "status",
            Kind::Hold => "hold",
            Kind::Pay => "pay",
            Kind::Leave => "leave",
        }
    }

    /// Answers the flow expects (a taken seat and the per-user cap are 409s it handles).
    fn expected(self, status: u16) -> bool {
        match self {
            Kind::Status => status == 200,
            Kind::Hold => status == 201 || status == 409,
            Kind::Pay => status == 201,
            Kind::Leave => (200..300).contains(&status),
        }
    }
}

struct Record {
    /// Seconds since the opening when the request was sent.
    at: f64,
    kind: Kind,
    latency: Duration,
    /// Time spent waiting for a free connection first.
    queued: Duration,
    /// 0: the connection failed.
    status: u16,
}

/// The shared connections: a request takes one (or opens one when a failed exchange dropped
/// it), and gives it back after the answer.
struct Connections {
    addr: String,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
    permits: Semaphore,
}

impl Connections {
    /// Up to `n` connections, each opened when first needed: one opened long before its first
    /// request would be closed by the server's request timeout (408) meanwhile.
    fn new(addr: &str, n: usize) -> Self {
        Self {
            addr: addr.to_owned(),
            idle: Mutex::new(Vec::with_capacity(n)),
            permits: Semaphore::new(n),
        }
    }

    /// Sends `request` and reads its answer: (status or 0, body, latency, wait for a connection).
    async fn send(&self, request: &[u8]) -> (u16, Value, Duration, Duration) {
        let asked = Instant::now();
        let Ok(_permit) = self.permits.acquire().await else {
            return (0, Value::Null, Duration::ZERO, Duration::ZERO);
        };
        let queued = asked.elapsed();
        let taken = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => match connect(&self.addr).await {
                Ok(conn) => conn,
                Err(_) => return (0, Value::Null, Duration::ZERO, queued),
            },
        };
        let mut line = String::new();
        let at = Instant::now();
        match load::exchange(&mut conn, request, &mut line).await {
            Ok(answer) => {
                let latency = at.elapsed();
                self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
                let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                (answer.status, body, latency, queued)
            }
            // The connection is unusable after a failed exchange: dropped, the next opens one.
            Err(_) => (0, Value::Null, at.elapsed(), queued),
        }
    }
}

async fn connect(addr: &str) -> anyhow::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// One fan of the sale, after set-up.
struct Fan {
    access: String,
    queue: String,
    /// What the join answered: when to ask first.
    poll_after: Duration,
}

/// What became of a fan.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Outcome {
    Paid,
    SoldOut,
    /// A request failed or the flow could not go on (see the failed requests).
    Failed,
    /// Still waiting when the sale was stopped.
    Unfinished,
}

struct Sale {
    addr: String,
    schedule: Uuid,
    connections: Connections,
    opened: Instant,
    deadline: Instant,
    /// Seats not dealt yet, shuffled.
    deck: Mutex<Vec<Uuid>>,
}

impl Sale {
    fn since_opening(&self) -> f64 {
        let now = Instant::now();
        if now >= self.opened {
            now.duration_since(self.opened).as_secs_f64()
        } else {
            -self.opened.duration_since(now).as_secs_f64()
        }
    }

    async fn call(&self, records: &mut Vec<Record>, kind: Kind, request: Vec<u8>) -> (u16, Value) {
        let at = self.since_opening();
        let (status, body, latency, queued) = self.connections.send(&request).await;
        records.push(Record {
            at,
            kind,
            latency,
            queued,
            status,
        });
        (status, body)
    }

    fn deal(&self, n: usize) -> Vec<Uuid> {
        let mut deck = self.deck.lock().unwrap_or_else(PoisonError::into_inner);
        let keep = deck.len().saturating_sub(n);
        deck.split_off(keep)
    }

    async fn fan(&self, fan: Fan, wanted: usize) -> (Outcome, usize, Vec<Record>) {
        let mut records = Vec::new();
        let headers = |queue: bool| {
            let mut h = vec![("Authorization", format!("Bearer {}", fan.access))];
            if queue {
                h.push(("X-Queue-Token", fan.queue.clone()));
            }
            h
        };
        let render = |method: &str, path: &str, queue: bool, json: &str| {
            let h = headers(queue);
            let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            load::request_with_json(method, path, &self.addr, &refs, json)
        };
        let mut wait = fan.poll_after;
        // Ask for the status until active, as told.
        loop {
            let next = Instant::now() + wait;
            if next >= self.deadline {
                return (Outcome::Unfinished, 0, records);
            }
            tokio::time::sleep_until(next.into()).await;
            let request = load::request(
                "GET",
                "/api/v1/queue/status",
                &self.addr,
                &[("X-Queue-Token", &fan.queue)],
            );
            let (status, body) = self.call(&mut records, Kind::Status, request).await;
            if status != 200 {
                return (Outcome::Failed, 0, records);
            }
            match body["status"].as_str() {
                Some("active") => break,
                Some("pre_queue" | "waiting") => {
                    wait = Duration::from_secs(body["poll_after_seconds"].as_u64().unwrap_or(2).max(1));
                }
                Some("sold_out" | "expired" | "done") => return (Outcome::SoldOut, 0, records),
                _ => return (Outcome::Failed, 0, records),
            }
        }
        // Hold, another seat after a 409, up to five tries.
        let mut reservation = None;
        for _ in 0..5 {
            let seats = self.deal(wanted);
            if seats.is_empty() {
                let leave = render("DELETE", "/api/v1/queue", true, "");
                self.call(&mut records, Kind::Leave, leave).await;
                return (Outcome::SoldOut, 0, records);
            }
            let ids: Vec<String> = seats.iter().map(|s| format!("\"{s}\"")).collect();
            let json = format!(
                r#"{{"schedule_id":"{}","seat_ids":[{}]}}"#,
                self.schedule,
                ids.join(",")
            );
            let (status, body) = self
                .call(
                    &mut records,
                    Kind::Hold,
                    render("POST", "/api/v1/reservations", true, &json),
                )
                .await;
            match status {
                201 => {
                    reservation = body["id"].as_str().map(|id| (id.to_owned(), seats.len()));
                    break;
                }
                409 => continue,
                _ => return (Outcome::Failed, 0, records),
            }
        }
        let Some((id, seats)) = reservation else {
            return (Outcome::Failed, 0, records);
        };
        let (key, h) = (format!("buy-{id}"), headers(true));
        let mut refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        refs.push(("Idempotency-Key", &key));
        let request = load::request_with_json(
            "POST",
            &format!("/api/v1/reservations/{id}/payments"),
            &self.addr,
            &refs,
            "",
        );
        let (status, _) = self.call(&mut records, Kind::Pay, request).await;
        if status == 201 {
            (Outcome::Paid, seats, records)
        } else {
            (Outcome::Failed, 0, records)
        }
    }
}

pub async fn onsale(deps: &Deps, args: &Onsale) -> anyhow::Result<()> {
    let addr = args.addr.as_str();
    let n = args.fans;
    // Set-up (before the opening): fans, their points, their place in the pre-queue.
    let ids = insert_fans(deps, "onsale", n).await?;
    let access: Vec<String> = ids
        .iter()
        .map(|id| access_token(deps, *id))
        .collect::<anyhow::Result<_>>()?;
    let deadline = Duration::from_secs(300);
    let charges: Vec<Vec<u8>> = access.iter().map(|token| charge_request(addr, token)).collect();
    let report = load::run(addr, Arc::new(charges), args.connections, false, deadline).await?;
    println!("{}", report.summary("set-up: fans charge points", args.connections));
    anyhow::ensure!(report.errors == 0, "some charges failed");
    let path = format!("/api/v1/concerts/{}/queue", args.concert);
    let joins: Vec<Vec<u8>> = access
        .iter()
        .map(|token| load::request("POST", &path, addr, &[("Authorization", &format!("Bearer {token}"))]))
        .collect();
    let report = load::run(addr, Arc::new(joins), args.connections, true, deadline).await?;
    println!(
        "{}",
        report.summary("set-up: fans join the pre-queue", args.connections)
    );
    let mut fans = Vec::with_capacity(n);
    for (token, answer) in access.into_iter().zip(&report.answers) {
        let answer = answer.as_ref().context("a join got no answer")?;
        let body: Value = serde_json::from_slice(&answer.body)?;
        anyhow::ensure!(
            body["status"] == "pre_queue",
            "a joiner is not in the pre-queue: {body}"
        );
        fans.push(Fan {
            access: token,
            queue: body["queue_token"].as_str().context("no queue_token")?.to_owned(),
            poll_after: Duration::from_secs(body["poll_after_seconds"].as_u64().unwrap_or(2).max(1)),
        });
    }
    // Runtime query: bench set-up, the seats on sale.
    let mut seats: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM seats WHERE schedule_id = $1 AND status = 'available'")
            .bind(args.schedule)
            .fetch_all(deps.db.pool())
            .await
            .context("read seats")?;
    seats.shuffle(&mut rand::rng());
    let until_open = (args.opens_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    anyhow::ensure!(
        until_open > Duration::ZERO,
        "the set-up ended after the opening; give it more time"
    );
    println!(
        "{n} fans in the pre-queue, {} seats on sale; the sale opens in {:.1} s",
        seats.len(),
        until_open.as_secs_f64()
    );
    let total_seats = seats.len();
    let watch: Vec<(String, u32)> = args
        .watch
        .iter()
        .map(|w| {
            let (name, pid) = w.split_once('=').context("--watch NAME=PID")?;
            Ok((name.to_owned(), pid.parse().context("--watch NAME=PID")?))
        })
        .collect::<anyhow::Result<_>>()?;
    let opened = Instant::now() + until_open;
    let sale = Arc::new(Sale {
        addr: addr.to_owned(),
        schedule: args.schedule,
        connections: Connections::new(addr, args.connections),
        opened,
        deadline: opened + Duration::from_secs(args.max_seconds),
        deck: Mutex::new(seats),
    });
    // The fans' first poll comes when their join said, from their join on.
    let mut tasks = tokio::task::JoinSet::new();
    let joined = Instant::now();
    for (i, fan) in fans.into_iter().enumerate() {
        let sale = sale.clone();
        let wanted = 1 + i % 2;
        tasks.spawn(async move {
            let fan = Fan {
                poll_after: (joined + fan.poll_after).saturating_duration_since(Instant::now()),
                ..fan
            };
            sale.fan(fan, wanted).await
        });
    }
    tokio::time::sleep_until(opened.into()).await;
    let cpu_at_opening = cpu_now(&watch);
    let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    let (mut sold, mut records) = (0usize, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (outcome, seats, mut fan_records) = done.context("fan task")?;
        *outcomes.entry(outcome).or_default() += 1;
        sold += seats;
        records.append(&mut fan_records);
    }
    let (cpu_at_end, sale_seconds) = (cpu_now(&watch), opened.elapsed().as_secs_f64());
    records.sort_by(|a, b| a.at.total_cmp(&b.at));
    write_csv(&args.csv, &records)?;
    summarize(&records, &outcomes, sold, total_seats, args.connections);
    let names = watch.iter().map(|(name, _)| name.as_str()).chain(["loadgen"]);
    let parts: Vec<String> = names
        .zip(cpu_at_end.iter().zip(&cpu_at_opening))
        .map(|(name, (end, start))| {
            let used = end - start;
            format!("{name} {used:.1} s ({:.2} cores)", used / sale_seconds)
        })
        .collect();
    let total: f64 = cpu_at_end.iter().zip(&cpu_at_opening).map(|(e, s)| e - s).sum();
    println!(
        "cpu split, from the opening to the last fan ({sale_seconds:.1} s): {}; total {:.2} cores",
        parts.join(", "),
        total / sale_seconds
    );
    Ok(())
}

fn write_csv(path: &PathBuf, records: &[Record]) -> anyhow::Result<()> {
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?);
    writeln!(out, "seconds_since_opening,kind,latency_ms,status")?;
    for r in records {
        writeln!(
            out,
            "{:.3},{},{:.3},{}",
            r.at,
            r.kind.name(),
            r.latency.as_secs_f64() * 1e3,
            r.status
        )?;
    }
    out.flush()?;
    Ok(())
}

fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}

fn summarize(records: &[Record], outcomes: &BTreeMap<Outcome, usize>, sold: usize, seats: usize, connections: usize) {
    let failed = records.iter().filter(|r| !r.kind.expected(r.status)).count();
    let last_pay = records
        .iter()
        .filter(|r| r.kind == Kind::Pay && r.status == 201)
        .map(|r| r.at + r.latency.as_secs_f64())
        .fold(0.0f64, f64::max);
    println!(
        "on-sale: {} requests, {failed} failed; fans: {outcomes:?}; {sold} of {seats} seats sold{}; last payment answered {last_pay:.1} s after the opening",
        records.len(),
        if sold == seats { " (sold out)" } else { "" },
    );
    #[derive(Default)]
    struct PerKind {
        latencies: Vec<Duration>,
        failed: usize,
        statuses: BTreeMap<u16, usize>,
    }
    let mut kinds: BTreeMap<Kind, PerKind> = BTreeMap::new();
    let mut queued: Vec<Duration> = Vec::with_capacity(records.len());
    for r in records {
        let entry = kinds.entry(r.kind).or_default();
        entry.latencies.push(r.latency);
        if !r.kind.expected(r.status) {
            entry.failed += 1;
        }
        *entry.statuses.entry(r.status).or_default() += 1;
        queued.push(r.queued);
    }
    for (kind, mut k) in kinds {
        k.latencies.sort();
        println!(
            "{}: {} requests ({:?}), {} failed; latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            kind.name(),
            k.latencies.len(),
            k.statuses,
            k.failed,
            quantile_ms(&k.latencies, 0.5),
            quantile_ms(&k.latencies, 0.95),
            quantile_ms(&k.latencies, 0.99),
            k.latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        );
    }
    queued.sort();
    println!(
        "wait for one of the {connections} connections before sending: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        quantile_ms(&queued, 0.5),
        quantile_ms(&queued, 0.99),
        queued.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
}
