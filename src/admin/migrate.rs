//! `imticket-admin migrate`: applies pending migrations (the API also does at start).

use super::command::{Context, Needs, Run};

/// Apply pending database migrations.
#[derive(clap::Args)]
pub struct Migrate;

impl Run for Migrate {
    fn needs(&self) -> Needs {
        Needs::DATABASE
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let pool = cx.db()?;
        let before = crate::infra::postgres::applied_migrations(pool).await?;
        crate::infra::postgres::migrate(pool).await?;
        let after = crate::infra::postgres::applied_migrations(pool).await?;
        Ok(format!(
            "migrations: {} applied now, {} in total",
            after - before,
            after
        ))
    }
}
