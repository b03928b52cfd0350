//! `imticket-probe`: one consumer of any stream with a diagnostic handler, run until
//! SIGTERM/SIGINT, the way a worker role runs (the consumer plus its stream's housekeeping).
//! Not shipped: it is the real process the crash tests (tests/backbone) start and kill.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use imticket::config::Config;
use imticket::stream::Subscription;
use imticket::stream::probe::{NoopHandler, ProbeHandler};

#[derive(Clone, Copy, ValueEnum)]
enum HandlerKind {
    /// Acks everything.
    Noop,
    /// processed-events insert + one effect row per event, one transaction per batch.
    Probe,
}

#[derive(Parser)]
#[command(name = "imticket-probe", about = "A probe consumer for the crash tests")]
struct Cli {
    #[arg(long)]
    stream_key: String,
    #[arg(long)]
    group: String,
    #[arg(long, value_enum)]
    handler: HandlerKind,
    /// Simulated work per handler call.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::from_env_or_exit("imticket-probe");
    imticket::telemetry::init("imticket-probe", &config);
    match run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("imticket-probe: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let deps = imticket::root::deps(config)?;
    let streams = imticket::root::stream_runtime(&deps);
    let shutdown = imticket::shutdown::on_signal()?;
    let mut tasks = tokio::task::JoinSet::new();
    match cli.handler {
        HandlerKind::Noop => streams.spawn(
            &mut tasks,
            Subscription::custom(cli.stream_key, cli.group, NoopHandler),
            shutdown,
        ),
        HandlerKind::Probe => {
            ProbeHandler::install(&deps.db).await?;
            let probe = ProbeHandler::new(deps.db.clone(), &cli.group, Duration::from_millis(cli.delay_ms));
            streams.spawn(
                &mut tasks,
                Subscription::custom(cli.stream_key, cli.group, probe),
                shutdown,
            )
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.context("consumer task")?;
    }
    Ok(())
}
