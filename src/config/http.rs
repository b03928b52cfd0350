//! The HTTP API's listener: where, how many processes may share it, and what a client may
//! cost it (slow or greedy clients, overload).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::listen::PortRange;
use super::worker::port_range;

/// Each API process's own `/metrics` (several may share `IMTICKET_HTTP_ADDR`).
pub const DEFAULT_API_METRICS: &str = "127.0.0.1:9490-9509";

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `IMTICKET_HTTP_ADDR`: where the API listens (port 0 picks a free port).
    pub addr: SocketAddr,
    /// `IMTICKET_HTTP_REUSE_PORT`: several API processes on one host share `addr` and the
    /// kernel spreads connections among them (`SO_REUSEPORT`). Only processes of one
    /// deployment (one user) can share a port.
    pub reuse_port: bool,
    /// `IMTICKET_API_METRICS_ADDR`: this process's own `/metrics` and `/health/live`
    /// (`HOST:PORT` or `HOST:FIRST-LAST`, the first free port); `off` for none.
    pub metrics_addr: Option<PortRange>,
    /// `IMTICKET_HTTP_WORKERS`: HTTP worker threads (default: one per CPU).
    pub workers: usize,
    /// `IMTICKET_HTTP_MAX_CONNECTIONS`: open connections per process, beyond which new ones
    /// wait in the kernel's backlog.
    pub max_connections: usize,
    /// `IMTICKET_HTTP_HEADER_TIMEOUT_MS`: a client must send a request's whole head within
    /// this (else 408 and the connection is closed): slowloris.
    pub header_timeout: Duration,
    /// `IMTICKET_HTTP_BODY_TIMEOUT_MS`: ... and its whole body within this.
    pub body_timeout: Duration,
    /// `IMTICKET_HTTP_MAX_IN_FLIGHT`: requests served at once per process; the rest wait for a
    /// turn (at most `queue_timeout`).
    pub max_in_flight: usize,
    /// `IMTICKET_HTTP_QUEUE_TIMEOUT_MS`: how long a request may wait for a turn before it is
    /// answered 503 `overloaded` with `Retry-After`.
    pub queue_timeout: Duration,
    /// `IMTICKET_HTTP_DRAIN_SECONDS`: after SIGTERM the process keeps serving this long while
    /// `/health/ready` answers 503 `draining`, so a load balancer's health checks take it out
    /// of rotation before it stops accepting connections (0: stop at once).
    pub drain: Duration,
}

impl HttpSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let metrics_addr = match env.get("IMTICKET_API_METRICS_ADDR") {
            Some(v) if v.trim() == "off" => None,
            _ => Some(port_range(env, "IMTICKET_API_METRICS_ADDR", DEFAULT_API_METRICS)?),
        };
        Ok(Self {
            addr: env.parsed(
                "IMTICKET_HTTP_ADDR",
                "127.0.0.1:8080",
                "a socket address like 127.0.0.1:8080",
            )?,
            reuse_port: env.choice("IMTICKET_HTTP_REUSE_PORT", "on", &["on", "off"])? == "on",
            metrics_addr,
            workers: env.number("IMTICKET_HTTP_WORKERS", cpus, 1..=256)?,
            max_connections: env.number("IMTICKET_HTTP_MAX_CONNECTIONS", 25_000, 16..=1_000_000)?,
            header_timeout: env.millis("IMTICKET_HTTP_HEADER_TIMEOUT_MS", 5_000, 100..=120_000)?,
            body_timeout: env.millis("IMTICKET_HTTP_BODY_TIMEOUT_MS", 10_000, 100..=120_000)?,
            max_in_flight: env.number("IMTICKET_HTTP_MAX_IN_FLIGHT", 256, 1..=100_000)?,
            queue_timeout: env.millis("IMTICKET_HTTP_QUEUE_TIMEOUT_MS", 2_000, 0..=60_000)?,
            drain: env.seconds("IMTICKET_HTTP_DRAIN_SECONDS", 5, 0..=600)?,
        })
    }
}

/// `IMTICKET_METRICS_TARGETS_DIR`: where each process (API or worker) writes a Prometheus
/// file-discovery target for its own metrics address while it runs.
pub(super) fn metrics_targets_dir(env: &Env) -> Option<PathBuf> {
    env.get("IMTICKET_METRICS_TARGETS_DIR")
        .filter(|d| !d.trim().is_empty())
        .map(PathBuf::from)
}
