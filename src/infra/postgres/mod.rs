//! PostgreSQL, the system of record: the pool, the embedded migrations, the advisory-lock
//! helper, and one repository file per aggregate. Repository functions take the caller's
//! `&mut PgConnection`, so the use case owns the transaction.

pub mod audit;
pub mod catalog;
pub mod error;
pub mod idempotency;
pub mod outbox;
pub mod processed_events;
pub mod reservations;
pub mod users;
pub mod wallet;

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use crate::config::Config;

/// Every migration in `migrations/`, compiled into the binaries.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A pool with bounded size and acquire time. It connects lazily, so a process can start
/// (and report itself not ready) while the database is still coming up.
pub fn pool(config: &Config) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = config
        .database_url
        .expose_secret()
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    Ok(PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .min_connections(0)
        .acquire_timeout(config.db_acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options.application_name("imticket")))
}

/// Applies pending migrations. Safe with several processes at once: sqlx takes an advisory
/// lock for the duration.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("apply database migrations")
}

/// `SELECT 1` within `timeout`: readiness probes must answer quickly even when the pool waits.
pub async fn ping(pool: &PgPool, timeout: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool))
        .await
        .context("database ping timed out")?
        .context("database ping")?;
    Ok(())
}

/// Takes the transaction-scoped advisory lock named `name` (hashed to 64 bits), waiting for
/// the transaction that holds it to end.
pub async fn advisory_xact_lock(conn: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)
        .execute(conn)
        .await
        .with_context(|| format!("advisory lock {name}"))?;
    Ok(())
}
