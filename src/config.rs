//! The one typed configuration, read once from the environment and passed explicitly.
//!
//! Every variable, its default and its meaning is listed in `.env.example`. A missing or
//! invalid value is a [`ConfigError`] whose `Display` is a single line naming the variable;
//! the binaries print it and exit with status 2.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// Used as `JWT_SECRET` in development mode only; production refuses to start without one.
const DEV_JWT_SECRET: &str = "imticket-development-secret-do-not-use-in-production";
/// HS256 keys shorter than the hash output weaken the MAC (RFC 7518 §3.2).
const MIN_JWT_SECRET_BYTES: usize = 32;
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_REDIS_KEY_PREFIX: &str = "imticket:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub database_url: SecretString,
    pub redis_url: SecretString,
    pub jwt_secret: SecretString,
    pub jwt_ttl: Duration,
    pub http_addr: SocketAddr,
    pub worker_metrics_addr: SocketAddr,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    pub redis_timeout: Duration,
    /// How long an API process keeps its own copy of a concert's details (0: no near cache).
    pub cache_near_ttl: Duration,
    /// How long a schedule's seat states live in Redis before they are rebuilt from PostgreSQL:
    /// the bound on how long a lost write-through can show in the seat map.
    pub seat_states_ttl: Duration,
    pub shutdown_timeout: Duration,
    pub hold_ttl: Duration,
    pub max_seats_per_reservation: u16,
    /// Seats one user may hold or own at once for one schedule, over all of their reservations.
    pub max_seats_per_user: u16,
    pub queue_active_capacity: u32,
    pub queue_promote_per_second: u32,
    pub queue_active_ttl: Duration,
    pub stream_max_deliveries: u32,
    pub stream_claim_idle: Duration,
    pub stream: StreamSettings,
    pub redis_key_prefix: String,
    pub bootstrap_admin: Option<BootstrapAdmin>,
}

/// Tuning of the stream consumers, the trimmer and the outbox relay.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Entries read (and reclaimed) per round.
    pub batch_size: usize,
    /// Handler invocations of one batch running at once.
    pub concurrency: usize,
    /// How long one XREADGROUP blocks waiting for new entries; bounds shutdown latency.
    pub block: Duration,
    /// Upper bound of the reclaim back-off `claim_idle × 2^(deliveries−1)`.
    pub backoff_cap: Duration,
    /// How often each consumer process trims its stream and cleans up dead consumers.
    pub maintenance_interval: Duration,
    /// A consumer idle this long that owns no pending entry is removed from its group.
    pub consumer_cleanup_idle: Duration,
    /// Outbox rows published per relay round.
    pub outbox_batch_size: usize,
    /// Published outbox rows are deleted after this long.
    pub outbox_retention: Duration,
    /// `processed_events` rows are deleted after this long: longer than any redelivery of
    /// the same entry, and than an operator may wait to replay a dead letter (see
    /// docs/event-backbone.md). Checked at start against the redelivery window.
    pub processed_events_retention: Duration,
}

/// The admin account created at start-up when both variables are set.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: SecretString,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// For binaries: the configuration, or its one-line error on stderr and exit status 2.
    pub fn from_env_or_exit(binary: &str) -> Self {
        Self::from_env().unwrap_or_else(|err| {
            eprintln!("{binary}: {err}");
            std::process::exit(2)
        })
    }

    /// Reads configuration through `lookup`, so tests can supply variables without touching
    /// the process environment (which is shared by every test thread).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        let environment = env.environment()?;
        let jwt_secret = env.jwt_secret(environment)?;

        let bootstrap_admin = match (
            env.get("IMTICKET_BOOTSTRAP_ADMIN_EMAIL"),
            env.get("IMTICKET_BOOTSTRAP_ADMIN_PASSWORD"),
        ) {
            (Some(email), Some(password)) => Some(BootstrapAdmin {
                email,
                password: SecretString::from(password),
            }),
            _ => None,
        };

        (Self {
            environment,
            database_url: SecretString::from(env.required("DATABASE_URL")?),
            redis_url: env.redis_url(),
            jwt_secret: SecretString::from(jwt_secret),
            jwt_ttl: env.seconds("IMTICKET_JWT_TTL_SECONDS", 3600, 60..=86_400 * 30)?,
            http_addr: env.parsed(
                "IMTICKET_HTTP_ADDR",
                "127.0.0.1:8080",
                "a socket address like 127.0.0.1:8080",
            )?,
            worker_metrics_addr: env.parsed(
                "IMTICKET_WORKER_METRICS_ADDR",
                "127.0.0.1:9100",
                "a socket address like 127.0.0.1:9100",
            )?,
            db_max_connections: env.number("IMTICKET_DB_MAX_CONNECTIONS", 20, 1..=1000)?,
            db_acquire_timeout: env.db_acquire_timeout()?,
            redis_timeout: env.redis_timeout()?,
            cache_near_ttl: Duration::from_millis(env.number("IMTICKET_CACHE_NEAR_TTL_MS", 1000, 0..=60_000)?),
            seat_states_ttl: env.seconds("IMTICKET_SEAT_STATES_TTL_SECONDS", 10, 1..=3600)?,
            shutdown_timeout: env.seconds("IMTICKET_SHUTDOWN_TIMEOUT_SECONDS", 30, 1..=3600)?,
            hold_ttl: env.seconds("IMTICKET_HOLD_TTL_SECONDS", 300, 1..=86_400)?,
            max_seats_per_reservation: env.number("IMTICKET_MAX_SEATS_PER_RESERVATION", 4, 1..=100)?,
            max_seats_per_user: env.number("IMTICKET_MAX_SEATS_PER_USER", 4, 1..=1000)?,
            queue_active_capacity: env.number("IMTICKET_QUEUE_ACTIVE_CAPACITY", 1000, 1..=10_000_000)?,
            queue_promote_per_second: env.number("IMTICKET_QUEUE_PROMOTE_PER_SECOND", 100, 1..=1_000_000)?,
            queue_active_ttl: env.seconds("IMTICKET_QUEUE_ACTIVE_TTL_SECONDS", 600, 1..=86_400)?,
            stream_max_deliveries: env.number("IMTICKET_STREAM_MAX_DELIVERIES", 5, 1..=1000)?,
            stream_claim_idle: Duration::from_millis(env.number(
                "IMTICKET_STREAM_CLAIM_IDLE_MS",
                30_000,
                100..=86_400_000,
            )?),
            stream: StreamSettings {
                batch_size: env.number("IMTICKET_STREAM_BATCH_SIZE", 500, 1..=10_000)?,
                concurrency: env.number("IMTICKET_STREAM_CONCURRENCY", 4, 1..=256)?,
                block: Duration::from_millis(env.number("IMTICKET_STREAM_BLOCK_MS", 1000, 10..=30_000)?),
                backoff_cap: Duration::from_millis(env.number(
                    "IMTICKET_STREAM_BACKOFF_CAP_MS",
                    600_000,
                    100..=86_400_000,
                )?),
                maintenance_interval: env.seconds("IMTICKET_STREAM_MAINTENANCE_SECONDS", 30, 1..=86_400)?,
                consumer_cleanup_idle: env.seconds(
                    "IMTICKET_STREAM_CONSUMER_CLEANUP_IDLE_SECONDS",
                    3600,
                    1..=604_800,
                )?,
                outbox_batch_size: env.number("IMTICKET_OUTBOX_BATCH_SIZE", 1000, 1..=10_000)?,
                outbox_retention: env.seconds("IMTICKET_OUTBOX_RETENTION_SECONDS", 86_400, 0..=31_536_000)?,
                processed_events_retention: env.seconds(
                    "IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS",
                    604_800,
                    60..=315_360_000,
                )?,
            },
            redis_key_prefix: env.key_prefix("IMTICKET_REDIS_KEY_PREFIX", DEFAULT_REDIS_KEY_PREFIX)?,
            bootstrap_admin,
        })
        .checked()
    }

    /// Checks that need several variables at once.
    fn checked(self) -> Result<Self, ConfigError> {
        // Pruning an event's record while its entry can still be redelivered would let the
        // redelivery take effect twice. The window is the consumer's own arithmetic
        // (`crate::retry`, which `ConsumerSettings::backoff` uses), not a second copy of it.
        let window = crate::retry::redelivery_window(
            self.stream_claim_idle,
            self.stream.backoff_cap,
            self.stream_max_deliveries,
        );
        if self.stream.processed_events_retention <= window {
            return Err(ConfigError::new(
                "IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS",
                format!(
                    "must be longer than the redelivery window of {} s (the reclaim back-offs of \
                     IMTICKET_STREAM_MAX_DELIVERIES deliveries, from IMTICKET_STREAM_CLAIM_IDLE_MS \
                     and IMTICKET_STREAM_BACKOFF_CAP_MS)",
                    window.as_secs()
                ),
            ));
        }
        Ok(self)
    }
}

/// What the operator CLI (`imticket-admin`) needs: where the servers are and how long to wait
/// for them. Read with the same names, defaults and checks as [`Config`], without what only
/// the services need (no `JWT_SECRET`; `DATABASE_URL` only for the commands that use it).
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    pub database_url: Option<SecretString>,
    pub redis_url: SecretString,
    pub redis_key_prefix: String,
    pub redis_timeout: Duration,
    pub db_acquire_timeout: Duration,
    /// A pending stream entry older than this is reported by `audit`.
    pub stream_claim_idle_ms: u64,
    /// The deployment's token key and lifetime, for `seed --tokens-out`; the error says why
    /// there is none (read as the services read it, but only needed by that command).
    pub tokens: Result<(SecretString, Duration), ConfigError>,
}

impl OperatorConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        Ok(Self {
            database_url: env.get("DATABASE_URL").map(SecretString::from),
            redis_url: env.redis_url(),
            redis_key_prefix: env.key_prefix("IMTICKET_REDIS_KEY_PREFIX", DEFAULT_REDIS_KEY_PREFIX)?,
            redis_timeout: env.redis_timeout()?,
            db_acquire_timeout: env.db_acquire_timeout()?,
            stream_claim_idle_ms: env.number("IMTICKET_STREAM_CLAIM_IDLE_MS", 30_000u64, 100..=86_400_000)?,
            tokens: env.environment().and_then(|e| env.jwt_secret(e)).and_then(|secret| {
                Ok((
                    SecretString::from(secret),
                    env.seconds("IMTICKET_JWT_TTL_SECONDS", 3600, 60..=86_400 * 30)?,
                ))
            }),
        })
    }
}

/// Parses a file of `NAME=value` lines (what `scripts/run.sh` writes to `.data/run.env`, and
/// the format of `.env`): blank lines and `#` comments are skipped, an `export ` prefix and
/// quotes around the value are allowed. The error names the first malformed line.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let valid_name = |name: &str| {
            name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let Some((name, value)) = line.split_once('=').filter(|(name, _)| valid_name(name.trim())) else {
            return Err(format!("line {}: expected NAME=value", n + 1));
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.push((name.trim().to_owned(), unquoted.to_owned()));
    }
    Ok(vars)
}

/// A server URL fit for messages: the password, if any, replaced by `***`.
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn environment(&self) -> Result<Environment, ConfigError> {
        match self.get("IMTICKET_ENV").as_deref() {
            None | Some("production") => Ok(Environment::Production),
            Some("development") => Ok(Environment::Development),
            Some(other) => Err(ConfigError::new(
                "IMTICKET_ENV",
                format!("expected `development` or `production`, got {other:?}"),
            )),
        }
    }

    /// `JWT_SECRET`, at least 32 bytes; in development the built-in one when unset.
    fn jwt_secret(&self, environment: Environment) -> Result<String, ConfigError> {
        match self.get("JWT_SECRET") {
            Some(secret) if secret.len() >= MIN_JWT_SECRET_BYTES => Ok(secret),
            Some(_) => Err(ConfigError::new(
                "JWT_SECRET",
                format!("must be at least {MIN_JWT_SECRET_BYTES} bytes long"),
            )),
            None if environment == Environment::Development => Ok(DEV_JWT_SECRET.to_owned()),
            None => Err(ConfigError::new(
                "JWT_SECRET",
                "is required in production (set IMTICKET_ENV=development to use a dev default)",
            )),
        }
    }

    /// A set, non-empty value; an empty variable counts as unset so `FOO=` means "default".
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    fn parsed<T: FromStr>(&self, name: &'static str, default: &str, expected: &str) -> Result<T, ConfigError> {
        let raw = self.get(name).unwrap_or_else(|| default.to_owned());
        raw.trim()
            .parse()
            .map_err(|_| ConfigError::new(name, format!("expected {expected}, got {raw:?}")))
    }

    fn number<T>(&self, name: &'static str, default: T, range: std::ops::RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        match raw.trim().parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(value),
            _ => Err(ConfigError::new(
                name,
                format!(
                    "expected a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// A Redis key prefix: up to 64 characters of `[A-Za-z0-9:_.-]`, so keys stay readable
    /// in `redis-cli` and cannot contain a hash tag that would pin every key to one slot.
    fn key_prefix(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let raw = (self.lookup)(name).unwrap_or_else(|| default.to_owned());
        let valid = raw.len() <= 64 && raw.chars().all(|c| c.is_ascii_alphanumeric() || ":_.-".contains(c));
        if valid {
            Ok(raw)
        } else {
            Err(ConfigError::new(
                name,
                format!("expected up to 64 characters of A-Z a-z 0-9 : _ . -, got {raw:?}"),
            ))
        }
    }

    fn redis_url(&self) -> SecretString {
        SecretString::from(self.get("REDIS_URL").unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned()))
    }

    fn redis_timeout(&self) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.number(
            "IMTICKET_REDIS_TIMEOUT_MS",
            2000,
            50..=60_000,
        )?))
    }

    fn db_acquire_timeout(&self) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.number(
            "IMTICKET_DB_ACQUIRE_TIMEOUT_MS",
            5000,
            100..=120_000,
        )?))
    }

    fn seconds(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://localhost/imticket");

    #[test]
    fn defaults_follow_the_contract() {
        let config = load(&[DB, ("IMTICKET_ENV", "development")]).unwrap();
        assert_eq!(config.hold_ttl, Duration::from_secs(300));
        assert_eq!(config.max_seats_per_reservation, 4);
        assert_eq!(config.stream_max_deliveries, 5);
        assert_eq!(config.stream_claim_idle, Duration::from_millis(30_000));
        assert_eq!(config.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.jwt_secret.expose_secret(), DEV_JWT_SECRET);
        assert!(config.bootstrap_admin.is_none());
    }

    #[test]
    fn production_requires_a_jwt_secret() {
        let err = load(&[DB]).unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        let err = load(&[DB, ("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        let ok = load(&[DB, ("JWT_SECRET", &"x".repeat(32))]).unwrap();
        assert_eq!(ok.environment, Environment::Production);
    }

    #[test]
    fn errors_name_the_variable_in_one_line() {
        let err = load(&[
            DB,
            ("IMTICKET_ENV", "development"),
            ("IMTICKET_HOLD_TTL_SECONDS", "soon"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "IMTICKET_HOLD_TTL_SECONDS");
        let line = err.to_string();
        assert!(
            line.contains("IMTICKET_HOLD_TTL_SECONDS") && line.contains("soon"),
            "{line}"
        );
        assert!(!line.contains('\n'));

        let err = load(&[
            DB,
            ("IMTICKET_ENV", "development"),
            ("IMTICKET_MAX_SEATS_PER_RESERVATION", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "IMTICKET_MAX_SEATS_PER_RESERVATION");
        let err = load(&[DB, ("IMTICKET_ENV", "development"), ("IMTICKET_HTTP_ADDR", "nowhere")]).unwrap_err();
        assert_eq!(err.var, "IMTICKET_HTTP_ADDR");
        let err = load(&[("IMTICKET_ENV", "development")]).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        let err = load(&[DB, ("IMTICKET_ENV", "staging")]).unwrap_err();
        assert_eq!(err.var, "IMTICKET_ENV");
    }

    #[test]
    fn processed_events_outlive_every_redelivery() {
        let dev = ("IMTICKET_ENV", "development");
        let config = load(&[DB, dev]).unwrap();
        assert_eq!(
            config.stream.processed_events_retention,
            Duration::from_secs(7 * 86_400)
        );
        // 30 + 60 + 120 + 240 + 480 s with the defaults.
        let window = crate::retry::redelivery_window(
            config.stream_claim_idle,
            config.stream.backoff_cap,
            config.stream_max_deliveries,
        );
        assert_eq!(window, Duration::from_secs(930));

        let err = load(&[DB, dev, ("IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS", "930")]).unwrap_err();
        assert_eq!(err.var, "IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS");
        assert!(err.to_string().contains("930 s"), "{err}");
        assert!(load(&[DB, dev, ("IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS", "931")]).is_ok());
        // A longer back-off cap widens the window: a retention that was enough no longer is.
        let err = load(&[
            DB,
            dev,
            ("IMTICKET_STREAM_MAX_DELIVERIES", "100"),
            ("IMTICKET_STREAM_BACKOFF_CAP_MS", "86400000"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS");
    }

    #[test]
    fn bootstrap_admin_needs_both_variables() {
        let dev = ("IMTICKET_ENV", "development");
        assert!(
            load(&[DB, dev, ("IMTICKET_BOOTSTRAP_ADMIN_EMAIL", "a@b.c")])
                .unwrap()
                .bootstrap_admin
                .is_none()
        );
        let both = load(&[
            DB,
            dev,
            ("IMTICKET_BOOTSTRAP_ADMIN_EMAIL", "a@b.c"),
            ("IMTICKET_BOOTSTRAP_ADMIN_PASSWORD", "secret-password"),
        ])
        .unwrap();
        assert_eq!(both.bootstrap_admin.unwrap().email, "a@b.c");
    }

    #[test]
    fn env_example_lists_every_variable_read() {
        let read = std::cell::RefCell::new(Vec::<String>::new());
        let _ = Config::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            match name {
                "DATABASE_URL" => Some("postgres://localhost/x".to_owned()),
                "IMTICKET_ENV" => Some("development".to_owned()),
                _ => None,
            }
        })
        .unwrap();
        let example = include_str!("../.env.example");
        let listed: Vec<&str> = example
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        for name in read.borrow().iter() {
            assert!(listed.contains(&name.as_str()), ".env.example is missing {name}");
        }
        assert!(read.borrow().len() >= 20, "{:?}", read.borrow());
    }

    #[test]
    fn the_operator_config_needs_no_secret_and_no_database() {
        let config = OperatorConfig::from_lookup(|_| None).unwrap();
        assert!(config.database_url.is_none());
        assert_eq!(config.redis_url.expose_secret(), DEFAULT_REDIS_URL);
        assert_eq!(config.redis_key_prefix, "imticket:");
        assert_eq!(config.redis_timeout, Duration::from_millis(2000));
        let err = OperatorConfig::from_lookup(|name| (name == "IMTICKET_REDIS_TIMEOUT_MS").then(|| "soon".to_owned()))
            .unwrap_err();
        assert_eq!(err.var, "IMTICKET_REDIS_TIMEOUT_MS");
    }

    #[test]
    fn env_files_are_name_value_lines() {
        let vars = parse_env_file(
            "# written by scripts/run.sh\n\nDATABASE_URL=postgres://p@h:1/db?x=1\nexport REDIS_URL=\"redis://h:2\"\nEMPTY=\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                ("DATABASE_URL".to_owned(), "postgres://p@h:1/db?x=1".to_owned()),
                ("REDIS_URL".to_owned(), "redis://h:2".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            parse_env_file("A=1\nnot a setting\n").unwrap_err(),
            "line 2: expected NAME=value"
        );
        assert_eq!(parse_env_file("=1").unwrap_err(), "line 1: expected NAME=value");
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            url_without_password("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(
            url_without_password("postgres://app:p@ss@db:5432/x?sslmode=require"),
            "postgres://app:***@db:5432/x?sslmode=require"
        );
        assert_eq!(url_without_password("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(
            url_without_password("redis://127.0.0.1:56379"),
            "redis://127.0.0.1:56379"
        );
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let config = load(&[DB, ("JWT_SECRET", &"s3cr3t-value-".repeat(4))]).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cr3t-value"));
        assert!(!printed.contains("postgres://localhost/imticket"));
    }
}
