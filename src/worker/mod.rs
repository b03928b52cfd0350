//! The `imticket-worker` process: runs the requested roles until shutdown and serves its own
//! `/metrics` and `/health/live` on `IMTICKET_WORKER_METRICS_ADDR` ([`crate::telemetry::probes`]). Stream
//! handlers live in [`handlers`], one file per stream.

pub mod expiry_scheduler;
pub mod handlers;
pub mod notifications;
pub mod promoter;

use std::fmt;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::events::Stream;
use crate::stream::Subscription;
use crate::stream::relay;
use handlers::statistics::{SETTLEMENT, STATISTICS};
use handlers::{ExpiryHandler, PaymentHandler, SeatCreationHandler, SettlementHandler, StatisticsHandler};

/// Every duty a worker process can take on. Any number of processes of any role may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    SeatCreation,
    Payment,
    Expiry,
    ExpiryScheduler,
    QueuePromoter,
    OutboxRelay,
    /// Sales statistics (group `statistics`) and settlement (group `settlement`).
    Statistics,
    /// Webhook notifications (group `notifications`) and their dispatcher.
    Notifications,
    /// Every role in one process.
    All,
}

impl Role {
    pub const EVERY: [Role; 8] = [
        Role::SeatCreation,
        Role::Payment,
        Role::Expiry,
        Role::ExpiryScheduler,
        Role::QueuePromoter,
        Role::OutboxRelay,
        Role::Statistics,
        Role::Notifications,
    ];

    /// Roles that exist in this build. The rest arrive with later milestones.
    pub fn is_available(self) -> bool {
        // Every role is built; the check stays for roles added later.
        !matches!(self, Role::All)
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
            Role::Statistics => "statistics",
            Role::Notifications => "notifications",
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

    let role_names = roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",");
    let probes = crate::telemetry::probes::ProbeServer::start(
        crate::infra::listen::first_free(&config.worker.metrics_addr, "IMTICKET_WORKER_METRICS_ADDR")?,
        crate::telemetry::probes::Service {
            name: "imticket-worker",
            roles: &role_names,
        },
        config.metrics_targets_dir.as_deref(),
    )?;

    let deps = crate::root::deps(config.clone())?;
    let streams = crate::root::stream_runtime(&deps);
    crate::stream::groups::ensure_at_start(&deps.redis, &deps.keys, &config.streams.groups).await;
    // Stopped after the roles: a handler finishing during the drain may invalidate.
    let retries_stop = CancellationToken::new();
    let retries = tokio::spawn(deps.cache.clone().keep_retrying_invalidations(retries_stop.clone()));
    tokio::spawn(crate::infra::resource_gauges::run(
        deps.db.clone(),
        deps.redis.clone(),
        config.database.max_connections,
        retries_stop.clone(),
    ));
    // Roles stop at `roles_stop`; it is cancelled on shutdown, or when a role ends on its own
    // (which only happens on a bug), so the process never limps on with a duty missing.
    let roles_stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    for role in &roles {
        // 1 while this process runs the role: the "worker role down" alert fires when no
        // process reports 1 for a role (including when every process of it is gone).
        metrics::gauge!("worker_role_up", "role" => role.to_string()).set(1.0);
        let stop = roles_stop.clone();
        match role {
            Role::SeatCreation => {
                let handler = SeatCreationHandler::new(deps.clone());
                for subscription in Subscription::each_partition(&deps.keys, Stream::SeatCreation, handler) {
                    streams.spawn(&mut tasks, subscription, stop.clone());
                }
            }
            Role::Payment => {
                let handler = PaymentHandler::new(deps.clone());
                for subscription in Subscription::each_partition(&deps.keys, Stream::Payments, handler) {
                    streams.spawn(&mut tasks, subscription, stop.clone());
                }
            }
            Role::Expiry => {
                let handler = ExpiryHandler::new(deps.clone());
                for subscription in Subscription::each_partition(&deps.keys, Stream::Expiry, handler) {
                    streams.spawn(&mut tasks, subscription, stop.clone());
                }
            }
            Role::Notifications => notifications::spawn(&deps, &streams, &mut tasks, &stop),
            Role::ExpiryScheduler => {
                tasks.spawn(expiry_scheduler::run(deps.clone(), stop));
            }
            Role::OutboxRelay => {
                let (db, redis, keys) = (deps.db.clone(), deps.redis.clone(), deps.keys.clone());
                tasks.spawn(relay::run(db, redis, keys, config.streams.relay(), stop));
            }
            Role::QueuePromoter => {
                tasks.spawn(promoter::run(deps.clone(), stop));
            }
            Role::Statistics => {
                let settlement = SettlementHandler::new(deps.clone());
                for subscription in
                    Subscription::each_partition_for(&deps.keys, Stream::Payments, SETTLEMENT, settlement)
                {
                    streams.spawn(&mut tasks, subscription, stop.clone());
                }
                let statistics = std::sync::Arc::new(StatisticsHandler::new(deps.clone()));
                for stream in [Stream::Reservations, Stream::Expiry, Stream::Queue] {
                    for subscription in Subscription::<StatisticsHandler>::each_partition_for(
                        &deps.keys,
                        stream,
                        STATISTICS,
                        statistics.clone(),
                    ) {
                        streams.spawn(&mut tasks, subscription, stop.clone());
                    }
                }
            }
            other => anyhow::bail!("role {other} has no implementation"),
        }
    }
    // Every process that consumes a stream keeps `processed_events` bounded (harmless in many).
    if roles.iter().any(|r| {
        matches!(
            r,
            Role::SeatCreation | Role::Payment | Role::Expiry | Role::Statistics | Role::Notifications
        )
    }) {
        tasks.spawn(crate::stream::pruning::run(
            deps.db.clone(),
            config.streams.clone(),
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
    for role in &roles {
        metrics::gauge!("worker_role_up", "role" => role.to_string()).set(0.0);
    }
    retries_stop.cancel();
    let _ = retries.await;
    probes.stop().await?;
    tracing::info!("worker stopped");
    anyhow::ensure!(!failed, "worker stopped abnormally");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_expands_to_every_role_once() {
        let all = resolve_roles(&[Role::All, Role::OutboxRelay]).unwrap();
        assert_eq!(
            all,
            Role::EVERY.to_vec(),
            "`all` expands to every role, without duplicates"
        );
        assert_eq!(resolve_roles(&[Role::Expiry]).unwrap(), vec![Role::Expiry]);
    }
}
