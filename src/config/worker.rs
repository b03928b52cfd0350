//! A worker process's own HTTP endpoint (`/metrics`, `/health/live`).

use super::env::{ConfigError, Env};
use super::listen::PortRange;

/// The worker's default: a range, so a second and third worker on one host each find a port
/// (9100, the old default, is also node_exporter's).
pub const DEFAULT_WORKER_METRICS: &str = "127.0.0.1:9470-9489";

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `IMTICKET_WORKER_METRICS_ADDR`: where each worker process serves `/metrics` and
    /// `/health/live`: `HOST:PORT`, or `HOST:FIRST-LAST` for the first free port of a range.
    pub metrics_addr: PortRange,
}

impl WorkerSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            metrics_addr: port_range(env, "IMTICKET_WORKER_METRICS_ADDR", DEFAULT_WORKER_METRICS)?,
        })
    }
}

pub(super) fn port_range(env: &Env, name: &'static str, default: &str) -> Result<PortRange, ConfigError> {
    let text = env.get(name).unwrap_or_else(|| default.to_owned());
    PortRange::parse(&text).ok_or_else(|| {
        ConfigError::new(
            name,
            format!("expected HOST:PORT or HOST:FIRST-LAST (at most 1,000 ports), like {default}; got {text:?}"),
        )
    })
}
