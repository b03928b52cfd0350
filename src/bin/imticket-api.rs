//! `imticket-api`: the HTTP API. Stateless; run as many copies as needed.

use std::process::ExitCode;

use imticket::config::Config;
use imticket::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::from_env_or_exit("imticket-api");
    // Workers read the same configuration without a key; the API signs tokens and needs one.
    if let Err(err) = config.auth.signing_secret() {
        eprintln!("imticket-api: {err}");
        return ExitCode::from(2);
    }
    imticket::telemetry::init("imticket-api", &config);
    let result = run(config).await;
    // The spans still queued for OTLP (none when traces are off).
    imticket::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error.cause_chain = ?err, "imticket-api failed");
            eprintln!("imticket-api: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = imticket::shutdown::signals()?;
    Application::build(config).await?.run_until_stopped(shutdown).await
}
