//! `imticket-admin`, the operator CLI: one file per command group, each saying which
//! connections it needs ([`Needs`]) and doing its work with them ([`Run`]); tables by default,
//! JSON with `--json`. The binary holds only the clap definitions and calls [`main`].
//!
//! Adding a command: a file here with its clap arguments and a [`Run`] impl, and one line in
//! [`commands!`] below.

mod audit;
mod command;
mod dlq;
mod migrate;
mod outbox;
mod queue;
mod report;
mod seed;
mod settings;
mod streams;
mod users;
mod venues;
mod webhooks;

use std::process::ExitCode;

use crate::infra::redis::keys::Keys;
use command::Run;
pub use command::{Context, Needs};
pub use settings::{AdminSettings, Globals};

/// The command enum and its dispatch from one list: each line is a variant (with its doc
/// comment and clap attributes) and the type that runs it.
macro_rules! commands {
    ($( $(#[$meta:meta])* $name:ident($ty:ty), )*) => {
        #[derive(clap::Subcommand)]
        pub enum Command {
            $( $(#[$meta])* $name($ty), )*
        }

        impl Command {
            fn needs(&self) -> Needs {
                match self { $( Command::$name(c) => c.needs(), )* }
            }

            fn check(&self) -> anyhow::Result<()> {
                match self { $( Command::$name(c) => c.check(), )* }
            }

            async fn run(self, cx: &Context) -> anyhow::Result<String> {
                match self { $( Command::$name(c) => c.run(cx).await, )* }
            }
        }
    };
}

commands! {
    /// Apply pending database migrations (the API also does this at start).
    Migrate(migrate::Migrate),
    /// Every stream: length, first/last id, groups (lag, pending) and consumers (idle time).
    Streams(streams::Streams),
    /// The dead-letter stream.
    #[command(subcommand)]
    Dlq(dlq::Dlq),
    /// Check the invariants (I1–I5) on the live system; each violation printed, exit 1 if any.
    Audit(audit::Audit),
    /// The transactional outbox.
    #[command(subcommand)]
    Outbox(outbox::Outbox),
    /// Waiting rooms: open lines and their counts.
    #[command(subcommand)]
    Queue(queue::Queue),
    /// Create demo data fast: concerts, schedules with seats, users with points.
    Seed(seed::Seed),
    /// Sales statistics per concert and settlement per day (as `/admin/reports…`).
    #[command(subcommand)]
    Report(report::Report),
    /// Webhook endpoints and their delivery log (as `/admin/webhooks…`).
    #[command(subcommand)]
    Webhooks(webhooks::Webhooks),
    /// Accounts' roles: who may use the operator console (`/console`).
    #[command(subcommand)]
    Users(users::Users),
    #[command(subcommand)]
    Venues(venues::Venues),
    #[command(subcommand)]
    Plans(venues::Plans),
}

/// Runs `command`: settings, the connections it needs, the work. Prints the output (or the
/// error, one line) and answers the exit status: 0, or 1 on any error.
pub async fn main(globals: Globals, command: Command) -> ExitCode {
    match run(globals, command).await {
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

async fn run(globals: Globals, command: Command) -> anyhow::Result<String> {
    let settings = AdminSettings::load(&globals)?;
    command.check()?;
    let needs = command.needs();
    let redis = match needs.redis {
        true => Some(settings.connect_redis().await?),
        false => None,
    };
    let db = match needs.database {
        true => Some(settings.connect_db().await?),
        false => None,
    };
    let cx = Context {
        keys: Keys::new(settings.redis.key_prefix.clone()).with_partitions(settings.redis.stream_partitions),
        json: globals.json,
        settings,
        redis,
        db,
    };
    command.run(&cx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_says_what_it_needs() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            globals: Globals,
            #[command(subcommand)]
            command: Command,
        }
        let needs = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("imticket-admin").chain(args.iter().copied())).unwrap();
            cli.command.needs()
        };
        assert_eq!(needs(&["migrate"]), Needs::DATABASE);
        assert_eq!(needs(&["streams"]), Needs::REDIS);
        assert_eq!(needs(&["dlq", "list"]), Needs::REDIS);
        assert_eq!(needs(&["audit"]), Needs::BOTH);
        assert_eq!(needs(&["outbox", "status"]), Needs::DATABASE);
        assert_eq!(needs(&["queue", "list"]), Needs::REDIS);
        assert_eq!(needs(&["seed", "--concerts", "1"]), Needs::DATABASE);
        assert_eq!(needs(&["webhooks", "list"]), Needs::DATABASE);
        assert_eq!(needs(&["venues", "list"]), Needs::DATABASE);
        assert_eq!(needs(&["users", "role", "a@b.c", "viewer"]), Needs::DATABASE);
        assert_eq!(needs(&["plans", "show", "x", "1"]), Needs::DATABASE);
        let bad = Cli::try_parse_from(["imticket-admin", "dlq", "show", "nope"]).unwrap();
        assert!(
            bad.command
                .check()
                .unwrap_err()
                .to_string()
                .contains("not a dead-letter id")
        );
    }

    #[test]
    fn ages_read_as_people_say_them() {
        use command::age;
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_500), "12.5s");
        assert_eq!(age(192_000), "3.2m");
        assert_eq!(age(5_400_000), "90.0m");
        assert_eq!(age(9_000_000), "2.5h");
    }
}
