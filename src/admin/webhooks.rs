//! `imticket-admin webhooks …`: the webhook endpoints and their delivery log, as
//! `/admin/webhooks…` serves them (the same checks: event types, the SSRF guard).

use std::fmt::Write as _;

use uuid::Uuid;

use super::command::{Context, Needs, Run};
use crate::app::webhooks;
use crate::infra::webhooks::WebhookClient;

#[derive(clap::Subcommand)]
pub enum Webhooks {
    /// Every endpoint: id, URL, event types, whether it is disabled.
    List,
    /// Register an endpoint; prints its id and its secret (shown this once).
    Add {
        /// `https://…` (its host must resolve to public addresses unless
        /// `IMTICKET_WEBHOOK_ALLOW_PRIVATE=true`).
        url: String,
        /// Event types, comma-separated (`queue.admitted`, `reservation.created`,
        /// `reservation.expiring`, `reservation.confirmed`, `reservation.expired`), or `*`.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete an endpoint and its delivery log.
    Remove { id: String },
    /// A new secret; the old one keeps signing for `IMTICKET_WEBHOOK_SECRET_OVERLAP_SECONDS`.
    RotateSecret { id: String },
    /// An endpoint's latest deliveries, each with its attempts (status, latency, error).
    Deliveries { id: String },
}

fn endpoint_id(id: &str) -> anyhow::Result<Uuid> {
    id.parse()
        .map_err(|_| anyhow::anyhow!("not a webhook endpoint id: {id:?}"))
}

impl Run for Webhooks {
    fn needs(&self) -> Needs {
        Needs::DATABASE
    }

    fn check(&self) -> anyhow::Result<()> {
        match self {
            Webhooks::Remove { id } | Webhooks::RotateSecret { id } | Webhooks::Deliveries { id } => {
                endpoint_id(id).map(|_| ())
            }
            Webhooks::List | Webhooks::Add { .. } => Ok(()),
        }
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let db = cx.db()?;
        let fail = |e: crate::app::AppError| anyhow::anyhow!("{}", e.detail);
        match self {
            Webhooks::List => {
                let endpoints = webhooks::list(db).await.map_err(fail)?;
                if cx.json {
                    return Ok(serde_json::to_string_pretty(&endpoints)?);
                }
                let mut out = format!("{:<36} {:<9} {:<40} URL\n", "ID", "STATE", "EVENTS");
                for e in &endpoints {
                    let state = if e.disabled_at.is_some() { "disabled" } else { "enabled" };
                    writeln!(
                        out,
                        "{:<36} {:<9} {:<40} {}",
                        e.id,
                        state,
                        e.event_types.join(","),
                        e.url
                    )?;
                }
                Ok(out.trim_end().to_owned())
            }
            Webhooks::Add {
                url,
                events,
                description,
            } => {
                let settings = cx.settings.notifications.clone().map_err(anyhow::Error::new)?;
                let client = WebhookClient::new(settings.timeout, settings.allow_private)?;
                let (endpoint, secret) = webhooks::create(db, &client, &url, &events, &description)
                    .await
                    .map_err(fail)?;
                if cx.json {
                    return Ok(serde_json::to_string_pretty(
                        &serde_json::json!({"endpoint": endpoint, "secret": secret}),
                    )?);
                }
                Ok(format!(
                    "endpoint {}\nsecret   {secret}\n(the secret is shown this once: verify webhook-signature with it)",
                    endpoint.id
                ))
            }
            Webhooks::Remove { id } => {
                let id = endpoint_id(&id)?;
                webhooks::delete(db, id).await.map_err(fail)?;
                Ok(format!("removed {id}"))
            }
            Webhooks::RotateSecret { id } => {
                let settings = cx.settings.notifications.clone().map_err(anyhow::Error::new)?;
                let id = endpoint_id(&id)?;
                let secret = webhooks::rotate(db, id, settings.secret_overlap).await.map_err(fail)?;
                if cx.json {
                    return Ok(serde_json::to_string_pretty(&serde_json::json!({"secret": secret}))?);
                }
                Ok(format!(
                    "secret {secret}\n(the previous secret keeps signing for {} s)",
                    settings.secret_overlap.as_secs()
                ))
            }
            Webhooks::Deliveries { id } => {
                let deliveries = webhooks::deliveries(db, endpoint_id(&id)?).await.map_err(fail)?;
                if cx.json {
                    return Ok(serde_json::to_string_pretty(&deliveries)?);
                }
                let mut out = format!(
                    "{:<36} {:<22} {:<9} {:>8} ATTEMPTS (status/latency)\n",
                    "MESSAGE", "TYPE", "STATUS", "TRIES"
                );
                for d in &deliveries {
                    let attempts: Vec<String> = d
                        .log
                        .iter()
                        .map(|a| {
                            let code = a.status_code.map_or_else(|| "-".to_owned(), |c| c.to_string());
                            format!("{code}/{}ms", a.latency_ms)
                        })
                        .collect();
                    writeln!(
                        out,
                        "{:<36} {:<22} {:<9} {:>8} {}",
                        d.id,
                        d.event_type,
                        d.status,
                        d.attempts,
                        attempts.join(" ")
                    )?;
                }
                Ok(out.trim_end().to_owned())
            }
        }
    }
}
