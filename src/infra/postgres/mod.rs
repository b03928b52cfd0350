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
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};

use crate::config::DatabaseSettings;

/// Every migration in `migrations/`, compiled into the binaries.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The pool of a process, as [`DatabaseSettings`] says. It connects lazily, so a process can
/// start (and report itself not ready) while the database is still coming up.
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let options = settings.connect_options()?;
    Ok(settings
        .pool_options()
        .min_connections(0)
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

/// How many migrations are applied. A runtime query: `_sqlx_migrations` may not exist yet.
pub async fn applied_migrations(pool: &PgPool) -> anyhow::Result<i64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .context("look for the migrations table")?;
    if !exists {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .context("count applied migrations")
}
