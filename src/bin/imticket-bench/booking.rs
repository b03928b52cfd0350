//! Booking benchmarks over HTTP (scripts/bench-booking.sh): holds on distinct seats, the same
//! spread over many schedules, contention for a few seats, payments, and the whole flow from
//! joining the line to a confirmed ticket.
//!
//! Fans are files of lines `user_id access_token queue_token [reservation_id]`, so one run's
//! output feeds the next.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imticket::app::Deps;
use imticket::domain::user::Role;
use rand::Rng;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use uuid::Uuid;

use super::load::{self, Answer, Report};

/// Every run stops here at the latest, finished or not (what it did is reported).
const DEADLINE: Duration = Duration::from_secs(300);

pub struct Fan {
    pub user_id: Uuid,
    pub access: String,
    pub queue: String,
    pub reservation: Option<Uuid>,
}

fn write_fans(file: &Path, fans: &[Fan]) -> anyhow::Result<()> {
    let text: Vec<String> = fans
        .iter()
        .map(|f| match f.reservation {
            Some(r) => format!("{} {} {} {r}", f.user_id, f.access, f.queue),
            None => format!("{} {} {}", f.user_id, f.access, f.queue),
        })
        .collect();
    std::fs::write(file, text.join("\n")).with_context(|| format!("write {}", file.display()))
}

fn read_fans(file: &Path) -> anyhow::Result<Vec<Fan>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split(' ');
            let mut next = || parts.next().context("short fan line");
            Ok(Fan {
                user_id: next()?.parse()?,
                access: next()?.to_owned(),
                queue: next()?.to_owned(),
                reservation: parts.next().map(str::parse).transpose()?,
            })
        })
        .collect()
}

/// Answers by HTTP status and problem `code` (or body `status`), e.g. `201` or `409 seat_unavailable`.
fn outcomes(answers: &[Option<Answer>]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for answer in answers.iter().flatten() {
        let label = if (200..300).contains(&answer.status) {
            answer.status.to_string()
        } else {
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            format!("{} {}", answer.status, body["code"].as_str().unwrap_or("?"))
        };
        *counts.entry(label).or_insert(0) += 1;
    }
    counts
}

/// PostgreSQL's counters for the bench database: transactions (commits + rollbacks) and, when
/// pg_stat_statements is loaded, statements run and calls of the statement that takes seats.
/// Runtime queries: statistics views, not part of the schema sqlx checks.
struct PgCounters {
    xacts: i64,
    statements: Option<i64>,
    seat_takes: Option<i64>,
    /// Seat-map queries: (layout with states, states alone).
    seat_map_loads: Option<(i64, i64)>,
}

async fn pg_counters(deps: &Deps) -> anyhow::Result<PgCounters> {
    // The statistics collector publishes at most every 500 ms (PGSTAT_MIN_INTERVAL in 15):
    // clear this backend's snapshot so each read sees the latest flush.
    let mut conn = deps.db.acquire().await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    let xacts: i64 = sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await
    .context("pg_stat_database")?;
    let statements: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT COALESCE(sum(calls), 0)::bigint,
                COALESCE(sum(calls) FILTER (WHERE query LIKE 'UPDATE seats s SET status = %RETURNING s.id, s.price'
                                               OR query LIKE 'SELECT outcome %FROM hold_seats(%'), 0)::bigint,
                COALESCE(sum(calls) FILTER (WHERE query LIKE 'SELECT id, section, row_number, seat_number, price, status FROM seats%'), 0)::bigint,
                COALESCE(sum(calls) FILTER (WHERE query LIKE 'SELECT coalesce(string_agg(left(status%'), 0)::bigint
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&mut *conn)
    .await
    .ok();
    Ok(PgCounters {
        xacts,
        statements: statements.map(|s| s.0),
        seat_takes: statements.map(|s| s.1),
        seat_map_loads: statements.map(|s| (s.2, s.3)),
    })
}

/// Waits past the statistics flush interval, then reads the counters.
async fn pg_counters_settled(deps: &Deps) -> anyhow::Result<PgCounters> {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    pg_counters(deps).await
}

/// `n` users inserted with SQL (`<label>-<id>@bench.test`, no password hashing); their ids.
async fn insert_fans(deps: &Deps, label: &str, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    for chunk in ids.chunks(10_000) {
        // Runtime query: bench set-up, not application code.
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, name)
             SELECT id, $2::text || '-' || id || '@bench.test', 'not-a-hash', 'Fan' FROM UNNEST($1::uuid[]) AS t(id)",
        )
        .bind(chunk)
        .bind(label)
        .execute(&deps.db)
        .await
        .context("insert users")?;
    }
    Ok(ids)
}

/// `booking-fans`: `users` rows inserted with SQL (no password hashing), access tokens minted
/// with JWT_SECRET, each joining `concert`'s line over HTTP; all must be `active` at once.
pub async fn fans(
    deps: &Deps,
    addr: &str,
    concert: Uuid,
    users: usize,
    connections: usize,
    out: &Path,
) -> anyhow::Result<()> {
    let ids = insert_fans(deps, "fan", users).await?;
    let path = format!("/api/v1/concerts/{concert}/queue");
    let mut access = Vec::with_capacity(users);
    let mut requests = Vec::with_capacity(users);
    for id in &ids {
        let token = deps
            .tokens
            .issue(*id, Role::User)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .access_token;
        requests.push(load::request(
            "POST",
            &path,
            addr,
            &[("Authorization", &format!("Bearer {token}"))],
        ));
        access.push(token);
    }
    let report = load::run(addr, Arc::new(requests), connections, true, DEADLINE).await?;
    println!("{}", report.summary("set-up: fans join the line", connections));
    let mut fans = Vec::with_capacity(users);
    for ((user_id, access), answer) in ids.into_iter().zip(access).zip(&report.answers) {
        let answer = answer.as_ref().context("a join got no answer")?;
        let body: Value = serde_json::from_slice(&answer.body)?;
        anyhow::ensure!(body["status"] == "active", "a joiner is not active: {body}");
        fans.push(Fan {
            user_id,
            access,
            queue: body["queue_token"].as_str().context("no queue_token")?.to_owned(),
            reservation: None,
        });
    }
    write_fans(out, &fans)?;
    println!("{users} fans, all active, written to {}", out.display());
    Ok(())
}

/// Seats of `schedules`, interleaved: the k-th seat of every schedule before the (k+1)-th of
/// any, so consecutive requests go to different schedules.
async fn seats_interleaved(deps: &Deps, schedules: &[Uuid]) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let mut per: Vec<Vec<Uuid>> = Vec::with_capacity(schedules.len());
    for schedule in schedules {
        // Runtime query: bench set-up.
        let seats: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM seats WHERE schedule_id = $1 ORDER BY section, row_number, seat_number")
                .bind(schedule)
                .fetch_all(&deps.db)
                .await
                .context("read seats")?;
        per.push(seats);
    }
    let longest = per.iter().map(Vec::len).max().unwrap_or(0);
    let mut all = Vec::new();
    for k in 0..longest {
        for (schedule, seats) in schedules.iter().zip(&per) {
            if let Some(seat) = seats.get(k) {
                all.push((*schedule, *seat));
            }
        }
    }
    Ok(all)
}

fn hold_request(addr: &str, fan: &Fan, schedule: Uuid, seat: Uuid) -> Vec<u8> {
    load::request_with_json(
        "POST",
        "/api/v1/reservations",
        addr,
        &[
            ("Authorization", &format!("Bearer {}", fan.access)),
            ("X-Queue-Token", &fan.queue),
        ],
        &format!(r#"{{"schedule_id":"{schedule}","seat_ids":["{seat}"]}}"#),
    )
}

/// How `booking-holds` runs: `random` seats (contention) or a distinct one per fan, over
/// `connections`; `readers` more connections read the first schedule's seat map meanwhile; the
/// winners go to `out`.
pub struct HoldsRun {
    pub random: bool,
    pub connections: usize,
    pub readers: usize,
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
pub async fn holds(
    deps: &Deps,
    addr: &str,
    fans_file: &Path,
    schedules: &[Uuid],
    run: &HoldsRun,
) -> anyhow::Result<()> {
    let HoldsRun {
        random,
        connections,
        readers,
        ref out,
    } = *run;
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
            "postgres (pg_stat_statements): {} statements ({:.2} per request, {:.2} per hold made), seat-taking statements (hold_seats or the general path's UPDATE) run {} times",
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

/// `booking-charge`: each fan charges `amount` points once (its own Idempotency-Key).
pub async fn charge(addr: &str, fans_file: &Path, amount: i64, connections: usize) -> anyhow::Result<()> {
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
pub async fn pay(deps: &Deps, addr: &str, holds_file: &Path, connections: usize) -> anyhow::Result<()> {
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

/// One request on a connection of the flow: the answer's JSON body, or why it failed.
async fn call(conn: &mut BufReader<TcpStream>, request: &[u8], line: &mut String) -> anyhow::Result<(u16, Value)> {
    let answer = load::exchange(conn, request, line).await?;
    Ok((
        answer.status,
        serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
    ))
}

/// `booking-flow`: `users` fresh fans (inserted and charged with SQL beforehand, not timed),
/// each going join → hold one distinct seat of `schedule` → pay over `connections` connections;
/// then waits until every paid reservation is `confirmed` by the payment worker. Tickets/s is
/// the confirmed tickets over the time from the first join to the last confirmation.
pub async fn flow(
    deps: &Deps,
    addr: &str,
    concert: Uuid,
    schedule: Uuid,
    users: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let seats = seats_interleaved(deps, &[schedule]).await?;
    anyhow::ensure!(seats.len() >= users, "{users} fans but {} seats", seats.len());
    let ids = insert_fans(deps, "flow", users).await?;
    let fans: Vec<(Uuid, String, Uuid)> = ids
        .iter()
        .zip(&seats)
        .map(|(id, (_, seat))| {
            let token = deps.tokens.issue(*id, Role::User).map(|t| t.access_token);
            token.map(|t| (*id, t, *seat)).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    // Points through the API, not timed: the flow starts at the join.
    let charges: Vec<Vec<u8>> = fans
        .iter()
        .map(|(_, access, _)| {
            load::request_with_json(
                "POST",
                "/api/v1/users/me/points/charge",
                addr,
                &[
                    ("Authorization", &format!("Bearer {access}")),
                    ("Idempotency-Key", &Uuid::new_v4().to_string()),
                ],
                r#"{"amount":100000}"#,
            )
        })
        .collect();
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
                .fetch_one(&deps.db)
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
