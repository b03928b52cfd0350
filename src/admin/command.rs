//! What every command is: the servers it needs, a check of its arguments, and its work with
//! the connections it asked for.

use crate::infra::postgres::Db;
use anyhow::Context as _;

use super::settings::AdminSettings;
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;

/// Which servers a command talks to; only those are contacted (and must be reachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub redis: bool,
    pub database: bool,
}

impl Needs {
    pub const NOTHING: Needs = Needs {
        redis: false,
        database: false,
    };
    pub const REDIS: Needs = Needs {
        redis: true,
        database: false,
    };
    pub const DATABASE: Needs = Needs {
        redis: false,
        database: true,
    };
    pub const BOTH: Needs = Needs {
        redis: true,
        database: true,
    };
}

/// What a command runs with: the connections it asked for, the key names, the settings.
pub struct Context {
    pub keys: Keys,
    pub json: bool,
    pub settings: AdminSettings,
    pub(super) redis: Option<Redis>,
    pub(super) db: Option<Db>,
}

impl Context {
    pub fn redis(&self) -> anyhow::Result<&Redis> {
        self.redis.as_ref().context("this command did not ask for Redis")
    }

    pub async fn redis_connection(&self) -> anyhow::Result<crate::infra::redis::Connection> {
        self.redis()?.connection().await
    }

    pub fn db(&self) -> anyhow::Result<&Db> {
        self.db.as_ref().context("this command did not ask for PostgreSQL")
    }
}

/// One command (or group of subcommands).
pub(crate) trait Run {
    /// The servers it needs.
    fn needs(&self) -> Needs;

    /// Checks the arguments before anything is contacted (a malformed id is one line).
    fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Does the work; the text (a table, or JSON) is printed on success.
    async fn run(self, cx: &Context) -> anyhow::Result<String>;
}

/// A duration for people: `850ms`, `12.5s`, `3.2m`, `1.5h`.
pub(crate) fn age(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..120_000 => format!("{:.1}s", ms as f64 / 1000.0),
        120_000..7_200_000 => format!("{:.1}m", ms as f64 / 60_000.0),
        _ => format!("{:.1}h", ms as f64 / 3_600_000.0),
    }
}
