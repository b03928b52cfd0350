//! PostgreSQL: where it is and how each process's pool behaves.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`.
    pub url: SecretString,
    /// `IMTICKET_DB_MAX_CONNECTIONS`: pool size per process.
    pub max_connections: u32,
    /// `IMTICKET_DB_ACQUIRE_TIMEOUT_MS`: how long a request waits for a pooled connection
    /// before answering 503.
    pub acquire_timeout: Duration,
}

impl DatabaseSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            url: SecretString::from(env.required("DATABASE_URL")?),
            max_connections: env.number("IMTICKET_DB_MAX_CONNECTIONS", 20, 1..=1000)?,
            acquire_timeout: acquire_timeout(env)?,
        };
        // A URL that cannot be parsed stops the process at start, like any other bad value.
        settings.connect_options()?;
        Ok(settings)
    }

    /// Where to connect; the error names `DATABASE_URL` (never its value: it may hold a
    /// password).
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        self.url
            .expose_secret()
            .parse()
            .map_err(|_| ConfigError::new("DATABASE_URL", "is not a valid PostgreSQL URL"))
    }

    /// The pool's size and waits. It connects lazily, so a process can start (and report
    /// itself not ready) while the database is still coming up.
    pub fn pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
    }
}

/// `IMTICKET_DB_ACQUIRE_TIMEOUT_MS`, also read by the operator CLI.
pub(crate) fn acquire_timeout(env: &Env) -> Result<Duration, ConfigError> {
    env.millis("IMTICKET_DB_ACQUIRE_TIMEOUT_MS", 5000, 100..=120_000)
}
