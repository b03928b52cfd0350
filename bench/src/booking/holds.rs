//! `booking-holds`: holds on distinct seats, spread over schedules, or contended, with seat-map
//! readers beside them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imticket::app::Deps;
use rand::Rng;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use uuid::Uuid;

use super::{DEADLINE, Fan, hold_request, outcomes, pg_counters_settled, read_fans, seats_interleaved, write_fans};
use crate::load;

/// Each fan of `fans` holds one seat of the schedules (repeatable `--schedule`): distinct
/// seats in turn over the schedules, or `--random` seats (contention). Holds/s, p50/p99,
/// outcomes, PostgreSQL transactions and statements; the winners (with their reservation)
/// go to `out`. `--readers N`: N more connections read the first schedule's seat map back
/// to back while the holds run (reads/s, latency, PostgreSQL queries per read).
#[derive(clap::Args)]
pub struct BookingHolds {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub fans: std::path::PathBuf,
    #[arg(long, required = true)]
    pub schedule: Vec<Uuid>,
    #[arg(long)]
    pub random: bool,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long, default_value_t = 0)]
    pub readers: usize,
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// Seat-map reads made while the holds ran.
struct Reads {
    latencies: Vec<Duration>,
    bytes: usize,
    errors: usize,
    elapsed: Duration,
}

/// `readers` connections reading `GET /schedules/{schedule}/seats` back to back until `stop`.
async fn read_seat_maps(addr: &str, schedule: Uuid, readers: usize, stop: Arc<AtomicBool>) -> anyhow::Result<Reads> {
    let request = Arc::new(load::request(
        "GET",
        &format!("/api/v1/schedules/{schedule}/seats"),
        addr,
        &[],
    ));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..readers {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (request, stop) = (request.clone(), stop.clone());
        tasks.spawn(async move {
            let mut conn = BufReader::new(stream);
            let mut line = String::new();
            let (mut latencies, mut bytes, mut errors) = (Vec::new(), 0, 0);
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                match load::exchange(&mut conn, &request, &mut line).await {
                    Ok(answer) if answer.status == 200 => {
                        latencies.push(at.elapsed());
                        bytes = answer.body.len();
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, bytes, errors)
        });
    }
    let mut reads = Reads {
        latencies: Vec::new(),
        bytes: 0,
        errors: 0,
        elapsed: Duration::ZERO,
    };
    while let Some(done) = tasks.join_next().await {
        let (latencies, bytes, errors) = done?;
        reads.latencies.extend(latencies);
        reads.bytes = reads.bytes.max(bytes);
        reads.errors += errors;
    }
    reads.elapsed = started.elapsed();
    reads.latencies.sort();
    Ok(reads)
}

/// `booking-holds`: each fan of `fans_file` holds one seat of `schedules` over HTTP: a distinct
/// seat each (in turn over the schedules), or with `random` a seat drawn at random (contention).
/// Prints holds/s, latencies, outcomes and PostgreSQL's work; writes the winners with their
/// reservation to `out`.
pub async fn holds(deps: &Deps, args: &BookingHolds) -> anyhow::Result<()> {
    let BookingHolds {
        addr,
        fans: fans_file,
        schedule: schedules,
        random,
        connections,
        readers,
        out,
    } = args;
    let (addr, fans_file, random, connections, readers): (&str, &Path, bool, usize, usize) =
        (addr, fans_file, *random, *connections, *readers);
    let mut fans = read_fans(fans_file)?;
    let seats = seats_interleaved(deps, schedules).await?;
    anyhow::ensure!(!seats.is_empty(), "no seats in the schedules");
    anyhow::ensure!(
        random || seats.len() >= fans.len(),
        "{} fans but only {} seats",
        fans.len(),
        seats.len()
    );
    let mut rng = rand::rng();
    let requests: Vec<Vec<u8>> = fans
        .iter()
        .enumerate()
        .map(|(i, fan)| {
            let (schedule, seat) = if random {
                seats[rng.random_range(0..seats.len())]
            } else {
                seats[i]
            };
            hold_request(addr, fan, schedule, seat)
        })
        .collect();
    let before = pg_counters_settled(deps).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let reading = (readers > 0).then(|| {
        let (addr, stop, schedule) = (addr.to_owned(), stop.clone(), schedules[0]);
        tokio::spawn(async move { read_seat_maps(&addr, schedule, readers, stop).await })
    });
    let report = load::run(addr, Arc::new(requests), connections, true, DEADLINE).await;
    stop.store(true, Ordering::Relaxed);
    let reads = match reading {
        Some(task) => Some(task.await??),
        None => None,
    };
    let report = report?;
    let after = pg_counters_settled(deps).await?;
    let what = format!(
        "POST /reservations, {} fans, {} seats over {} schedule(s){}",
        fans.len(),
        seats.len(),
        schedules.len(),
        if random {
            ", a random seat each"
        } else {
            ", a distinct seat each"
        }
    );
    println!("{}", report.summary(&what, connections));
    let counts = outcomes(&report.answers);
    println!("outcomes: {counts:?}");
    let won = counts.get("201").copied().unwrap_or(0);
    let lost = report.requests - won;
    let won_rate = won as f64 / report.elapsed.as_secs_f64();
    println!("holds made: {won} ({won_rate:.0} holds/s), refused or failed: {lost}");
    let xacts = after.xacts - before.xacts;
    println!(
        "postgres: {xacts} transactions ({:.2} per request, {:.2} per hold made; the counter includes ~2 s of background work and these reads)",
        xacts as f64 / report.requests.max(1) as f64,
        xacts as f64 / won.max(1) as f64
    );
    if let (Some(b), Some(a), Some(tb), Some(ta)) =
        (before.statements, after.statements, before.seat_takes, after.seat_takes)
    {
        println!(
            "postgres (pg_stat_statements): {} statements ({:.2} per request, {:.2} per hold made), seat-taking statements (hold_seats_told, hold_seats or the general path's UPDATE) run {} times",
            a - b,
            (a - b) as f64 / report.requests.max(1) as f64,
            (a - b) as f64 / won.max(1) as f64,
            ta - tb
        );
    }
    if let Some(reads) = reads {
        let n = reads.latencies.len();
        let q = |q: f64| {
            reads
                .latencies
                .get(((n as f64 * q) as usize).min(n.saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        println!(
            "seat map of the schedule read meanwhile over {readers} connections: {n} reads in {:.2}s ({:.0} reads/s), p50 {:.1} ms, p99 {:.1} ms, {} bytes a map, errors {}",
            reads.elapsed.as_secs_f64(),
            n as f64 / reads.elapsed.as_secs_f64(),
            q(0.5),
            q(0.99),
            reads.bytes,
            reads.errors
        );
        if let (Some((lb, sb)), Some((la, sa))) = (before.seat_map_loads, after.seat_map_loads) {
            println!(
                "postgres (pg_stat_statements): seat-map queries meanwhile: {} layout+states, {} states alone = {:.4} per read",
                la - lb,
                sa - sb,
                ((la - lb) + (sa - sb)) as f64 / n.max(1) as f64
            );
        }
    }
    if let Some(out) = out {
        let mut winners = Vec::with_capacity(won);
        for (fan, answer) in fans.drain(..).zip(&report.answers) {
            if let Some(answer) = answer
                && answer.status == 201
            {
                let body: Value = serde_json::from_slice(&answer.body)?;
                let id = body["id"].as_str().context("no reservation id")?.parse()?;
                winners.push(Fan {
                    reservation: Some(id),
                    ..fan
                });
            }
        }
        write_fans(out, &winners)?;
    }
    Ok(())
}
