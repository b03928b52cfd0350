//! A worker process's own HTTP endpoint (`/metrics`, `/health/live`).

use std::net::SocketAddr;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `IMTICKET_WORKER_METRICS_ADDR`: where each worker process serves `/metrics` and
    /// `/health/live`.
    pub metrics_addr: SocketAddr,
}

impl WorkerSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            metrics_addr: env.parsed(
                "IMTICKET_WORKER_METRICS_ADDR",
                "127.0.0.1:9100",
                "a socket address like 127.0.0.1:9100",
            )?,
        })
    }
}
