//! Booking benchmarks over HTTP (scripts/bench-booking.sh): holds on distinct seats, the same
//! spread over many schedules, contention for a few seats, payments, and the whole flow from
//! joining the line to a confirmed ticket.
//!
//! Fans are files of lines `user_id access_token queue_token [reservation_id]`, so one run's
//! output feeds the next.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use imticket::app::Deps;
use imticket::domain::user::Role;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::load::{self, Answer};

pub mod holds;
pub mod pay;

/// Every run stops here at the latest, finished or not (what it did is reported).
const DEADLINE: Duration = Duration::from_secs(300);

pub struct Fan {
    pub user_id: Uuid,
    pub access: String,
    pub queue: String,
    pub reservation: Option<Uuid>,
}

pub(super) fn write_fans(file: &Path, fans: &[Fan]) -> anyhow::Result<()> {
    let text: Vec<String> = fans
        .iter()
        .map(|f| match f.reservation {
            Some(r) => format!("{} {} {} {r}", f.user_id, f.access, f.queue),
            None => format!("{} {} {}", f.user_id, f.access, f.queue),
        })
        .collect();
    std::fs::write(file, text.join("\n")).with_context(|| format!("write {}", file.display()))
}

pub(super) fn read_fans(file: &Path) -> anyhow::Result<Vec<Fan>> {
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
pub(super) fn outcomes(answers: &[Option<Answer>]) -> BTreeMap<String, usize> {
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
pub(super) struct PgCounters {
    xacts: i64,
    statements: Option<i64>,
    seat_takes: Option<i64>,
    /// Seat-map queries: (layout with states, states alone).
    seat_map_loads: Option<(i64, i64)>,
}

pub(super) async fn pg_counters(deps: &Deps) -> anyhow::Result<PgCounters> {
    // The statistics collector publishes at most every 500 ms (PGSTAT_MIN_INTERVAL in 15):
    // clear this backend's snapshot so each read sees the latest flush.
    let mut conn = deps.db.pool().acquire().await?;
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
                                               OR query LIKE 'SELECT outcome %FROM hold_seats(%'
                                               OR query LIKE 'SELECT outcome %FROM hold_seats_told(%'), 0)::bigint,
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
pub(super) async fn pg_counters_settled(deps: &Deps) -> anyhow::Result<PgCounters> {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    pg_counters(deps).await
}

/// `n` users inserted with SQL (`<label>-<id>@bench.test`, no password hashing); their ids.
pub(crate) async fn insert_fans(deps: &Deps, label: &str, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    for chunk in ids.chunks(10_000) {
        // Runtime query: bench set-up, not application code.
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, name)
             SELECT id, $2::text || '-' || id || '@bench.test', 'not-a-hash', 'Fan' FROM UNNEST($1::uuid[]) AS t(id)",
        )
        .bind(chunk)
        .bind(label)
        .execute(deps.db.pool())
        .await
        .context("insert users")?;
    }
    Ok(ids)
}

/// A user's access token, minted with the API's JWT_SECRET.
pub(crate) fn access_token(deps: &Deps, user_id: Uuid) -> anyhow::Result<String> {
    Ok(deps
        .tokens
        .issue(user_id, Role::User)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .access_token)
}

/// `POST /users/me/points/charge` of 100,000 points, with an Idempotency-Key of its own.
pub(crate) fn charge_request(addr: &str, access: &str) -> Vec<u8> {
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
}

/// Insert `users` users with SQL, mint their access tokens and have each join `concert`'s
/// line over HTTP (all must be active at once); writes `user_id access queue` lines to `out`.
#[derive(clap::Args)]
pub struct BookingFans {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub concert: Uuid,
    #[arg(long)]
    pub users: usize,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// `booking-fans`: `users` rows inserted with SQL (no password hashing), access tokens minted
/// with JWT_SECRET, each joining `concert`'s line over HTTP; all must be `active` at once.
pub async fn fans(deps: &Deps, args: &BookingFans) -> anyhow::Result<()> {
    let BookingFans {
        addr,
        concert,
        users,
        connections,
        out,
    } = args;
    let (addr, concert, users, connections) = (addr.as_str(), *concert, *users, *connections);
    let ids = insert_fans(deps, "fan", users).await?;
    let path = format!("/api/v1/concerts/{concert}/queue");
    let mut access = Vec::with_capacity(users);
    let mut requests = Vec::with_capacity(users);
    for id in &ids {
        let token = access_token(deps, *id)?;
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
pub(super) async fn seats_interleaved(deps: &Deps, schedules: &[Uuid]) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let mut per: Vec<Vec<Uuid>> = Vec::with_capacity(schedules.len());
    for schedule in schedules {
        // Runtime query: bench set-up.
        let seats: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM seats WHERE schedule_id = $1 ORDER BY section, row_number, seat_number")
                .bind(schedule)
                .fetch_all(deps.db.pool())
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

pub(super) fn hold_request(addr: &str, fan: &Fan, schedule: Uuid, seat: Uuid) -> Vec<u8> {
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

/// One request on a connection of the flow: the answer's JSON body, or why it failed.
pub(super) async fn call(
    conn: &mut BufReader<TcpStream>,
    request: &[u8],
    line: &mut String,
) -> anyhow::Result<(u16, Value)> {
    let answer = load::exchange(conn, request, line).await?;
    Ok((
        answer.status,
        serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
    ))
}
