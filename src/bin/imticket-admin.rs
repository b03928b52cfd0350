//! `imticket-admin`: the operator CLI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use imticket::admin::{Admin, concert_id, dead_letter_id};
use imticket::config::{OperatorConfig, parse_env_file, url_without_password};
use imticket::infra::redis::keys::Keys;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Written by `scripts/run.sh` while it runs: the addresses of its PostgreSQL and Redis.
const RUN_ENV_FILE: &str = ".data/run.env";

#[derive(Parser)]
#[command(
    name = "imticket-admin",
    version,
    about = "Operator commands for ImTicket",
    after_help = "Settings (DATABASE_URL, REDIS_URL, IMTICKET_REDIS_KEY_PREFIX, IMTICKET_REDIS_TIMEOUT_MS, \
                  IMTICKET_DB_ACQUIRE_TIMEOUT_MS): the command-line options win, then the environment, \
                  then the env file (--env-file, else ./.data/run.env, written by scripts/run.sh)."
)]
struct Cli {
    /// File of NAME=value settings read under the environment [default: ./.data/run.env when present]
    #[arg(long, env = "IMTICKET_ENV_FILE", global = true)]
    env_file: Option<PathBuf>,
    /// PostgreSQL URL (migrate, outbox, seed) [default: DATABASE_URL]
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Redis URL (streams, dlq, queue) [default: REDIS_URL, else redis://127.0.0.1:6379]
    #[arg(long, global = true)]
    redis_url: Option<String>,
    /// Prefix of the deployment's Redis keys [default: IMTICKET_REDIS_KEY_PREFIX, else imticket:]
    #[arg(long, global = true)]
    key_prefix: Option<String>,
    /// JSON output for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations (the API also does this at start).
    Migrate,
    /// Every stream: length, first/last id, groups (lag, pending) and consumers (idle time).
    Streams,
    /// The dead-letter stream.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Check the invariants (I1–I5) on the live system; each violation printed, exit 1 if any.
    Audit,
    /// The transactional outbox.
    #[command(subcommand)]
    Outbox(Outbox),
    /// Waiting rooms: open lines and their counts.
    #[command(subcommand)]
    Queue(Queue),
    /// Create demo data fast: concerts, schedules with seats, users with points.
    Seed(imticket::seed::SeedPlan),
}

#[derive(Subcommand)]
enum Dlq {
    /// Dead letters, oldest first.
    List {
        /// Only those from this stream (logical name like `payments`, or the key).
        #[arg(long)]
        stream: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One dead letter with every field of its original entry.
    Show { id: String },
    /// Publish dead letters to their source stream again (a fresh entry, the same event_id).
    #[command(
        override_usage = "imticket-admin dlq replay <ID>\n       imticket-admin dlq replay --all [--stream <STREAM>]"
    )]
    Replay(Replay),
    /// Delete dead letters (all, or one stream's). Needs --yes.
    Purge {
        #[arg(long)]
        stream: Option<String>,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

/// One dead letter, or `--all` (optionally of one `--stream`).
#[derive(Args)]
struct Replay {
    /// The dead letter's id.
    #[arg(required_unless_present = "all", conflicts_with_all = ["all", "stream"])]
    id: Option<String>,
    /// Every dead letter (with --stream: of that stream).
    #[arg(long)]
    all: bool,
    /// With --all: only the dead letters of this stream (logical name like `payments`, or the key).
    #[arg(long)]
    stream: Option<String>,
}

#[derive(Subcommand)]
enum Queue {
    /// Every open line: waiting, pre-queue, active, admitted in the last minute, sold out, opening.
    List,
    /// The same for one concert (also when it has no open line).
    Stats { concert_id: String },
}

#[derive(Subcommand)]
enum Outbox {
    /// Unpublished events, the oldest one's age, and retained published rows.
    Status,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(output) if output.is_empty() => ExitCode::SUCCESS,
        Ok(output) => {
            use std::io::Write as _;
            // Not println!: it panics when the reader has gone (`imticket-admin streams | head`).
            match writeln!(std::io::stdout().lock(), "{output}") {
                Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("imticket-admin: write output: {err}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(err) => {
            eprintln!("imticket-admin: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Settings with where each came from, for error messages ("REDIS_URL from .data/run.env").
struct Settings {
    config: OperatorConfig,
    origins: HashMap<&'static str, String>,
}

impl Settings {
    /// Command-line options, then the process environment, then the env file.
    fn load(cli: &Cli) -> anyhow::Result<Self> {
        let file = match &cli.env_file {
            Some(path) => Some(read_env_file(path)?),
            None if Path::new(RUN_ENV_FILE).is_file() => Some(read_env_file(Path::new(RUN_ENV_FILE))?),
            None => None,
        };
        let file_name = cli
            .env_file
            .as_deref()
            .unwrap_or(Path::new(RUN_ENV_FILE))
            .display()
            .to_string();
        let flag = |name: &str| match name {
            "DATABASE_URL" => cli
                .database_url
                .as_ref()
                .map(|v| (v.clone(), "--database-url".to_owned())),
            "REDIS_URL" => cli.redis_url.as_ref().map(|v| (v.clone(), "--redis-url".to_owned())),
            "IMTICKET_REDIS_KEY_PREFIX" => cli.key_prefix.as_ref().map(|v| (v.clone(), "--key-prefix".to_owned())),
            _ => None,
        };
        let lookup = |name: &str| -> Option<(String, String)> {
            flag(name)
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
        let config = OperatorConfig::from_lookup(|name| lookup(name).map(|(value, _)| value))?;
        let origins = ["DATABASE_URL", "REDIS_URL"]
            .into_iter()
            .map(|name| {
                let origin = lookup(name).map_or_else(|| format!("{name} not set"), |(_, origin)| origin);
                (name, origin)
            })
            .collect();
        Ok(Self { config, origins })
    }

    fn origin(&self, name: &str) -> &str {
        self.origins.get(name).map_or("", String::as_str)
    }
}

fn read_env_file(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("env file {}", path.display()))?;
    let vars = parse_env_file(&text).map_err(|err| anyhow::anyhow!("env file {}: {err}", path.display()))?;
    Ok(vars.into_iter().collect())
}

/// Connects and PINGs within `IMTICKET_REDIS_TIMEOUT_MS`; later commands have the same
/// response timeout, so an unreachable Redis is one error line, never a silent wait.
async fn connect_redis(settings: &Settings) -> anyhow::Result<imticket::infra::redis::Redis> {
    let config = &settings.config;
    let redis = imticket::infra::redis::Redis::new(&config.redis_url, config.redis_timeout)?;
    let connected = async {
        redis.ping().await?;
        redis.connection().await
    };
    connected.await.map(|_| redis).with_context(|| {
        format!(
            "cannot reach Redis at {} ({}) within {} ms",
            url_without_password(config.redis_url.expose_secret()),
            settings.origin("REDIS_URL"),
            config.redis_timeout.as_millis()
        )
    })
}

/// One connection within `IMTICKET_DB_ACQUIRE_TIMEOUT_MS`, or one error line.
async fn connect_db(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    let config = &settings.config;
    let url: &SecretString = config
        .database_url
        .as_ref()
        .context("DATABASE_URL: is required for this command but not set (nor in --env-file or ./.data/run.env)")?;
    let options: PgConnectOptions = url
        .expose_secret()
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    let timeout = config.db_acquire_timeout;
    let connect = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(timeout)
        .connect_with(options.application_name("imticket-admin"));
    // The pool's own timeout covers the connect too; this bounds anything it might not.
    let connected = tokio::time::timeout(timeout + Duration::from_millis(500), connect)
        .await
        .context("timed out")
        .and_then(|pool| Ok(pool?));
    connected.with_context(|| {
        format!(
            "cannot reach PostgreSQL at {} ({}) within {} ms",
            url_without_password(url.expose_secret()),
            settings.origin("DATABASE_URL"),
            timeout.as_millis()
        )
    })
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    let settings = Settings::load(&cli)?;
    // A malformed id is refused before anything is contacted.
    match &cli.command {
        Command::Dlq(Dlq::Show { id }) | Command::Dlq(Dlq::Replay(Replay { id: Some(id), .. })) => {
            dead_letter_id(id)?;
        }
        Command::Queue(Queue::Stats { concert_id: id }) => {
            concert_id(id)?;
        }
        _ => {}
    }
    let redis = match cli.command {
        Command::Streams | Command::Dlq(_) | Command::Queue(_) | Command::Audit => {
            Some(connect_redis(&settings).await?)
        }
        _ => None,
    };
    let db = match cli.command {
        Command::Migrate | Command::Outbox(_) | Command::Seed(_) | Command::Audit => Some(connect_db(&settings).await?),
        _ => None,
    };
    let mut admin = Admin {
        keys: Keys::new(settings.config.redis_key_prefix.clone()),
        redis,
        db,
        json: cli.json,
    };
    match cli.command {
        Command::Migrate => {
            let pool = admin.db.as_ref().context("no database")?;
            let before = applied(pool).await?;
            imticket::infra::postgres::migrate(pool).await?;
            let after = applied(pool).await?;
            Ok(format!(
                "migrations: {} applied now, {} in total",
                after - before,
                after
            ))
        }
        Command::Streams => admin.streams().await,
        Command::Dlq(Dlq::List { stream, limit }) => admin.dlq_list(stream.as_deref(), limit).await,
        Command::Dlq(Dlq::Show { id }) => admin.dlq_show(&id).await,
        Command::Dlq(Dlq::Replay(Replay { id, all: _, stream })) => {
            admin.dlq_replay(id.as_deref(), stream.as_deref()).await
        }
        Command::Dlq(Dlq::Purge { stream, yes }) => {
            anyhow::ensure!(yes, "refusing to delete dead letters without --yes");
            admin.dlq_purge(stream.as_deref()).await
        }
        Command::Outbox(Outbox::Status) => admin.outbox_status().await,
        Command::Audit => admin.audit(settings.config.stream_claim_idle_ms).await,
        Command::Queue(Queue::List) => admin.queue_list().await,
        Command::Queue(Queue::Stats { concert_id: id }) => admin.queue_stats(concert_id(&id)?).await,
        Command::Seed(plan) => {
            let pool = admin.db.as_ref().context("no database")?;
            imticket::infra::postgres::migrate(pool).await?;
            let r = imticket::seed::seed(pool, &plan).await?;
            if let Some(path) = &plan.tokens_out {
                let (secret, ttl) = settings
                    .config
                    .tokens
                    .as_ref()
                    .map_err(|e| anyhow::anyhow!("--tokens-out: {e}"))?;
                let tokens = imticket::app::tokens::TokenService::new(secret, *ttl);
                let fans = r
                    .fans
                    .iter()
                    .map(|(id, email)| {
                        let token = tokens
                            .issue(*id, imticket::domain::user::Role::User)
                            .map_err(|e| anyhow::anyhow!("mint a token: {e:?}"))?;
                        Ok(serde_json::json!({"user_id": id, "email": email, "access_token": token.access_token}))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                std::fs::write(path, serde_json::to_vec(&fans)?)
                    .with_context(|| format!("write {}", path.display()))?;
            }
            Ok(if admin.json {
                serde_json::json!({"concerts": r.concerts, "schedules": r.schedules, "seats": r.seats, "users": r.users, "seconds": r.seconds}).to_string()
            } else {
                format!(
                    "seeded {} concerts, {} schedules, {} seats, {} users in {:.1}s",
                    r.concerts, r.schedules, r.seats, r.users, r.seconds
                )
            })
        }
    }
}

/// Count of applied migrations. Runtime query: `_sqlx_migrations` may not exist yet.
async fn applied(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(0);
    }
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?,
    )
}
