//! PostgreSQL: where it is, what stands in front of it, and how each process's pool behaves.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::env::{ConfigError, Env};

/// A pooled connection idle this long is tested before it is handed out
/// ([`DatabaseSettings::pool_options`]).
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`.
    pub url: SecretString,
    /// `IMTICKET_DB_MAX_CONNECTIONS`: pool size per process.
    pub max_connections: u32,
    /// `IMTICKET_DB_ACQUIRE_TIMEOUT_MS`: how long a request waits for a pooled connection
    /// before answering 503.
    pub acquire_timeout: Duration,
    /// `IMTICKET_DB_POOLER`: what `DATABASE_URL` reaches.
    pub pooler: Pooler,
}

/// `IMTICKET_DB_POOLER`: what `DATABASE_URL` reaches, which decides how a connection may be
/// used (`infra::postgres::Db`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooler {
    /// `none`: PostgreSQL itself, or a pooler in session mode. A connection is one server
    /// session for its whole life: sqlx's statement cache, and statements outside a
    /// transaction (each its own implicit one), are safe.
    None,
    /// `transaction`: a pooler in transaction mode (PgBouncer `pool_mode = transaction`). A
    /// connection gets a server session per transaction, and PgBouncer 1.18 follows no
    /// protocol-level prepared statement: sqlx's statement cache is off, and every statement
    /// runs inside an explicit transaction that starts by dropping whatever statements the
    /// session's previous client left (docs/architecture.md, "PostgreSQL through PgBouncer").
    Transaction,
}

impl DatabaseSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            url: SecretString::from(env.required("DATABASE_URL")?),
            max_connections: env.number("IMTICKET_DB_MAX_CONNECTIONS", 20, 1..=1000)?,
            acquire_timeout: acquire_timeout(env)?,
            pooler: pooler(env)?,
        };
        // A URL that cannot be parsed stops the process at start, like any other bad value.
        settings.connect_options()?;
        Ok(settings)
    }

    /// Where to connect; the error names `DATABASE_URL` (never its value: it may hold a
    /// password).
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        connect_options(&self.url, self.pooler)
    }

    /// The pool's size and waits. It connects lazily, so a process can start (and report
    /// itself not ready) while the database is still coming up.
    ///
    /// sqlx tests a connection with a round trip (a `Sync`, answered by `ReadyForQuery`) each
    /// time it goes back to the pool, and by default again each time it comes out: two round
    /// trips to PostgreSQL per request besides its statements, each a wake-up of a backend
    /// (7–8 % of the API's CPU during a hold storm, docs/perf/). The test on the way out is
    /// kept only for a connection that sat idle for [`PING_IDLE_AFTER`] or more, long enough
    /// for the server to have gone away meanwhile; one just given back was tested then.
    pub fn pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
    }
}

/// `url`'s options for `pooler`, also used by the operator CLI. Behind a transaction pooler
/// sqlx's statement cache is off (a cached statement would be looked for in whatever session
/// the next transaction gets: "does not exist", or another client's statement of the same
/// name run with these arguments), and `extra_float_digits` is not sent: PgBouncer refuses a
/// startup parameter it does not track unless told to ignore it, and sqlx reads floats in
/// binary, where it changes nothing.
pub(crate) fn connect_options(url: &SecretString, pooler: Pooler) -> Result<PgConnectOptions, ConfigError> {
    let options: PgConnectOptions = url
        .expose_secret()
        .parse()
        .map_err(|_| ConfigError::new("DATABASE_URL", "is not a valid PostgreSQL URL"))?;
    Ok(match pooler {
        Pooler::None => options,
        Pooler::Transaction => options.statement_cache_capacity(0).extra_float_digits(None),
    })
}

/// `IMTICKET_DB_ACQUIRE_TIMEOUT_MS`, also read by the operator CLI.
pub(crate) fn acquire_timeout(env: &Env) -> Result<Duration, ConfigError> {
    env.millis("IMTICKET_DB_ACQUIRE_TIMEOUT_MS", 5000, 100..=120_000)
}

/// `IMTICKET_DB_POOLER`, also read by the operator CLI.
pub(crate) fn pooler(env: &Env) -> Result<Pooler, ConfigError> {
    Ok(
        match env.choice("IMTICKET_DB_POOLER", "none", &["none", "transaction"])? {
            "transaction" => Pooler::Transaction,
            _ => Pooler::None,
        },
    )
}
