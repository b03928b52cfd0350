//! The pool of a process, and the three ways a unit of work borrows from it, so that the same
//! code is safe on PostgreSQL directly and behind a transaction-mode pooler (PgBouncer 1.18).
//!
//! Behind such a pooler a client connection gets a server session per transaction, and
//! between transactions another client may get that session. sqlx 0.8 prepares every
//! statement with arguments in one round trip (Parse, Describe, Sync) and runs it in the next
//! (Bind, Execute, Sync), and names it `sqlx_s_<n>`, counting per client connection, even with
//! its statement cache off. So outside an explicit transaction the two halves can reach two
//! sessions (the statement is missing, or another client's of the same name or the unnamed
//! one runs with these arguments: a wrong answer, not an error), and inside one a name can
//! meet the one another client left in that session ("already exists").
//! `tests/api/pgbouncer.rs` shows each of these through a real PgBouncer. What this type
//! does about it, behind a transaction pooler ([`Pooler::Transaction`]):
//!
//! - every unit of work is an explicit transaction, so both halves reach the same session;
//! - it begins with `DEALLOCATE ALL` in the same round trip, dropping every statement the
//!   session's previous client left, so no name is met twice;
//! - sqlx's statement cache is off (`config::database::connect_options`), so no statement is
//!   looked for in a later transaction.
//!
//! On PostgreSQL directly nothing changes: the statement cache serves, and a statement outside
//! a transaction is its own implicit one (the hold's one round trip).

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::config::Pooler;

/// Behind a transaction pooler every transaction starts so: one round trip, as `BEGIN` alone.
const BEGIN: &str = "BEGIN; DEALLOCATE ALL";
/// The same for reads: a write on a connection meant for reads fails at once instead of being
/// rolled back unseen when the connection is dropped.
const BEGIN_READ_ONLY: &str = "BEGIN READ ONLY; DEALLOCATE ALL";

/// A process's PostgreSQL pool and what stands in front of PostgreSQL. Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    pooler: Pooler,
}

impl Db {
    pub fn new(pool: PgPool, pooler: Pooler) -> Self {
        Self { pool, pooler }
    }

    /// The pool itself: its size for the gauges, and statements sent with the simple protocol
    /// (`sqlx::raw_sql`, one message, safe everywhere). A statement with arguments goes through
    /// [`Self::begin`], [`Self::read`] or [`Self::write`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn pooler(&self) -> Pooler {
        self.pooler
    }

    /// A transaction: the use case's own.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        match self.pooler {
            Pooler::None => self.pool.begin().await,
            Pooler::Transaction => self.pool.begin_with(BEGIN).await,
        }
    }

    /// A connection for reads outside any transaction of the caller's. Behind a transaction
    /// pooler it is a read-only transaction, rolled back when dropped.
    pub async fn read(&self) -> Result<Conn, sqlx::Error> {
        self.conn(BEGIN_READ_ONLY).await
    }

    /// A connection for a write that is one statement, in its own implicit transaction on
    /// PostgreSQL (one round trip). Behind a transaction pooler it is a transaction: end it
    /// with [`Conn::commit`], or what was written is rolled back when it is dropped.
    pub async fn write(&self) -> Result<Conn, sqlx::Error> {
        self.conn(BEGIN).await
    }

    async fn conn(&self, begin: &'static str) -> Result<Conn, sqlx::Error> {
        Ok(Conn(match self.pooler {
            Pooler::None => Inner::Session(self.pool.acquire().await?),
            Pooler::Transaction => Inner::Transaction(self.pool.begin_with(begin).await?),
        }))
    }
}

/// A pooled connection from [`Db::read`] or [`Db::write`]; use it as a `&mut PgConnection`.
pub struct Conn(Inner);

enum Inner {
    Session(PoolConnection<Postgres>),
    Transaction(Transaction<'static, Postgres>),
}

impl Conn {
    /// Ends a write: commits it behind a transaction pooler (on PostgreSQL directly each
    /// statement committed as it ran).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Inner::Session(_) => Ok(()),
            Inner::Transaction(tx) => tx.commit().await,
        }
    }
}

impl Deref for Conn {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match &self.0 {
            Inner::Session(conn) => conn,
            Inner::Transaction(tx) => tx,
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match &mut self.0 {
            Inner::Session(conn) => conn,
            Inner::Transaction(tx) => tx,
        }
    }
}
