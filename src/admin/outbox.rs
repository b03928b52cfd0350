//! `imticket-admin outbox status`: the transactional outbox's backlog.

use anyhow::Context as _;

use super::command::{Context, Needs, Run, age};

#[derive(clap::Subcommand)]
pub enum Outbox {
    /// Unpublished events, the oldest one's age, and retained published rows.
    Status,
}

impl Run for Outbox {
    fn needs(&self) -> Needs {
        Needs::DATABASE
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        match self {
            Outbox::Status => status(cx).await,
        }
    }
}

async fn status(cx: &Context) -> anyhow::Result<String> {
    let mut conn = cx.db()?.read().await.context("connect to PostgreSQL")?;
    let status = crate::infra::postgres::outbox::status(&mut conn).await?;
    if cx.json {
        return Ok(serde_json::to_string_pretty(&status)?);
    }
    let oldest = status.oldest_unpublished_at.map_or_else(
        || "-".to_owned(),
        |at| {
            format!(
                "{at} ({} ago)",
                age((chrono::Utc::now() - at).num_milliseconds().max(0) as u64)
            )
        },
    );
    Ok(format!(
        "unpublished          {}\noldest unpublished   {}\npublished (retained) {}\nlast published at    {}",
        status.unpublished,
        oldest,
        status.published_retained,
        status
            .last_published_at
            .map_or_else(|| "-".to_owned(), |t| t.to_string())
    ))
}
