//! Catalog benchmarks (scripts/bench-catalog.sh): bulk seat insertion (one UNNEST statement
//! per chunk against one INSERT per seat), and the end-to-end latency of GETs with a client
//! that costs next to nothing.

use std::time::{Duration, Instant};

use anyhow::Context;
use imticket::app::Deps;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InsertStrategy {
    Unnest,
    RowByRow,
}

/// Insert `seats` seats into a fresh schedule, in chunks of 5,000 per transaction, with one
/// UNNEST statement per chunk or one INSERT per seat.
#[derive(clap::Args)]
pub struct SeatInsert {
    #[arg(long, default_value_t = 100_000)]
    pub seats: u32,
    #[arg(long, value_enum)]
    pub strategy: InsertStrategy,
}

/// End-to-end latency of sequential GETs over one keep-alive HTTP/1.1 connection, with a
/// client that costs next to nothing (k6 adds tens of microseconds per request).
#[derive(clap::Args)]
pub struct HttpLatency {
    /// host:port of the API.
    #[arg(long)]
    pub addr: String,
    /// Path to GET (repeatable); the paths are requested in turn.
    #[arg(long)]
    pub path: Vec<String>,
    /// A file with one path per line, added to `--path`.
    #[arg(long)]
    pub paths_file: Option<std::path::PathBuf>,
    /// Requests to time (0: each path once).
    #[arg(long, default_value_t = 0)]
    pub requests: usize,
    /// Wait for each answer by polling the socket instead of sleeping in `read`: the
    /// client then never pays the scheduler's wake-up (tens of microseconds on these VMs).
    #[arg(long)]
    pub spin: bool,
}

/// One seat per statement: the "before" of the seat-insert benchmark. A runtime query: the
/// product never inserts seats this way, so its query data has no place in `.sqlx/`.
async fn insert_seat_row_by_row(
    conn: &mut PgConnection,
    schedule_id: Uuid,
    p: &imticket::domain::catalog::SeatPosition<'_>,
) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "INSERT INTO seats (id, schedule_id, section, row_number, seat_number, price) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT seats_position_key DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(schedule_id)
    .bind(p.section)
    .bind(p.row)
    .bind(p.number)
    .bind(p.price)
    .execute(conn)
    .await
    .context("insert seat")?;
    Ok(result.rows_affected())
}

pub async fn seat_insert(deps: &Deps, &SeatInsert { seats, strategy }: &SeatInsert) -> anyhow::Result<()> {
    use imticket::infra::postgres::catalog as repo;
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
                    insert_seat_row_by_row(&mut tx, schedule.id, p).await?;
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

pub async fn http_latency(args: HttpLatency) -> anyhow::Result<()> {
    let HttpLatency {
        addr,
        mut path,
        paths_file,
        requests,
        spin,
    } = args;
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
    let mut times = tokio::task::spawn_blocking(move || timed_gets(&addr, &path, requests, spin)).await??;
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
fn timed_gets(addr: &str, paths: &[String], requests: usize, spin: bool) -> anyhow::Result<Vec<Duration>> {
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
