//! `chaos-load` and `chaos-check` (scripts/chaos.sh): the whole flow under load while a fault is
//! injected, and the checks afterwards.
//!
//! `chaos-load`: `connections` clients, each taking fresh fans through join → (status polls) →
//! charge → hold → pay, some abandoning their hold (it must expire) and some paying twice with one key (the
//! second must answer like the first). A client behaves as a real one: a 503 or 429 is sent
//! again after a pause, a broken connection is opened again and the request sent again with
//! the same `Idempotency-Key`. Every answer is recorded with its time, so the report says what
//! clients saw and when.
//!
//! `chaos-check`: waits (up to a deadline) until the system has settled, then checks it: every
//! paid reservation confirmed exactly once, every abandoned hold expired with its seats
//! available, no pending entry, no dead letter, the outbox published.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use imticket::app::Deps;
use imticket::domain::user::Role;
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::load;

#[derive(clap::Args)]
pub struct ChaosLoad {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub concert: Uuid,
    #[arg(long)]
    pub schedule: Uuid,
    /// How long new flows are started.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// The share of fans who hold and never pay.
    #[arg(long, default_value_t = 0.15)]
    pub abandon: f64,
    /// The share of payments sent a second time with the same key.
    #[arg(long, default_value_t = 0.2)]
    pub duplicate: f64,
    /// Queue status polls each fan sends after joining (`GET /queue/status`, as a fan's page
    /// does; at most 3, the per-user burst of `queue_status`).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub status_polls: u8,
    /// Where the report (JSON) goes.
    #[arg(long)]
    pub report: PathBuf,
}

#[derive(clap::Args)]
pub struct ChaosCheck {
    /// The report `chaos-load` wrote.
    #[arg(long)]
    pub report: PathBuf,
    #[arg(long)]
    pub schedule: Uuid,
    /// How long the system may take to settle.
    #[arg(long, default_value_t = 120)]
    pub deadline_seconds: u64,
    /// Unix seconds when the cell began (for the events processed during it).
    #[arg(long)]
    pub since: f64,
}

/// Every answer, with when it came (seconds since the start).
#[derive(Default)]
struct Recorder {
    answers: Mutex<Vec<(f64, String)>>,
}

impl Recorder {
    fn record(&self, started: Instant, label: String) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.push((started.elapsed().as_secs_f64(), label));
        }
    }
}

fn label(status: u16, body: &Value) -> String {
    match body["code"].as_str() {
        Some(code) if status >= 400 => format!("{status} {code}"),
        _ => status.to_string(),
    }
}

/// One client's connection: opened again whenever it breaks.
struct Client {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
    line: String,
    started: Instant,
    give_up: Instant,
    recorder: Arc<Recorder>,
    /// Whether the last `send` lost a connection before it got its answer.
    broke: bool,
}

impl Client {
    fn broke_since_last_answer(&self) -> bool {
        self.broke
    }

    /// Sends `request` until it gets an answer that is not "try again" (503, 429, 408, a broken
    /// connection), as a client would. Every answer is recorded.
    async fn send(&mut self, request: &[u8]) -> anyhow::Result<(u16, Value)> {
        self.broke = false;
        loop {
            anyhow::ensure!(Instant::now() < self.give_up, "gave up: no answer before the deadline");
            let conn = match self.conn.as_mut() {
                Some(conn) => conn,
                None => match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&self.addr)).await {
                    Ok(Ok(stream)) => {
                        stream.set_nodelay(true)?;
                        self.conn.insert(BufReader::new(stream))
                    }
                    _ => {
                        self.recorder.record(self.started, "connect_error".into());
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                },
            };
            match tokio::time::timeout(Duration::from_secs(15), load::exchange(conn, request, &mut self.line)).await {
                Ok(Ok(answer)) => {
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                    self.recorder.record(self.started, label(answer.status, &body));
                    let pause = match answer.status {
                        503 => Duration::from_millis(500),
                        429 => Duration::from_secs(1),
                        408 => {
                            self.conn = None;
                            Duration::from_millis(100)
                        }
                        _ => return Ok((answer.status, body)),
                    };
                    tokio::time::sleep(pause).await;
                }
                _ => {
                    self.recorder.record(self.started, "connection_error".into());
                    self.broke = true;
                    self.conn = None;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

#[derive(Default)]
struct Flows {
    paid: Vec<Uuid>,
    abandoned: Vec<Uuid>,
    duplicates_sent: usize,
    duplicates_answered_alike: usize,
    failed: Vec<String>,
}

/// `chaos-load`.
pub async fn load(deps: &Deps, args: &ChaosLoad) -> anyhow::Result<()> {
    // Runtime query: the bench reads the seats it will hold.
    let seats: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM seats WHERE schedule_id = $1 ORDER BY random()")
        .bind(args.schedule)
        .fetch_all(deps.db.pool())
        .await
        .context("read seats")?;
    // One fan per seat, inserted up front (the bench's own writes must not fail in a cell that
    // stops PostgreSQL: only what clients send is under test).
    let fans = crate::booking::insert_fans(deps, "chaos", seats.len()).await?;
    let seats: Vec<(Uuid, Uuid)> = seats.into_iter().zip(fans).collect();
    let seats = Arc::new(Mutex::new(seats));
    let recorder = Arc::new(Recorder::default());
    let flows = Arc::new(Mutex::new(Flows::default()));
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(args.seconds);
    let give_up = stop_at + Duration::from_secs(120);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (deps, seats, recorder, flows) = (deps.clone(), seats.clone(), recorder.clone(), flows.clone());
        let (addr, concert, schedule) = (args.addr.clone(), args.concert, args.schedule);
        let shares = Shares {
            abandon: args.abandon,
            duplicate: args.duplicate,
            status_polls: args.status_polls,
        };
        tasks.spawn(async move {
            let mut client = Client {
                addr: addr.clone(),
                conn: None,
                line: String::new(),
                started,
                give_up,
                recorder,
                broke: false,
            };
            while Instant::now() < stop_at {
                let Some((seat, fan)) = seats.lock().ok().and_then(|mut s| s.pop()) else {
                    break;
                };
                let outcome = flow(
                    &deps,
                    &mut client,
                    &addr,
                    (concert, schedule),
                    (seat, fan),
                    shares,
                    &seats,
                )
                .await;
                let Ok(mut flows) = flows.lock() else { break };
                match outcome {
                    Ok(Flow::Paid(id, dup)) => {
                        flows.paid.push(id);
                        if let Some(alike) = dup {
                            flows.duplicates_sent += 1;
                            flows.duplicates_answered_alike += usize::from(alike);
                        }
                    }
                    Ok(Flow::Abandoned(id)) => flows.abandoned.push(id),
                    Err(err) => flows.failed.push(format!("{err:#}")),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();

    let answers = recorder.answers.lock().map(|a| a.clone()).unwrap_or_default();
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors: Vec<f64> = Vec::new();
    for (at, label) in &answers {
        *by_label.entry(label.clone()).or_default() += 1;
        if label.starts_with('5') || label.ends_with("_error") {
            errors.push(*at);
        }
    }
    let flows = flows.lock().map_err(|_| anyhow::anyhow!("flows poisoned"))?;
    let report = json!({
        "seconds": elapsed,
        "requests": answers.len(),
        "by_status": by_label,
        "errors_seen_by_clients": errors.len(),
        "errors_first_s": errors.first(),
        "errors_last_s": errors.last(),
        "errors_window_s": errors.last().zip(errors.first()).map(|(l, f)| l - f),
        "paid": flows.paid,
        "abandoned": flows.abandoned,
        "duplicates_sent": flows.duplicates_sent,
        "duplicates_answered_alike": flows.duplicates_answered_alike,
        "flows_failed": flows.failed.len(),
        "first_failure": flows.failed.first(),
    });
    std::fs::write(&args.report, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("write {}", args.report.display()))?;
    println!(
        "{} requests in {elapsed:.1}s: {by_label:?}; {} paid, {} abandoned, {} duplicate payments ({} answered alike), {} flows failed; client errors {}",
        answers.len(),
        flows.paid.len(),
        flows.abandoned.len(),
        flows.duplicates_sent,
        flows.duplicates_answered_alike,
        flows.failed.len(),
        errors.len()
    );
    Ok(())
}

enum Flow {
    /// Paid; with a duplicate payment sent, whether it answered like the first.
    Paid(Uuid, Option<bool>),
    Abandoned(Uuid),
}

/// What fans do besides the plain flow.
#[derive(Clone, Copy)]
struct Shares {
    abandon: f64,
    duplicate: f64,
    status_polls: u8,
}

async fn flow(
    deps: &Deps,
    client: &mut Client,
    addr: &str,
    (concert, schedule): (Uuid, Uuid),
    (seat, user): (Uuid, Uuid),
    Shares {
        abandon,
        duplicate,
        status_polls,
    }: Shares,
    spare_seats: &Mutex<Vec<(Uuid, Uuid)>>,
) -> anyhow::Result<Flow> {
    let access = deps.tokens.issue(user, Role::User)?.access_token;
    let bearer = format!("Bearer {access}");
    let join = load::request(
        "POST",
        &format!("/api/v1/concerts/{concert}/queue"),
        addr,
        &[("Authorization", &bearer)],
    );
    let (status, body) = client.send(&join).await?;
    anyhow::ensure!(status == 200 && body["status"] == "active", "join: {status} {body}");
    let queue = body["queue_token"].as_str().context("no queue token")?.to_owned();
    for _ in 0..status_polls {
        let poll = load::request("GET", "/api/v1/queue/status", addr, &[("X-Queue-Token", &queue)]);
        let (status, body) = client.send(&poll).await?;
        anyhow::ensure!(status == 200 && body["status"] == "active", "status: {status} {body}");
    }
    let charge = load::request_with_json(
        "POST",
        "/api/v1/users/me/points/charge",
        addr,
        &[
            ("Authorization", &bearer),
            ("Idempotency-Key", &Uuid::new_v4().to_string()),
        ],
        r#"{"amount":100000}"#,
    );
    let (status, body) = client.send(&charge).await?;
    anyhow::ensure!(status == 200, "charge: {status} {body}");
    // Each seat is given to one flow only, and a hold sent again carries its key. One answer
    // other than 201 is expected: a hold sent again after its API process died between taking
    // the seat's Redis gate and committing finds the gate taken (for up to 30 s) — that hold
    // never happened; the fan takes another seat, as a real one would.
    let mut seat = seat;
    let (status, body) = loop {
        let hold = load::request_with_json(
            "POST",
            "/api/v1/reservations",
            addr,
            &[
                ("Authorization", &bearer),
                ("X-Queue-Token", &queue),
                ("Idempotency-Key", &Uuid::new_v4().to_string()),
            ],
            &json!({"schedule_id": schedule, "seat_ids": [seat]}).to_string(),
        );
        let (status, body) = client.send(&hold).await?;
        if status == 409 && body["code"] == "seat_unavailable" && client.broke_since_last_answer() {
            seat = spare_seats
                .lock()
                .ok()
                .and_then(|mut s| s.pop())
                .context("no seat left")?
                .0;
            continue;
        }
        break (status, body);
    };
    anyhow::ensure!(status == 201, "hold: {status} {body}");
    let reservation: Uuid = body["id"].as_str().context("no reservation id")?.parse()?;
    if rand::random::<f64>() < abandon {
        return Ok(Flow::Abandoned(reservation));
    }
    let pay = load::request(
        "POST",
        &format!("/api/v1/reservations/{reservation}/payments"),
        addr,
        &[
            ("Authorization", &bearer),
            ("X-Queue-Token", &queue),
            ("Idempotency-Key", &Uuid::new_v4().to_string()),
        ],
    );
    let (status, first) = client.send(&pay).await?;
    anyhow::ensure!(status == 201, "pay: {status} {first}");
    let dup = if rand::random::<f64>() < duplicate {
        let (again_status, again) = client.send(&pay).await?;
        Some(again_status == status && again == first)
    } else {
        None
    };
    Ok(Flow::Paid(reservation, dup))
}

/// `chaos-check`: prints one JSON object; exits 1 if a check failed.
pub async fn check(deps: &Deps, args: &ChaosCheck) -> anyhow::Result<()> {
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&args.report)?)?;
    let ids = |name: &str| -> Vec<Uuid> {
        report[name]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    };
    let (paid, abandoned) = (ids("paid"), ids("abandoned"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.deadline_seconds);
    // Settled: every paid reservation confirmed, every abandoned hold expired, the outbox
    // published, no entry pending in any group.
    let settled = loop {
        let state = state(deps, &paid, &abandoned).await;
        match state {
            Ok(s)
                if s.confirmed == paid.len() as i64
                    && s.expired == abandoned.len() as i64
                    && s.unpublished == 0
                    && s.pending == 0 =>
            {
                break Some(s);
            }
            _ if Instant::now() > deadline => break state.ok(),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let settled_after = started.elapsed().as_secs_f64();
    let s = settled.context("could not read the system's state")?;
    // Runtime queries: the checks read the product's tables as an auditor would.
    let charged_twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT reservation_id FROM point_transactions WHERE kind = 'payment'
           AND reservation_id = ANY($1) GROUP BY reservation_id HAVING count(*) > 1) d",
    )
    .bind(&paid)
    .fetch_one(deps.db.pool())
    .await?;
    let seats_not_back: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
          WHERE rs.reservation_id = ANY($1) AND s.status <> 'available'
            AND NOT EXISTS (SELECT 1 FROM reservation_seats o WHERE o.seat_id = rs.seat_id
                             AND o.reservation_status IN ('held', 'paid', 'confirmed'))",
    )
    .bind(&abandoned)
    .fetch_one(deps.db.pool())
    .await?;
    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE processed_at >= to_timestamp($1)")
            .bind(args.since)
            .fetch_one(deps.db.pool())
            .await?;
    let ok = s.confirmed == paid.len() as i64
        && s.with_ticket == paid.len() as i64
        && charged_twice == 0
        && s.expired == abandoned.len() as i64
        && seats_not_back == 0
        && s.pending == 0
        && s.dead_letters == 0
        && s.unpublished == 0;
    let result = json!({
        "ok": ok,
        "settled_after_s": settled_after,
        "paid": paid.len(),
        "confirmed": s.confirmed,
        "confirmed_with_ticket": s.with_ticket,
        "charged_twice": charged_twice,
        "abandoned": abandoned.len(),
        "expired": s.expired,
        "expired_seats_not_available": seats_not_back,
        "pending_entries": s.pending,
        "oldest_pending_idle_ms": s.oldest_pending_ms,
        "dead_letters": s.dead_letters,
        "outbox_unpublished": s.unpublished,
        "events_processed": processed,
        "schedule": args.schedule,
    });
    println!("{result}");
    anyhow::ensure!(ok, "a check failed");
    Ok(())
}

struct State {
    confirmed: i64,
    with_ticket: i64,
    expired: i64,
    unpublished: i64,
    pending: i64,
    oldest_pending_ms: i64,
    dead_letters: i64,
}

async fn state(deps: &Deps, paid: &[Uuid], abandoned: &[Uuid]) -> anyhow::Result<State> {
    let (confirmed, with_ticket): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'confirmed'),
                count(*) FILTER (WHERE status = 'confirmed' AND ticket_code IS NOT NULL)
           FROM reservations WHERE id = ANY($1)",
    )
    .bind(paid)
    .fetch_one(deps.db.pool())
    .await?;
    let expired: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reservations WHERE id = ANY($1) AND status = 'expired'")
            .bind(abandoned)
            .fetch_one(deps.db.pool())
            .await?;
    let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(deps.db.pool())
        .await?;
    let mut conn = deps.redis.connection().await?;
    let (mut pending, mut oldest) = (0i64, 0i64);
    for stream in imticket::events::Stream::ALL {
        for key in deps.keys.stream_keys(stream) {
            let entries: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
                .arg(&key)
                .arg(stream.group())
                .arg("-")
                .arg("+")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            pending += entries.len() as i64;
            oldest = oldest.max(entries.iter().map(|e| e.2).max().unwrap_or(0));
        }
    }
    let dead_letters: i64 = redis::cmd("XLEN")
        .arg(deps.keys.dead_letter())
        .query_async(&mut conn)
        .await
        .unwrap_or(0);
    Ok(State {
        confirmed,
        with_ticket,
        expired,
        unpublished,
        pending,
        oldest_pending_ms: oldest,
        dead_letters,
    })
}
