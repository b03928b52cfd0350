//! `imticket-admin audit`: the invariants checked on the live system.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::command::{Context, Needs, Run, age};
use crate::events::Stream;
use crate::infra::redis::streams;

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
        let claim_idle_ms = cx.settings.claim_idle.as_millis() as u64;
        let mut violations = {
            let mut conn = cx.db()?.read().await.context("connect to PostgreSQL")?;
            crate::infra::postgres::audit::database(&mut conn).await?
        };
        if let Ok(mut conn) = cx.redis_connection().await {
            for key in Stream::ALL.iter().flat_map(|s| cx.keys.stream_keys(*s)) {
                let Some(stats) = streams::stats(&mut conn, &key).await? else {
                    continue;
                };
                for group in stats.groups {
                    if let Some(pending_for) = group.oldest_pending_age_ms
                        && pending_for > claim_idle_ms
                    {
                        violations.push(crate::infra::postgres::audit::Violation {
                            check: "I5",
                            detail: format!(
                                "{key} group {}: an entry pending for {} (claim idle {})",
                                group.name,
                                age(pending_for),
                                age(claim_idle_ms)
                            ),
                        });
                    }
                }
            }
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
