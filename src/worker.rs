//! The `imticket-worker` process: runs the requested roles until shutdown and serves its own
//! `/metrics` and `/health/live` on `IMTICKET_WORKER_METRICS_ADDR`.

use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::config::Config;
use crate::stream::maintenance::{self, MaintenanceSettings, Target};
use crate::stream::relay::{self, RelaySettings};
use crate::stream::{Consumer, ConsumerSettings, Handler, Keys};

/// Every duty a worker process can take on. Any number of processes of any role may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    SeatCreation,
    Payment,
    Expiry,
    ExpiryScheduler,
    QueuePromoter,
    OutboxRelay,
    /// Every role in one process.
    All,
}

impl Role {
    pub const EVERY: [Role; 6] = [
        Role::SeatCreation,
        Role::Payment,
        Role::Expiry,
        Role::ExpiryScheduler,
        Role::QueuePromoter,
        Role::OutboxRelay,
    ];

    /// Roles that exist in this build. The rest arrive with later milestones.
    pub fn is_available(self) -> bool {
        matches!(self, Role::OutboxRelay | Role::SeatCreation)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::SeatCreation => "seat-creation",
            Role::Payment => "payment",
            Role::Expiry => "expiry",
            Role::ExpiryScheduler => "expiry-scheduler",
            Role::QueuePromoter => "queue-promoter",
            Role::OutboxRelay => "outbox-relay",
            Role::All => "all",
        };
        f.write_str(name)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("role `{0}` is not available yet in this build")]
pub struct RoleUnavailable(pub Role);

/// The concrete roles to run: `all` expands to every role available in this build; a role
/// named explicitly but not available is an error, so an operator never believes a duty runs
/// when it does not.
pub fn resolve_roles(requested: &[Role]) -> Result<Vec<Role>, RoleUnavailable> {
    let mut roles = Vec::new();
    for &role in requested {
        let expanded: Vec<Role> = if role == Role::All {
            Role::EVERY.into_iter().filter(|r| r.is_available()).collect()
        } else if role.is_available() {
            vec![role]
        } else {
            return Err(RoleUnavailable(role));
        };
        for r in expanded {
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
    }
    Ok(roles)
}

pub async fn run(config: Config, requested: Vec<Role>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let roles = resolve_roles(&requested)?;
    let pending: Vec<String> = Role::EVERY
        .iter()
        .filter(|r| !r.is_available())
        .map(|r| r.to_string())
        .collect();
    if requested.contains(&Role::All) && !pending.is_empty() {
        tracing::warn!(roles = %pending.join(","), "these roles are not available in this build yet and do not run");
    }
    tracing::info!(roles = ?roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "worker starting");

    crate::telemetry::metrics_handle();
    let addr = config.worker_metrics_addr;
    let listener = TcpListener::bind(addr).with_context(|| format!("bind worker metrics address {addr}"))?;
    let local = listener.local_addr().context("local address")?;
    let server = HttpServer::new(|| {
        App::new()
            .route("/metrics", web::get().to(crate::api::operational::metrics))
            .route("/health/live", web::get().to(crate::api::operational::live))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(addr = %local, "worker metrics listening");
    let metrics_handle = server.handle();
    let metrics_server = tokio::spawn(server);

    let deps = Deps::new(config.clone())?;
    // Stopped after the roles: a handler finishing during the drain may invalidate.
    let retries_stop = CancellationToken::new();
    let retries = tokio::spawn(deps.cache.clone().keep_retrying_invalidations(retries_stop.clone()));
    let keys = Keys::new(config.redis_key_prefix.clone());
    // Roles stop at `roles_stop`; it is cancelled on shutdown, or when a role ends on its own
    // (which only happens on a bug), so the process never limps on with a duty missing.
    let roles_stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    for role in &roles {
        match role {
            Role::OutboxRelay => {
                let settings = RelaySettings {
                    batch_size: config.stream.outbox_batch_size,
                    idle_wait: Duration::from_millis(200),
                    retention: config.stream.outbox_retention,
                    housekeeping_interval: config.stream.maintenance_interval,
                };
                tasks.spawn(relay::run(
                    deps.db.clone(),
                    deps.redis.clone(),
                    keys.clone(),
                    settings,
                    roles_stop.clone(),
                ));
            }
            Role::SeatCreation => {
                let stream = crate::stream::Stream::SeatCreation;
                let handler = Arc::new(crate::app::catalog::SeatCreationHandler::new(deps.clone()));
                spawn_consumer_role(&mut tasks, &deps, &keys, stream, handler, roles_stop.clone());
            }
            other => anyhow::bail!("role {other} has no implementation"),
        }
    }
    // Every process that consumes a stream keeps `processed_events` bounded (harmless in many).
    if roles
        .iter()
        .any(|r| matches!(r, Role::SeatCreation | Role::Payment | Role::Expiry))
    {
        tasks.spawn(crate::stream::pruning::run(
            deps.db.clone(),
            config.stream.clone(),
            roles_stop.clone(),
        ));
    }

    let mut failed = false;
    tokio::select! {
        // Biased: roles stop *because* of the shutdown (their token is its child), so a role
        // that ended while shutdown is cancelled ended normally.
        biased;
        _ = shutdown.cancelled() => {}
        Some(ended) = tasks.join_next(), if !tasks.is_empty() => {
            if !shutdown.is_cancelled() {
                tracing::error!(result = ?ended.err(), "a worker role stopped unexpectedly; shutting down");
                failed = true;
                roles_stop.cancel();
            }
        }
    }
    // Second phase: roles finish their round (handlers complete and ack), within the deadline.
    let drained = tokio::time::timeout(config.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::error!(timeout = ?config.shutdown_timeout, "roles did not stop in time; aborting them");
        tasks.abort_all();
        failed = true;
    }
    retries_stop.cancel();
    let _ = retries.await;
    metrics_handle.stop(true).await;
    metrics_server
        .await
        .context("metrics server task")?
        .context("metrics server")?;
    tracing::info!("worker stopped");
    anyhow::ensure!(!failed, "worker stopped abnormally");
    Ok(())
}

fn spawn_consumer_role<H: Handler>(
    tasks: &mut JoinSet<()>,
    deps: &Deps,
    keys: &Keys,
    stream: crate::stream::Stream,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    spawn_stream_consumer(
        tasks,
        deps,
        keys.stream(stream),
        stream.name(),
        stream.group(),
        handler,
        stop,
    );
}

/// Runs a consumer of `stream_key`/`group` with `handler`, and beside it the stream's
/// housekeeping (trimming, dead-consumer removal, stream metrics), until `stop`. The unit
/// every consumer role is made of.
pub fn spawn_stream_consumer<H: Handler>(
    tasks: &mut JoinSet<()>,
    deps: &Deps,
    stream_key: String,
    label: &str,
    group: &str,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    let config = &deps.config;
    let keys = Keys::new(config.redis_key_prefix.clone());
    let consumer = Consumer::new(
        deps.redis.clone(),
        &keys,
        stream_key.clone(),
        label,
        group,
        handler,
        ConsumerSettings::from_config(config),
    );
    let target = Target {
        key: stream_key,
        label: label.to_owned(),
        group: group.to_owned(),
        consumer: consumer.name().to_owned(),
    };
    let settings = MaintenanceSettings {
        interval: config.stream.maintenance_interval,
        consumer_cleanup_idle: config.stream.consumer_cleanup_idle,
    };
    tasks.spawn(maintenance::run(
        deps.redis.clone(),
        keys,
        target,
        settings,
        stop.clone(),
    ));
    tasks.spawn(consumer.run(stop));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_unavailable_roles_are_refused() {
        let err = resolve_roles(&[Role::Payment]).unwrap_err();
        assert_eq!(err.to_string(), "role `payment` is not available yet in this build");
        let all = resolve_roles(&[Role::All, Role::OutboxRelay]).unwrap();
        assert_eq!(
            all,
            vec![Role::SeatCreation, Role::OutboxRelay],
            "`all` expands to the available roles, without duplicates"
        );
    }
}
