//! `imticket-bench`: measures the event backbone, the catalog's HTTP latency, the waiting room
//! and booking (docs/PERFORMANCE.md, driven by `scripts/bench*.sh`). Reads the same environment
//! as the product's binaries. One module per area; each subcommand is one function there.

mod backbone;
mod booking;
mod catalog;
mod chaos;
mod console;
mod load;
mod onsale;
mod queue;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use imticket::config::Config;

#[derive(Parser)]
#[command(name = "imticket-bench", about = "Benchmarks and load generator for ImTicket")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Produce(backbone::Produce),
    ConsumeRate(backbone::ConsumeRate),
    RelayRate(backbone::RelayRate),
    PruneProcessed(backbone::PruneProcessed),
    SeatInsert(catalog::SeatInsert),
    HttpLatency(catalog::HttpLatency),
    HttpLoad(queue::HttpLoad),
    QueueJoin(queue::QueueJoin),
    QueueStatus(queue::QueueStatus),
    QueueOpen(queue::QueueOpen),
    QueueEvalshaArgs(queue::QueueEvalshaArgs),
    BookingFans(booking::BookingFans),
    BookingHolds(booking::holds::BookingHolds),
    BookingCharge(booking::pay::BookingCharge),
    BookingPay(booking::pay::BookingPay),
    BookingFlow(booking::pay::BookingFlow),
    ChaosLoad(chaos::ChaosLoad),
    ChaosCheck(chaos::ChaosCheck),
    ConsoleFill(console::ConsoleFill),
    Onsale(onsale::Onsale),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::from_env_or_exit("imticket-bench");
    imticket::telemetry::init("imticket-bench", &config);
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("imticket-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let deps = imticket::root::deps(config)?;
    match command {
        Command::Produce(args) => backbone::produce(&deps, &args).await,
        Command::ConsumeRate(args) => backbone::consume_rate(&deps, &args).await,
        Command::RelayRate(args) => backbone::relay_rate(&deps, &args).await,
        Command::PruneProcessed(args) => backbone::prune_processed(&deps, &args).await,
        Command::SeatInsert(args) => catalog::seat_insert(&deps, &args).await,
        Command::HttpLatency(args) => catalog::http_latency(args).await,
        Command::HttpLoad(args) => queue::http_load(&args).await,
        Command::QueueJoin(args) => queue::join(&deps, &args).await,
        Command::QueueStatus(args) => queue::status(&deps, &args).await,
        Command::QueueOpen(args) => queue::open(&deps, &args).await,
        Command::QueueEvalshaArgs(args) => queue::evalsha_args(&deps, &args),
        Command::BookingFans(args) => booking::fans(&deps, &args).await,
        Command::BookingHolds(args) => booking::holds::holds(&deps, &args).await,
        Command::BookingCharge(args) => booking::pay::charge(&args).await,
        Command::BookingPay(args) => booking::pay::pay(&deps, &args).await,
        Command::BookingFlow(args) => booking::pay::flow(&deps, &args).await,
        Command::ChaosLoad(args) => chaos::load(&deps, &args).await,
        Command::ChaosCheck(args) => chaos::check(&deps, &args).await,
        Command::Onsale(args) => onsale::onsale(&deps, &args).await,
        Command::ConsoleFill(args) => console::fill(&deps, &args).await,
    }
}
