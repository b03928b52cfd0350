//! What the operator CLI needs: where the servers are and how long to wait for them, read with
//! the same names, defaults and checks as the services' configuration ([`crate::config`]'s
//! section readers), without what only the services need (no `JWT_SECRET`; `DATABASE_URL`
//! only for the commands that use it). Options win, then the environment, then the env file
//! (`--env-file`, else `./.data/run.env`, which `scripts/run.sh` writes while it runs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgPoolOptions;

use crate::config::env::{Env, parse_env_file, url_without_password};
use crate::config::notifications::NotificationSettings;
use crate::config::{ConfigError, Pooler, RedisSettings, auth, database, streams};
use crate::infra::postgres::Db;
use crate::infra::redis::Redis;

/// The options every command takes.
#[derive(clap::Args)]
pub struct Globals {
    /// File of NAME=value settings read under the environment [default: ./.data/run.env when present]
    #[arg(long, env = "IMTICKET_ENV_FILE", global = true)]
    pub env_file: Option<PathBuf>,
    /// PostgreSQL URL (migrate, outbox, seed, audit) [default: DATABASE_URL]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Redis URL (streams, dlq, queue, audit) [default: REDIS_URL, else redis://127.0.0.1:6379]
    #[arg(long, global = true)]
    pub redis_url: Option<String>,
    /// Prefix of the deployment's Redis keys [default: IMTICKET_REDIS_KEY_PREFIX, else imticket:]
    #[arg(long, global = true)]
    pub key_prefix: Option<String>,
    /// JSON output for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Written by `scripts/run.sh` while it runs: the addresses of its PostgreSQL and Redis.
const RUN_ENV_FILE: &str = ".data/run.env";

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub database_url: Option<SecretString>,
    pub redis: RedisSettings,
    pub db_acquire_timeout: Duration,
    /// `IMTICKET_DB_POOLER`: what `DATABASE_URL` reaches, as for the services.
    pub db_pooler: Pooler,
    /// A pending stream entry older than this is reported by `audit`.
    pub claim_idle: Duration,
    /// The deployment's groups (which are retired) and when an idle one counts as abandoned,
    /// for `streams`.
    pub groups: crate::events::groups::Registry,
    pub group_abandon_after: Duration,
    /// The deployment's token key and lifetime, for `seed --tokens-out`; the error says why
    /// there is none (read as the services read it, but only needed by that command).
    pub tokens: Result<(SecretString, Duration), ConfigError>,
    /// The webhook settings (which targets are allowed, the rotation overlap), for `webhooks`;
    /// the error says what is wrong (only that command needs them).
    pub notifications: Result<NotificationSettings, ConfigError>,
    /// Where DATABASE_URL and REDIS_URL came from, for error messages.
    origins: HashMap<&'static str, String>,
}

impl AdminSettings {
    /// Reads through `lookup` (tests; [`Self::load`] for the real sources).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        Ok(Self {
            database_url: env.get("DATABASE_URL").map(SecretString::from),
            redis: RedisSettings::read(&env)?,
            db_acquire_timeout: database::acquire_timeout(&env)?,
            db_pooler: database::pooler(&env)?,
            claim_idle: streams::claim_idle(&env)?,
            groups: streams::retired_groups(&env)?,
            group_abandon_after: streams::group_abandon_after(&env)?,
            tokens: crate::config::environment(&env)
                .and_then(|e| auth::jwt_secret(&env, e))
                .and_then(|secret| Ok((SecretString::from(secret), auth::jwt_ttl(&env)?))),
            notifications: NotificationSettings::read(&env),
            origins: HashMap::new(),
        })
    }

    /// Command-line options, then the process environment, then the env file.
    pub fn load(globals: &Globals) -> anyhow::Result<Self> {
        let file = match &globals.env_file {
            Some(path) => Some(read_env_file(path)?),
            None if Path::new(RUN_ENV_FILE).is_file() => Some(read_env_file(Path::new(RUN_ENV_FILE))?),
            None => None,
        };
        let file_name = globals
            .env_file
            .as_deref()
            .unwrap_or(Path::new(RUN_ENV_FILE))
            .display()
            .to_string();
        let option = |name: &str| {
            let (value, flag) = match name {
                "DATABASE_URL" => (globals.database_url.as_ref(), "--database-url"),
                "REDIS_URL" => (globals.redis_url.as_ref(), "--redis-url"),
                "IMTICKET_REDIS_KEY_PREFIX" => (globals.key_prefix.as_ref(), "--key-prefix"),
                _ => (None, ""),
            };
            value.map(|v| (v.clone(), flag.to_owned()))
        };
        let lookup = |name: &str| -> Option<(String, String)> {
            option(name)
                .or_else(|| {
                    std::env::var(name)
                        .ok()
                        .map(|v| (v, format!("{name} from the environment")))
                })
                .or_else(|| {
                    file.as_ref()?
                        .get(name)
                        .map(|v| (v.clone(), format!("{name} from {file_name}")))
                })
        };
        let mut settings = Self::from_lookup(|name| lookup(name).map(|(value, _)| value))?;
        settings.origins = ["DATABASE_URL", "REDIS_URL"]
            .into_iter()
            .map(|name| {
                let origin = lookup(name).map_or_else(|| format!("{name} not set"), |(_, origin)| origin);
                (name, origin)
            })
            .collect();
        Ok(settings)
    }

    fn origin(&self, name: &str) -> &str {
        self.origins.get(name).map_or("", String::as_str)
    }

    /// Connects and PINGs within `IMTICKET_REDIS_TIMEOUT_MS`; later commands have the same
    /// response timeout, so an unreachable Redis is one error line, never a silent wait.
    pub async fn connect_redis(&self) -> anyhow::Result<Redis> {
        let redis = Redis::new(&self.redis)?;
        let connected = async {
            redis.ping().await?;
            redis.connection().await
        };
        connected.await.map(|_| redis).with_context(|| {
            format!(
                "cannot reach Redis at {} ({}) within {} ms",
                url_without_password(self.redis.url.expose_secret()),
                self.origin("REDIS_URL"),
                self.redis.timeout.as_millis()
            )
        })
    }

    /// One connection within `IMTICKET_DB_ACQUIRE_TIMEOUT_MS`, or one error line.
    pub async fn connect_db(&self) -> anyhow::Result<Db> {
        let url: &SecretString = self
            .database_url
            .as_ref()
            .context("DATABASE_URL: is required for this command but not set (nor in --env-file or ./.data/run.env)")?;
        let options = database::connect_options(url, self.db_pooler)?;
        let timeout = self.db_acquire_timeout;
        let connect = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(timeout)
            .connect_with(options.application_name("imticket-admin"));
        // The pool's own timeout covers the connect too; this bounds anything it might not.
        let connected = tokio::time::timeout(timeout + Duration::from_millis(500), connect)
            .await
            .context("timed out")
            .and_then(|pool| Ok(Db::new(pool?, self.db_pooler)));
        connected.with_context(|| {
            format!(
                "cannot reach PostgreSQL at {} ({}) within {} ms",
                url_without_password(url.expose_secret()),
                self.origin("DATABASE_URL"),
                timeout.as_millis()
            )
        })
    }
}

fn read_env_file(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("env file {}", path.display()))?;
    let vars = parse_env_file(&text).map_err(|err| anyhow::anyhow!("env file {}: {err}", path.display()))?;
    Ok(vars.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_settings_need_no_secret_and_no_database() {
        let settings = AdminSettings::from_lookup(|_| None).unwrap();
        assert!(settings.database_url.is_none());
        assert_eq!(settings.redis.url.expose_secret(), "redis://127.0.0.1:6379");
        assert_eq!(settings.redis.key_prefix, "imticket:");
        assert_eq!(settings.redis.timeout, Duration::from_millis(2000));
        assert!(
            settings.tokens.is_err(),
            "no JWT_SECRET in production: no tokens, and no error yet"
        );
        let err = AdminSettings::from_lookup(|name| (name == "IMTICKET_REDIS_TIMEOUT_MS").then(|| "soon".to_owned()))
            .unwrap_err();
        assert_eq!(err.var, "IMTICKET_REDIS_TIMEOUT_MS");
    }
}
