//! Waiting-room benchmarks over HTTP (scripts/bench-queue.sh): joins, status calls, the
//! opening of a pre-queue, and how many Redis commands each request costs.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use imticket::app::Deps;
use imticket::domain::queue::Admission;
use imticket::domain::user::Role;
use imticket::infra::redis::waiting_room::WaitingRoom;
use serde_json::Value;
use uuid::Uuid;

use crate::load::{self, Report};

/// GET `path` `requests` times over `connections` keep-alive connections, each sending
/// back to back: requests/s, p50/p99, errors (the HTTP floor with `/health/live`).
#[derive(clap::Args)]
pub struct HttpLoad {
    #[arg(long)]
    pub addr: String,
    #[arg(long, default_value = "/health/live")]
    pub path: String,
    #[arg(long, default_value_t = 100_000)]
    pub requests: usize,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// `requests` joins of a concert's waiting room, each by a fresh user (access tokens minted
/// with JWT_SECRET); the queue tokens are written to `tokens_out`. Also the Redis commands
/// per join (INFO commandstats before and after).
#[derive(clap::Args)]
pub struct QueueJoin {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub concert: Uuid,
    #[arg(long, default_value_t = 100_000)]
    pub requests: usize,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long)]
    pub tokens_out: PathBuf,
}

/// `GET /queue/status` with the queue tokens of `tokens_file` in turn (`requests` 0: each
/// once), and the Redis commands per status call.
#[derive(clap::Args)]
pub struct QueueStatus {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub tokens_file: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub requests: usize,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// With a pre-queue joined (tokens in `tokens_file`) before `opens_at_ms`: the time from
/// the opening until the last joiner, then every joiner, is told a position; then the
/// promoter's round on that line.
#[derive(clap::Args)]
pub struct QueueOpen {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub concert: Uuid,
    #[arg(long)]
    pub tokens_file: PathBuf,
    /// Unix ms.
    #[arg(long)]
    pub opens_at_ms: i64,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// Prints `EVALSHA <sha> <numkeys> <keys> <args>` for redis-benchmark: the real join script
/// (fresh users via __rand_int__) or status script (an entry from the middle of `tokens_file`).
#[derive(clap::Args)]
pub struct QueueEvalshaArgs {
    #[arg(long)]
    pub script: String,
    #[arg(long)]
    pub concert: Uuid,
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
}

/// Every run stops here at the latest, finished or not (what it did is reported).
const DEADLINE: Duration = Duration::from_secs(120);

/// `INFO commandstats` as command → calls.
async fn command_calls(deps: &Deps) -> anyhow::Result<HashMap<String, u64>> {
    // On a Cluster, the sum over the masters.
    let mut calls_by_name = HashMap::new();
    for info in deps.redis.info("commandstats").await.context("INFO commandstats")? {
        for (name, calls) in info.lines().filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls: u64 = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        }) {
            *calls_by_name.entry(name).or_insert(0) += calls;
        }
    }
    Ok(calls_by_name)
}

/// The commands Redis ran between two `INFO commandstats`, per request: the ones the API sent
/// (EVALSHA, and SADD for a join) and those the scripts ran inside, which `commandstats` counts
/// too. `INFO` itself (ours) is left out.
fn per_request(what: &str, before: &HashMap<String, u64>, after: &HashMap<String, u64>, requests: usize) -> String {
    let mut diff: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, calls) in after {
        let n = calls - before.get(name).copied().unwrap_or(0);
        if n > 0 && name != "info" {
            diff.insert(name, n);
        }
    }
    let per = |n: u64| n as f64 / requests as f64;
    let scripts: u64 = diff
        .iter()
        .filter(|(k, _)| k.starts_with("eval") || k.starts_with("script"))
        .map(|(_, n)| n)
        .sum();
    let total: u64 = diff.values().sum();
    let list = diff
        .iter()
        .map(|(k, n)| format!("{} {:.2}", k.to_uppercase(), per(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "redis commands per {what} ({requests} requests): {:.2} in all, of which {:.2} script calls (EVAL*/SCRIPT) and {:.2} other commands (sent by the API or run inside the scripts): {list}",
        per(total),
        per(scripts),
        per(total - scripts)
    )
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

fn statuses(answers: &[Option<load::Answer>]) -> (BTreeMap<String, usize>, Vec<Value>) {
    let mut counts = BTreeMap::new();
    let mut bodies = Vec::with_capacity(answers.len());
    for answer in answers.iter().flatten() {
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let status = field(&body, "status").unwrap_or("(no status)").to_owned();
        *counts.entry(format!("{} {status}", answer.status)).or_insert(0) += 1;
        bodies.push(body);
    }
    (counts, bodies)
}

/// `http-load`: GET `path` `requests` times (the floor is `/health/live`).
pub async fn http_load(args: &HttpLoad) -> anyhow::Result<()> {
    let HttpLoad {
        addr,
        path,
        requests,
        connections,
    } = args;
    let (addr, requests, connections) = (addr.as_str(), *requests, *connections);
    let one = load::request("GET", path, addr, &[]);
    let report = load::run(addr, Arc::new(vec![one; requests]), connections, false, DEADLINE).await?;
    println!("{}", report.summary(&format!("GET {path}"), connections));
    Ok(())
}

/// `queue-join`: `requests` joins of `concert`'s line, each by a fresh user (an access token
/// minted here with the API's JWT_SECRET); writes the queue tokens, in join order, to
/// `tokens_out`.
pub async fn join(deps: &Deps, args: &QueueJoin) -> anyhow::Result<()> {
    let QueueJoin {
        addr,
        concert,
        requests,
        connections,
        tokens_out,
    } = args;
    let (addr, concert, requests, connections) = (addr.as_str(), *concert, *requests, *connections);
    let minted = Instant::now();
    let path = format!("/api/v1/concerts/{concert}/queue");
    let mut all = Vec::with_capacity(requests);
    for _ in 0..requests {
        let token = deps
            .tokens
            .issue(Uuid::now_v7(), Role::User)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .access_token;
        let bearer = format!("Bearer {token}");
        all.push(load::request("POST", &path, addr, &[("Authorization", &bearer)]));
    }
    println!(
        "minted {requests} access tokens in {:.2}s (not timed below)",
        minted.elapsed().as_secs_f64()
    );
    let before = command_calls(deps).await?;
    let report = load::run(addr, Arc::new(all), connections, true, DEADLINE).await?;
    let after = command_calls(deps).await?;
    println!("{}", report.summary("POST /concerts/{id}/queue (join)", connections));
    println!("{}", per_request("join", &before, &after, report.requests));
    let (counts, bodies) = statuses(&report.answers);
    println!("answers: {counts:?}");
    let tokens: Vec<&str> = bodies.iter().filter_map(|b| field(b, "queue_token")).collect();
    std::fs::write(tokens_out, tokens.join("\n")).with_context(|| format!("write {}", tokens_out.display()))?;
    let in_line = WaitingRoom::new(&deps.redis, &deps.keys, concert)
        .stats(concert)
        .await?;
    println!(
        "line now: {} waiting, {} in the pre-queue, {} active",
        in_line.waiting, in_line.pre_queue, in_line.active
    );
    Ok(())
}

fn read_tokens(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let tokens: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
    anyhow::ensure!(!tokens.is_empty(), "no queue token in {}", file.display());
    Ok(tokens)
}

fn status_requests(addr: &str, tokens: &[String], requests: usize) -> Vec<Vec<u8>> {
    (0..requests)
        .map(|i| {
            load::request(
                "GET",
                "/api/v1/queue/status",
                addr,
                &[("X-Queue-Token", &tokens[i % tokens.len()])],
            )
        })
        .collect()
}

/// Checks that the positions in `bodies` are exactly 1..=n, all `waiting`; returns n.
fn positions_are_a_line(bodies: &[Value]) -> anyhow::Result<usize> {
    let mut positions: Vec<u64> = Vec::with_capacity(bodies.len());
    for body in bodies {
        anyhow::ensure!(field(body, "status") == Some("waiting"), "not waiting: {body}");
        positions.push(body.get("position").and_then(Value::as_u64).context("no position")?);
    }
    positions.sort_unstable();
    let n = positions.len();
    anyhow::ensure!(
        positions.iter().enumerate().all(|(i, p)| *p == i as u64 + 1),
        "positions are not 1..={n}"
    );
    Ok(n)
}

/// `queue-status`: `requests` status calls with the tokens of `tokens_file` in turn.
pub async fn status(deps: &Deps, args: &QueueStatus) -> anyhow::Result<()> {
    let QueueStatus {
        addr,
        tokens_file,
        requests,
        connections,
    } = args;
    let (addr, requests, connections) = (addr.as_str(), *requests, *connections);
    let tokens = read_tokens(tokens_file)?;
    let requests = if requests == 0 { tokens.len() } else { requests };
    let all = status_requests(addr, &tokens, requests);
    let before = command_calls(deps).await?;
    let report = load::run(addr, Arc::new(all), connections, true, DEADLINE).await?;
    let after = command_calls(deps).await?;
    println!(
        "{}",
        report.summary(&format!("GET /queue/status ({} tokens)", tokens.len()), connections)
    );
    println!("{}", per_request("status", &before, &after, report.requests));
    let (counts, _) = statuses(&report.answers);
    println!("answers: {counts:?}");
    Ok(())
}

/// `queue-open`: with the pre-queue of `tokens_file` joined before `opens_at_ms`, measures
/// from the opening until the last joiner's status shows a position, then one status call for
/// every joiner (all must be `waiting` with positions 1..=n), then promoter rounds on the line.
pub async fn open(deps: &Deps, args: &QueueOpen) -> anyhow::Result<()> {
    let QueueOpen {
        addr,
        concert,
        tokens_file,
        opens_at_ms,
        connections,
    } = args;
    let (addr, concert, opens_at_ms, connections) = (addr.as_str(), *concert, *opens_at_ms, *connections);
    let tokens = read_tokens(tokens_file)?;
    let room = WaitingRoom::new(&deps.redis, &deps.keys, concert);
    let before = room.stats(concert).await?;
    println!(
        "before the opening: {} in the pre-queue, {} waiting, opens at {opens_at_ms}",
        before.pre_queue, before.waiting
    );
    anyhow::ensure!(
        before.pre_queue as usize >= tokens.len(),
        "the sale opened before the measurement could start; give the joins more time"
    );
    let last = load::request(
        "GET",
        "/api/v1/queue/status",
        addr,
        &[("X-Queue-Token", tokens.last().context("no token")?)],
    );
    let now_ms = || chrono::Utc::now().timestamp_millis();
    let wait = (opens_at_ms - now_ms() - 20).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    // Poll the last joiner on one connection until it is told a position.
    let mut polls = 0;
    let (first_ms, position) = loop {
        polls += 1;
        let report = load::run(addr, Arc::new(vec![last.clone()]), 1, true, DEADLINE).await?;
        let at = now_ms();
        let answer = report.answers.into_iter().flatten().next().context("no answer")?;
        let body: Value = serde_json::from_slice(&answer.body)?;
        if field(&body, "status") == Some("waiting") {
            break (at - opens_at_ms, body["position"].clone());
        }
        anyhow::ensure!(at - opens_at_ms < 10_000, "no position 10 s after the opening: {body}");
    };
    println!(
        "the last of {} joiners was told position {position} {first_ms} ms after the opening ({polls} polls, one connection)",
        tokens.len()
    );
    let started = Instant::now();
    let report: Report = load::run(
        addr,
        Arc::new(status_requests(addr, &tokens, tokens.len())),
        connections,
        true,
        DEADLINE,
    )
    .await?;
    let (_, bodies) = statuses(&report.answers);
    let n = positions_are_a_line(&bodies)?;
    println!(
        "{} (started {} ms after the opening)",
        report.summary("every pre-queue joiner's status after the opening", connections),
        opens_at_ms.abs_diff(now_ms()) as i64 - started.elapsed().as_millis() as i64
    );
    println!(
        "all {n} joiners are waiting with positions exactly 1..={n}; the last of them was told so {} ms after the opening (the positions exist from the opening on; this is how long telling them all took)",
        (report.elapsed.as_millis() as i64 + first_ms)
    );

    // What the promoter does to this line: its whole round (every open line), and one script
    // admitting 1,000 at once from the front of this 100,000-long line.
    let state = imticket::app::waiting_room::PromoterState::default();
    for round in 1..=3 {
        let at = Instant::now();
        let r = imticket::app::waiting_room::promote_all(deps, &state).await?;
        println!(
            "promoter round {round} (queue-promoter's promote_all, IMTICKET_QUEUE_ACTIVE_CAPACITY={}): {:.2} ms, {} lines, {} admitted, {} waiting",
            deps.config.waiting_room.active_capacity,
            at.elapsed().as_secs_f64() * 1e3,
            r.lines,
            r.admitted,
            r.waiting
        );
    }
    let at = Instant::now();
    let admitted = room
        .admit(
            Admission {
                capacity: 1_000_000,
                per_second: 1_000_000,
                active_ttl_ms: 600_000,
            },
            1_000,
        )
        .await?;
    println!(
        "one admission script admitting {} of {} (capacity and rate lifted): {:.2} ms",
        admitted.admitted,
        admitted.waiting + admitted.admitted,
        at.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// `queue-evalsha-args`: the arguments for `redis-benchmark` to run the real join or status
/// script on `concert`'s keys (the status of the entry in `tokens_file`'s middle).
pub fn evalsha_args(deps: &Deps, args: &QueueEvalshaArgs) -> anyhow::Result<()> {
    let (script, concert, tokens_file) = (args.script.as_str(), args.concert, args.tokens_file.as_deref());
    let keys = deps.keys.queue(concert);
    let join = imticket::infra::redis::scripts::QUEUE_JOIN.get_hash();
    let status = imticket::infra::redis::scripts::QUEUE_STATUS.get_hash();
    let key_count = keys.all().len().to_string();
    let mut args: Vec<String> = Vec::new();
    match script {
        "join" => {
            args.extend([join.to_owned(), key_count.clone()]);
            args.extend(keys.all().iter().map(|k| (*k).to_owned()));
            // A fresh user and entry each call (redis-benchmark fills in __rand_int__); open
            // now, capacity 1, 100/s, 600 s: the API's arguments in the benchmark.
            args.extend(
                ["u__rand_int__", "e__rand_int__", "0", "1", "100", "600000", "0.5"]
                    .iter()
                    .map(|s| (*s).to_owned()),
            );
        }
        "status" => {
            let tokens = read_tokens(tokens_file.context("--tokens-file is required for status")?)?;
            let pass = deps
                .tokens
                .verify_queue(&tokens[tokens.len() / 2])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            args.extend([status.to_owned(), key_count]);
            args.extend(keys.all().iter().map(|k| (*k).to_owned()));
            args.push(pass.entry_id.to_string());
        }
        other => anyhow::bail!("unknown script {other} (join or status)"),
    }
    println!("EVALSHA {}", args.join(" "));
    Ok(())
}
