//! `imticket-worker <role>…`: a standalone worker process. Roles: seat-creation, payment,
//! expiry, expiry-scheduler, queue-promoter, outbox-relay, or `all`.

use std::process::ExitCode;

use clap::Parser;
use imticket::config::Config;
use imticket::worker::Role;

#[derive(Parser)]
#[command(name = "imticket-worker", version, about = "Runs ImTicket's background roles")]
struct Cli {
    /// The roles this process runs.
    #[arg(required = true, value_enum)]
    roles: Vec<Role>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::from_env_or_exit("imticket-worker");
    if let Err(err) = imticket::worker::resolve_roles(&cli.roles) {
        eprintln!("imticket-worker: {err}");
        return ExitCode::from(2);
    }
    imticket::telemetry::init("imticket-worker", &config);
    let result = async {
        let shutdown = imticket::shutdown::on_signal()?;
        imticket::worker::run(config, cli.roles, shutdown).await
    }
    .await;
    // The spans still queued for OTLP (none when traces are off).
    imticket::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error.cause_chain = ?err, "imticket-worker failed");
            eprintln!("imticket-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}
