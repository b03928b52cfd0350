//! `imticket-admin users role <email> <role>`: who may use the operator console. `admin`
//! (the console's operator: reads and acts, and every admin route of the API), `viewer` (reads
//! the console only), `user` (neither).

use anyhow::Context as _;

use super::command::{Context, Needs, Run};
use crate::domain::user::Role;

#[derive(clap::Subcommand)]
pub enum Users {
    /// Give an account a role: `admin`, `viewer` or `user`. Open console sessions follow at once.
    Role {
        email: String,
        #[arg(value_parser = ["admin", "viewer", "user"])]
        role: String,
    },
}

impl Run for Users {
    fn needs(&self) -> Needs {
        Needs::DATABASE
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let Users::Role { email, role } = self;
        let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut conn = cx.db()?.write().await.context("acquire connection")?;
        let address = crate::domain::user::Email::parse(&email).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let found = crate::infra::postgres::users::set_role(&mut conn, address.as_str(), role.as_str()).await?;
        conn.commit().await.context("commit role")?;
        let id = found.with_context(|| format!("no account with the e-mail address {email}"))?;
        Ok(if cx.json {
            serde_json::json!({"user_id": id, "email": email, "role": role.as_str()}).to_string()
        } else {
            format!("{email} ({id}) is now {}", role.as_str())
        })
    }
}
