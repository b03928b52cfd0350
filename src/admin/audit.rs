//! `imticket-admin audit`: the invariants checked on the live system.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::command::{Context, Needs, Run};
use crate::events::Stream;

/// I1–I4 in the database; I5 as far as it shows: the outbox and the streams' pending entries.
#[derive(clap::Args)]
pub struct Audit;

impl Run for Audit {
    fn needs(&self) -> Needs {
        Needs::BOTH
    }

    /// Checks the invariants (I1–I4 in the database, I5 as far as it shows: the outbox and the
    /// streams' pending entries). Prints each violation; an error (exit 1) if there is any.
    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let mut violations = {
            let mut conn = cx.db()?.read().await.context("connect to PostgreSQL")?;
            crate::infra::postgres::audit::database(&mut conn).await?
        };
        if let Ok(mut conn) = cx.redis_connection().await {
            let keys: Vec<String> = Stream::ALL.iter().flat_map(|s| cx.keys.stream_keys(*s)).collect();
            violations.extend(crate::stream::groups::pending_too_long(&mut conn, &keys, cx.settings.claim_idle).await?);
        }
        let report = if cx.json {
            serde_json::to_string_pretty(&violations)?
        } else {
            let mut out = String::new();
            for v in &violations {
                writeln!(out, "{}  {}", v.check, v.detail)?;
            }
            write!(out, "{} violation(s)", violations.len())?;
            out
        };
        anyhow::ensure!(violations.is_empty(), "{report}");
        Ok(report)
    }
}
