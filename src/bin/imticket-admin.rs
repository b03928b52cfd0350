//! `imticket-admin`: the operator CLI. The commands live in `src/admin/`, one file per group.

use std::process::ExitCode;

use clap::Parser;
use imticket::admin::{Command, Globals};

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
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    imticket::admin::main(cli.globals, cli.command).await
}
