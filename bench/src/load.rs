//! A lean HTTP/1.1 load generator: `connections` keep-alive connections, each sending the next
//! prepared request as soon as the previous answer is read in full. It parses only what it
//! needs (status line, Content-Length, body), so nearly all the time measured is the server's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One request, already rendered as bytes.
pub fn request(method: &str, path: &str, addr: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    request_with_json(method, path, addr, headers, "")
}

/// One request with a JSON body (none when `json` is empty), already rendered as bytes.
pub fn request_with_json(method: &str, path: &str, addr: &str, headers: &[(&str, &str)], json: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !json.is_empty() {
        text.push_str("Content-Type: application/json\r\n");
    }
    if method == "POST" || !json.is_empty() {
        text.push_str(&format!("Content-Length: {}\r\n", json.len()));
    }
    text.push_str("\r\n");
    text.push_str(json);
    text.into_bytes()
}

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct Report {
    pub requests: usize,
    pub elapsed: Duration,
    /// Sorted.
    pub latencies: Vec<Duration>,
    /// The latencies of the 2xx answers alone, sorted (what was served, when some were shed).
    pub served: Vec<Duration>,
    /// Answers other than 2xx, and requests that failed on the connection.
    pub errors: usize,
    /// In request order, when bodies were kept.
    pub answers: Vec<Option<Answer>>,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1e6
    }

    pub fn summary(&self, what: &str, connections: usize) -> String {
        let mut line = format!(
            "{what}: {} requests over {connections} connections in {:.2}s: {:.0} requests/s, p50 {:.0} us, p99 {:.0} us, errors {}",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.quantile_us(0.5),
            self.quantile_us(0.99),
            self.errors
        );
        if self.errors > 0 && !self.served.is_empty() {
            let q = |q: f64| {
                let i = ((self.served.len() as f64 * q) as usize).min(self.served.len() - 1);
                self.served[i].as_secs_f64() * 1e6
            };
            line.push_str(&format!(
                "; the {} served (2xx): p50 {:.0} us, p99 {:.0} us",
                self.served.len(),
                q(0.5),
                q(0.99)
            ));
        }
        line
    }
}

/// Sends every request once, over `connections` connections, stopping early at `deadline`.
/// Keeps the bodies when `keep_bodies` (the join returns the queue tokens the status run uses).
pub async fn run(
    addr: &str,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    keep_bodies: bool,
    deadline: Duration,
) -> anyhow::Result<Report> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for stream in streams {
        let (requests, next) = (requests.clone(), next.clone());
        tasks.spawn(async move {
            let mut conn = BufReader::new(stream);
            let mut done: Vec<(usize, Duration, bool, Option<Answer>)> = Vec::new();
            let mut errors = 0;
            let mut line = String::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests.len() || started.elapsed() > deadline {
                    break;
                }
                let at = Instant::now();
                match exchange(&mut conn, &requests[i], &mut line).await {
                    Ok(answer) => {
                        let served = (200..300).contains(&answer.status);
                        if !served {
                            errors += 1;
                        }
                        done.push((i, at.elapsed(), served, keep_bodies.then_some(answer)));
                    }
                    Err(_) => {
                        // The connection is unusable after a failed exchange.
                        errors += 1;
                        break;
                    }
                }
            }
            (done, errors)
        });
    }
    let mut report = Report {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(requests.len()),
        served: Vec::new(),
        errors: 0,
        answers: Vec::new(),
    };
    if keep_bodies {
        report.answers.resize_with(requests.len(), || None);
    }
    while let Some(result) = tasks.join_next().await {
        let (done, errors) = result.context("load task")?;
        report.errors += errors;
        for (i, latency, served, answer) in done {
            report.latencies.push(latency);
            if served {
                report.served.push(latency);
            }
            if keep_bodies {
                report.answers[i] = answer;
            }
        }
    }
    report.elapsed = started.elapsed();
    report.requests = report.latencies.len();
    report.latencies.sort();
    report.served.sort();
    Ok(report)
}

pub async fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8], line: &mut String) -> anyhow::Result<Answer> {
    conn.get_mut().write_all(request).await?;
    let (mut status, mut length) = (0u16, 0usize);
    loop {
        line.clear();
        anyhow::ensure!(conn.read_line(line).await? > 0, "connection closed");
        if line == "\r\n" {
            break;
        }
        if status == 0 {
            status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(999);
        } else if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok(Answer { status, body })
}
