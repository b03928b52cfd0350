//! `imticket-admin`: the operator CLI.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use imticket::admin::Admin;
use imticket::keys::Keys;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgPoolOptions;

#[derive(Parser)]
#[command(name = "imticket-admin", version, about = "Operator commands for ImTicket")]
struct Cli {
    /// PostgreSQL URL (migrate, outbox).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<SecretString>,
    /// Redis URL (streams, dlq).
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        global = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: SecretString,
    /// Prefix of the deployment's Redis keys.
    #[arg(long, env = "IMTICKET_REDIS_KEY_PREFIX", global = true, default_value = "imticket:")]
    key_prefix: String,
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
    /// The transactional outbox.
    #[command(subcommand)]
    Outbox(Outbox),
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

#[derive(Args)]
#[group(required = true, multiple = false, id = "which")]
struct Replay {
    /// The dead letter's id.
    id: Option<String>,
    /// Every dead letter (with --stream: of that stream).
    #[arg(long)]
    all: bool,
    #[arg(long, requires = "all")]
    stream: Option<String>,
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
        Ok(output) => {
            if !output.is_empty() {
                println!("{output}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("imticket-admin: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn connect_db(url: Option<&SecretString>) -> anyhow::Result<sqlx::PgPool> {
    let url = url.context("DATABASE_URL: is required but not set")?;
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url.expose_secret())
        .await
        .context("connect to PostgreSQL")
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    let needs_redis = matches!(cli.command, Command::Streams | Command::Dlq(_));
    let redis = if needs_redis {
        let client =
            redis::Client::open(cli.redis_url.expose_secret()).context("REDIS_URL is not a valid Redis URL")?;
        Some(
            redis::aio::ConnectionManager::new(client)
                .await
                .context("connect to Redis")?,
        )
    } else {
        None
    };
    let db = match cli.command {
        Command::Migrate | Command::Outbox(_) | Command::Seed(_) => Some(connect_db(cli.database_url.as_ref()).await?),
        _ => None,
    };
    let mut admin = Admin {
        keys: Keys::new(cli.key_prefix),
        redis,
        db,
        json: cli.json,
    };
    match cli.command {
        Command::Migrate => {
            let pool = admin.db.as_ref().context("no database")?;
            let before = applied(pool).await?;
            imticket::infra::db::migrate(pool).await?;
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
        Command::Seed(plan) => {
            let pool = admin.db.as_ref().context("no database")?;
            imticket::infra::db::migrate(pool).await?;
            let r = imticket::seed::seed(pool, &plan).await?;
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
