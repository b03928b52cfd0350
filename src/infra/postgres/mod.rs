//! PostgreSQL, the system of record: the pool and how a unit of work borrows from it
//! (`pool.rs`), the embedded migrations, the advisory-lock helper, and one repository file per
//! aggregate. Repository functions take the caller's `&mut PgConnection`, so the use case owns
//! the transaction.

pub mod audit;
pub mod catalog;
pub mod console;
pub mod error;
pub mod idempotency;
pub mod notices;
pub mod outbox;
mod pool;
pub mod processed_events;
pub mod reservations;
pub mod statistics;
pub mod users;
pub mod venues;
pub mod wallet;
pub mod webhooks;

pub use pool::{Conn, Db};

use std::time::Duration;

use anyhow::Context;
use sqlx::PgConnection;

use crate::config::DatabaseSettings;

/// The pool of a process, as [`DatabaseSettings`] says. It connects lazily, so a process can
/// start (and report itself not ready) while the database is still coming up.
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<Db> {
    let options = settings.connect_options()?;
    let pool = settings
        .pool_options()
        .min_connections(0)
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options.application_name("imticket"));
    Ok(Db::new(pool, settings.pooler))
}

/// Applies pending migrations (`migrations/`, compiled into the binaries), all of them in one
/// transaction holding a transaction-scoped advisory lock. sqlx's migrator would take a
/// session-level lock, which behind a transaction pooler stays held by whichever server
/// session it reached, and is released (or not) in another. Safe with several processes at
/// once: the second waits for the first to commit, then finds nothing to do. The lock's key is
/// sqlx's own for this database, so `sqlx migrate run` and older binaries wait too.
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("./migrations");
    if let Some(m) = migrator.iter().find(|m| m.no_tx) {
        anyhow::bail!(
            "migration {} is marked no-transaction; migrations here run in one transaction (see migrate())",
            m.version
        );
    }
    migrator.set_locking(false);
    let mut tx = db.begin().await.context("begin migrations")?;
    // Runtime queries: they run before the schema the compile-time checks know exists.
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *tx)
        .await
        .context("name the database")?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(migration_lock_key(&database))
        .execute(&mut *tx)
        .await
        .context("lock the migrations")?;
    // `run_direct` is `run` on a connection; `run` on one cannot be spawned ("implementation
    // of `Acquire` is not general enough", which is why sqlx offers it).
    migrator
        .run_direct(&mut *tx)
        .await
        .context("apply database migrations")?;
    tx.commit().await.context("commit migrations")?;
    Ok(())
}

/// sqlx's advisory-lock key for migrating `database` (`generate_lock_id` in sqlx-postgres):
/// `0x3d32ad9e` × the CRC-32 (IEEE) of its name.
fn migration_lock_key(database: &str) -> i64 {
    let mut crc = !0u32;
    for &byte in database.as_bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    0x3d32_ad9e * i64::from(!crc)
}

/// `SELECT 1` within `timeout`: readiness probes must answer quickly even when the pool waits.
/// The simple protocol: one message, safe behind any pooler.
pub async fn ping(db: &Db, timeout: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(timeout, sqlx::raw_sql("SELECT 1").execute(db.pool()))
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
pub async fn applied_migrations(db: &Db) -> anyhow::Result<i64> {
    let mut conn = db.read().await.context("connect to PostgreSQL")?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .context("look for the migrations table")?;
    if !exists {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
        .context("count applied migrations")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_lock_key_is_sqlx_own() {
        // CRC-32 (IEEE) of "123456789" is 0xCBF43926, the algorithm's check value.
        assert_eq!(migration_lock_key("123456789"), 0x3d32_ad9e * 0xCBF4_3926);
        // What sqlx 0.8's migrator locks for a database named `imticket`.
        assert_eq!(migration_lock_key("imticket"), 0x3d32_ad9e * i64::from(0x6685_45dc_u32));
    }
}
