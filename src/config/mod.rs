//! The one typed configuration, read once from the environment and passed explicitly, in one
//! section per concern: [`HttpSettings`], [`DatabaseSettings`], [`RedisSettings`],
//! [`AuthSettings`], [`BookingSettings`], [`WaitingRoomSettings`], [`CacheSettings`],
//! [`StreamSettings`], [`WorkerSettings`], [`RateLimitSettings`]. Each section reads its own variables (one file
//! each) and builds what it configures.
//!
//! Every variable, its default and its meaning is listed in `.env.example`, in the same
//! sections. A missing or invalid value is a [`ConfigError`] whose `Display` is a single line
//! naming the variable; the binaries print it and exit with status 2. An `IMTICKET_*` variable
//! that nothing reads is warned about at start ([`Config::warn_unread`]).

pub mod auth;
pub mod booking;
pub mod cache;
pub mod database;
pub mod env;
pub mod http;
pub mod listen;
pub mod notifications;
pub mod rate_limits;
pub mod redis;
pub mod streams;
pub mod telemetry;
pub mod waiting_room;
pub mod worker;

use std::time::Duration;

pub use auth::{AuthSettings, BootstrapAdmin};
pub use booking::BookingSettings;
pub use cache::CacheSettings;
pub use database::{DatabaseSettings, Pooler};
pub use env::{ConfigError, Environment, parse_env_file, url_without_password};
pub use http::HttpSettings;
pub use listen::PortRange;
pub use rate_limits::RateLimitSettings;
pub use redis::RedisSettings;
pub use streams::{ConsumerSettings, MaintenanceSettings, RelaySettings, StreamSettings};
pub use telemetry::TelemetrySettings;
pub use waiting_room::WaitingRoomSettings;
pub use worker::WorkerSettings;

use env::Env;

/// How log lines are written (`IMTICKET_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `IMTICKET_ENV`: `development` allows the built-in dev `JWT_SECRET`.
    pub environment: Environment,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub booking: BookingSettings,
    pub waiting_room: WaitingRoomSettings,
    pub cache: CacheSettings,
    pub streams: StreamSettings,
    pub worker: WorkerSettings,
    pub rate_limits: RateLimitSettings,
    pub telemetry: TelemetrySettings,
    pub notifications: notifications::NotificationSettings,
    /// `IMTICKET_SHUTDOWN_TIMEOUT_SECONDS`: how long in-flight requests and handlers may take
    /// to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    /// `IMTICKET_METRICS_TARGETS_DIR`: where each process writes a Prometheus file-discovery
    /// target (`<service>-<pid>.json`) for its metrics address while it runs.
    pub metrics_targets_dir: Option<std::path::PathBuf>,
    /// `IMTICKET_*` variables that were set but that nothing reads, each with the closest name
    /// that is read (a likely typo).
    pub unread: Vec<(String, Option<String>)>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let present: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        Self::read(|name| std::env::var(name).ok(), present.iter().map(String::as_str))
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
        Self::read(lookup, [])
    }

    /// Reads through `lookup`; `present` are the names set (to report the `IMTICKET_*` ones
    /// that nothing reads).
    pub fn read<'a>(
        lookup: impl Fn(&str) -> Option<String>,
        present: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let environment = environment(&env)?;
        let mut config = Self {
            environment,
            http: HttpSettings::read(&env)?,
            database: DatabaseSettings::read(&env)?,
            redis: RedisSettings::read(&env)?,
            auth: AuthSettings::read(&env, environment)?,
            booking: BookingSettings::read(&env)?,
            waiting_room: WaitingRoomSettings::read(&env)?,
            cache: CacheSettings::read(&env)?,
            streams: StreamSettings::read(&env)?,
            worker: WorkerSettings::read(&env)?,
            rate_limits: RateLimitSettings::read(&env)?,
            telemetry: TelemetrySettings::read(&env)?,
            notifications: notifications::NotificationSettings::read(&env)?,
            shutdown_timeout: env.seconds("IMTICKET_SHUTDOWN_TIMEOUT_SECONDS", 30, 1..=3600)?,
            log_format: match env.choice("IMTICKET_LOG_FORMAT", "text", &["text", "json"])? {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
            metrics_targets_dir: http::metrics_targets_dir(&env),
            unread: Vec::new(),
        };
        config.unread = env::unread_variables(present, &env.asked());
        Ok(config)
    }

    /// Logs a warning for each `IMTICKET_*` variable that nothing reads (call after
    /// telemetry is installed).
    pub fn warn_unread(&self) {
        for (name, closest) in &self.unread {
            match closest {
                Some(known) => {
                    tracing::warn!(variable = %name, did_you_mean = %known, "{name} is set but nothing reads it; did you mean {known}?")
                }
                None => tracing::warn!(variable = %name, "{name} is set but nothing reads it (see .env.example)"),
            }
        }
    }
}

/// `IMTICKET_ENV`: `production` unless set to `development`.
pub(crate) fn environment(env: &Env) -> Result<Environment, ConfigError> {
    match env.choice("IMTICKET_ENV", "production", &["development", "production"])? {
        "development" => Ok(Environment::Development),
        _ => Ok(Environment::Production),
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
        assert_eq!(config.booking.hold_ttl, Duration::from_secs(300));
        assert_eq!(config.booking.max_seats_per_reservation, 4);
        assert_eq!(config.streams.max_deliveries, 5);
        assert_eq!(config.streams.claim_idle, Duration::from_millis(30_000));
        assert_eq!(config.http.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            config.auth.signing_secret().unwrap().expose_secret(),
            auth::DEV_JWT_SECRET
        );
        assert!(config.auth.bootstrap_admin.is_none());
        assert_eq!(config.log_format, LogFormat::Text);
        let admission = config.waiting_room.admission();
        assert_eq!(
            (admission.capacity, admission.per_second, admission.active_ttl_ms),
            (1000, 100, 600_000)
        );
    }

    #[test]
    fn production_requires_a_jwt_secret_of_whoever_signs() {
        // A worker signs nothing: it reads the configuration without one.
        let worker = load(&[DB]).unwrap();
        assert_eq!(worker.auth.signing_secret().unwrap_err().var, "JWT_SECRET");
        let short = load(&[DB, ("JWT_SECRET", "short")]).unwrap();
        assert_eq!(short.auth.signing_secret().unwrap_err().var, "JWT_SECRET");
        let ok = load(&[DB, ("JWT_SECRET", &"x".repeat(32))]).unwrap();
        assert_eq!(ok.environment, Environment::Production);
        assert!(ok.auth.signing_secret().is_ok());
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
    fn the_pooler_is_postgresql_itself_unless_told() {
        assert_eq!(load(&[DB]).unwrap().database.pooler, Pooler::None);
        let behind = load(&[DB, ("IMTICKET_DB_POOLER", "transaction")]).unwrap();
        assert_eq!(behind.database.pooler, Pooler::Transaction);
        let err = load(&[DB, ("IMTICKET_DB_POOLER", "pgbouncer")]).unwrap_err();
        assert_eq!(err.var, "IMTICKET_DB_POOLER");
        assert!(err.to_string().contains("`none` or `transaction`"), "{err}");
    }

    #[test]
    fn processed_events_outlive_every_redelivery() {
        let dev = ("IMTICKET_ENV", "development");
        let config = load(&[DB, dev]).unwrap();
        assert_eq!(
            config.streams.processed_events_retention,
            Duration::from_secs(7 * 86_400)
        );
        // 30 + 60 + 120 + 240 + 480 s with the defaults.
        assert_eq!(config.streams.redelivery_window(), Duration::from_secs(930));
        assert_eq!(config.streams.consumer().redelivery_window(), Duration::from_secs(930));

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
                .auth
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
        assert_eq!(both.auth.bootstrap_admin.unwrap().email, "a@b.c");
    }

    #[test]
    fn env_example_lists_every_variable_read_and_nothing_else() {
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
        let example = include_str!("../../.env.example");
        let listed: Vec<&str> = example
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        for name in read.borrow().iter() {
            assert!(listed.contains(&name.as_str()), ".env.example is missing {name}");
        }
        for name in &listed {
            assert!(
                read.borrow().iter().any(|r| r == name) || *name == "RUST_LOG",
                ".env.example lists {name}, which nothing reads"
            );
        }
        assert!(read.borrow().len() >= 20, "{:?}", read.borrow());
    }

    #[test]
    fn a_variable_nothing_reads_is_reported_with_the_likely_one() {
        let vars = [
            DB,
            ("IMTICKET_ENV", "development"),
            ("IMTICKET_HOLD_TTL_SECOND", "5"),
            ("IMTICKET_PG_PORT", "55432"),
        ];
        let map: HashMap<&str, &str> = vars.into_iter().collect();
        let config = Config::read(|name| map.get(name).map(|v| (*v).to_owned()), map.keys().copied()).unwrap();
        assert_eq!(
            config.unread,
            vec![(
                "IMTICKET_HOLD_TTL_SECOND".to_owned(),
                Some("IMTICKET_HOLD_TTL_SECONDS".to_owned())
            )]
        );
        assert_eq!(
            config.booking.hold_ttl,
            Duration::from_secs(300),
            "the typo changed nothing"
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
