//! `booking-charge`, `booking-pay` and `booking-flow`: wallets charged, holds paid, and the
//! whole flow from joining the line to a confirmed ticket.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imticket::app::Deps;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use uuid::Uuid;

use super::{
    DEADLINE, Fan, access_token, call, charge_request, hold_request, insert_fans, outcomes, pg_counters_settled,
    read_fans, seats_interleaved,
};
use crate::load::{self, Report};

/// Each fan of `fans` charges `amount` points (its own Idempotency-Key).
#[derive(clap::Args)]
pub struct BookingCharge {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub fans: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    pub amount: i64,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// Each fan of `holds` (written by booking-holds) pays its reservation: payments/s.
#[derive(clap::Args)]
pub struct BookingPay {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub holds: PathBuf,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// `users` fresh fans each join → hold a distinct seat of `schedule` → pay, then the wait
/// until the payment worker has confirmed every ticket: tickets/s end to end.
#[derive(clap::Args)]
pub struct BookingFlow {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub concert: Uuid,
    #[arg(long)]
    pub schedule: Uuid,
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// `booking-charge`: each fan charges `amount` points once (its own Idempotency-Key).
pub async fn charge(args: &BookingCharge) -> anyhow::Result<()> {
    let (addr, fans_file, amount, connections) = (args.addr.as_str(), &args.fans, args.amount, args.connections);
    let fans = read_fans(fans_file)?;
    let requests: Vec<Vec<u8>> = fans
        .iter()
        .map(|fan| {
            load::request_with_json(
                "POST",
                "/api/v1/users/me/points/charge",
                addr,
                &[
                    ("Authorization", &format!("Bearer {}", fan.access)),
                    ("Idempotency-Key", &Uuid::new_v4().to_string()),
                ],
                &format!(r#"{{"amount":{amount}}}"#),
            )
        })
        .collect();
    let report = load::run(addr, Arc::new(requests), connections, true, DEADLINE).await?;
    println!("{}", report.summary("POST /users/me/points/charge", connections));
    println!("outcomes: {:?}", outcomes(&report.answers));
    Ok(())
}

/// `booking-pay`: each fan of `holds_file` pays its held reservation once.
pub async fn pay(deps: &Deps, args: &BookingPay) -> anyhow::Result<()> {
    let (addr, holds_file, connections) = (args.addr.as_str(), &args.holds, args.connections);
    let fans = read_fans(holds_file)?;
    let mut requests = Vec::with_capacity(fans.len());
    for fan in &fans {
        let reservation = fan.reservation.context("a fan without a reservation")?;
        requests.push(load::request(
            "POST",
            &format!("/api/v1/reservations/{reservation}/payments"),
            addr,
            &[
                ("Authorization", &format!("Bearer {}", fan.access)),
                ("X-Queue-Token", &fan.queue),
                ("Idempotency-Key", &Uuid::new_v4().to_string()),
            ],
        ));
    }
    let before = pg_counters_settled(deps).await?;
    let report = load::run(addr, Arc::new(requests), connections, true, DEADLINE).await?;
    let after = pg_counters_settled(deps).await?;
    println!("{}", report.summary("POST /reservations/{id}/payments", connections));
    println!("outcomes: {:?}", outcomes(&report.answers));
    if let (Some(b), Some(a)) = (before.statements, after.statements) {
        println!(
            "postgres: {} transactions, {} statements ({:.2} per payment)",
            after.xacts - before.xacts,
            a - b,
            (a - b) as f64 / report.requests.max(1) as f64
        );
    }
    Ok(())
}

/// `booking-flow`: `users` fresh fans (inserted and charged with SQL beforehand, not timed),
/// each going join → hold one distinct seat of `schedule` → pay over `connections` connections;
/// then waits until every paid reservation is `confirmed` by the payment worker. Tickets/s is
/// the confirmed tickets over the time from the first join to the last confirmation.
pub async fn flow(deps: &Deps, args: &BookingFlow) -> anyhow::Result<()> {
    let BookingFlow {
        addr,
        concert,
        schedule,
        users,
        connections,
    } = args;
    let (addr, concert, schedule, users, connections) = (addr.as_str(), *concert, *schedule, *users, *connections);
    let seats = seats_interleaved(deps, &[schedule]).await?;
    anyhow::ensure!(seats.len() >= users, "{users} fans but {} seats", seats.len());
    let ids = insert_fans(deps, "flow", users).await?;
    let fans: Vec<(Uuid, String, Uuid)> = ids
        .iter()
        .zip(&seats)
        .map(|(id, (_, seat))| access_token(deps, *id).map(|t| (*id, t, *seat)))
        .collect::<anyhow::Result<_>>()?;
    // Points through the API, not timed: the flow starts at the join.
    let charges: Vec<Vec<u8>> = fans.iter().map(|(_, access, _)| charge_request(addr, access)).collect();
    let charged = load::run(addr, Arc::new(charges), connections, false, DEADLINE).await?;
    anyhow::ensure!(charged.errors == 0, "{} charges failed", charged.errors);

    let fans = Arc::new(fans);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (fans, next, addr) = (fans.clone(), next.clone(), addr.to_owned());
        tasks.spawn(async move {
            let mut conn = BufReader::new(stream);
            let mut line = String::new();
            let (mut paid, mut failed, mut latencies) = (0usize, Vec::<String>::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= fans.len() || started.elapsed() > DEADLINE {
                    break;
                }
                let (_, access, seat) = &fans[i];
                let bearer = format!("Bearer {access}");
                let at = Instant::now();
                let step = async {
                    let join = load::request(
                        "POST",
                        &format!("/api/v1/concerts/{concert}/queue"),
                        &addr,
                        &[("Authorization", &bearer)],
                    );
                    let (status, body) = call(&mut conn, &join, &mut line).await?;
                    anyhow::ensure!(status == 200 && body["status"] == "active", "join: {status} {body}");
                    let queue = body["queue_token"].as_str().context("no queue token")?.to_owned();
                    let fan = Fan {
                        user_id: Uuid::nil(),
                        access: access.clone(),
                        queue: queue.clone(),
                        reservation: None,
                    };
                    let (status, body) =
                        call(&mut conn, &hold_request(&addr, &fan, schedule, *seat), &mut line).await?;
                    anyhow::ensure!(status == 201, "hold: {status} {body}");
                    let reservation = body["id"].as_str().context("no reservation id")?.to_owned();
                    let pay = load::request(
                        "POST",
                        &format!("/api/v1/reservations/{reservation}/payments"),
                        &addr,
                        &[
                            ("Authorization", &bearer),
                            ("X-Queue-Token", &queue),
                            ("Idempotency-Key", &Uuid::new_v4().to_string()),
                        ],
                    );
                    let (status, body) = call(&mut conn, &pay, &mut line).await?;
                    anyhow::ensure!(status == 201, "pay: {status} {body}");
                    Ok(())
                };
                match step.await {
                    Ok(()) => {
                        paid += 1;
                        latencies.push(at.elapsed());
                    }
                    Err(e) => {
                        failed.push(format!("{e:#}"));
                        if failed.len() > 10 {
                            break;
                        }
                    }
                }
            }
            (paid, failed, latencies)
        });
    }
    let (mut paid, mut failed, mut latencies) = (0, Vec::new(), Vec::new());
    while let Some(result) = tasks.join_next().await {
        let (p, f, l) = result.context("flow task")?;
        paid += p;
        failed.extend(f);
        latencies.extend(l);
    }
    let paid_after = started.elapsed();
    latencies.sort();
    let report = Report {
        requests: paid,
        elapsed: paid_after,
        served: latencies.clone(),
        latencies,
        errors: failed.len(),
        answers: Vec::new(),
    };
    println!(
        "{}",
        report.summary(
            "flow join → hold → pay (3 requests per fan; latency of the three)",
            connections
        )
    );
    if let Some(first) = failed.first() {
        println!("first failure: {first}");
    }
    // Runtime query: the bench watches the worker's effect.
    let confirmed = loop {
        let confirmed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reservations WHERE schedule_id = $1 AND status = 'confirmed'")
                .bind(schedule)
                .fetch_one(deps.db.pool())
                .await?;
        if confirmed as usize >= paid || started.elapsed() > DEADLINE {
            break confirmed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let all = started.elapsed();
    println!(
        "{confirmed} of {paid} paid reservations confirmed {:.2}s after the first join ({:.2}s after the last payment): {:.0} tickets/s end to end",
        all.as_secs_f64(),
        (all - paid_after).as_secs_f64(),
        confirmed as f64 / all.as_secs_f64()
    );
    Ok(())
}
