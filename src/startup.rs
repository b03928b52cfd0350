//! Builds and runs the HTTP API; the `imticket-api` binary and the tests both call this.

use std::net::TcpListener;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::app::Deps;
use crate::cache::follow_invalidations;
use crate::config::Config;
use crate::shutdown::Shutdown;

pub struct Application {
    listener: TcpListener,
    port: u16,
    deps: Deps,
}

impl Application {
    /// Applies pending migrations, creates the bootstrap admin, and binds the listener
    /// (`IMTICKET_HTTP_ADDR`; port 0 picks a free port, see [`Application::port`]).
    /// Connections that arrive before [`Application::run_until_stopped`] wait in the backlog.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // The API signs and verifies tokens: without a key it does not start.
        config.auth.signing_secret()?;
        let addr = config.http.addr;
        let mut deps = crate::root::api_deps(config)?;
        // Holds' events are published by one task of the process, in batches.
        deps.outbox = deps.outbox.batched();
        crate::infra::postgres::migrate(&deps.db).await?;
        crate::app::auth::bootstrap_admin(&deps).await?;
        deps.hasher.prepare().await?;
        // Every group an event will be read by exists before the first event is published.
        crate::stream::groups::ensure_at_start(&deps.redis, &deps.keys, &deps.config.streams.groups).await;
        // Warm the cache for the schedules of the coming week, without delaying start-up.
        let warm = deps.clone();
        tokio::spawn(async move { crate::app::catalog::warm_up::warm_up(&warm, chrono::Duration::days(7)).await });
        // Touch the recorder now so /metrics lists the process from the first scrape.
        crate::telemetry::metrics_handle();
        // Series that count rare things are exported from the start, at zero: a rule on
        // them sees 0, not an absent series.
        metrics::gauge!("sse_open_streams").set(0.0);
        metrics::counter!("sse_events_sent_total").increment(0);

        let listener = crate::infra::listen::listener(addr, deps.config.http.reuse_port)
            .with_context(|| format!("bind {addr} (IMTICKET_HTTP_ADDR)"))?;
        let local = listener.local_addr().context("local address")?;
        tracing::info!(addr = %local, "HTTP API listening");
        Ok(Self {
            listener,
            port: local.port(),
            deps,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// Serves until `shutdown` is requested, then drains: for `IMTICKET_HTTP_DRAIN_SECONDS` it
    /// keeps serving while `/health/ready` answers 503 `draining` (cut short when the shutdown
    /// turns [urgent](Shutdown::urgent)), so a load balancer takes this process out first. Then
    /// it stops accepting connections, lets in-flight requests finish (up to
    /// `IMTICKET_SHUTDOWN_TIMEOUT_SECONDS`) and returns. A plain [`CancellationToken`] is
    /// requested and urgent at once: no drain.
    pub async fn run_until_stopped(self, shutdown: impl Into<Shutdown>) -> anyhow::Result<()> {
        let shutdown = shutdown.into();
        let deps = self.deps.clone();
        // Cancelled after the drain: the server stops accepting, the tasks beside it end.
        let stop = CancellationToken::new();
        // Stopped after the last request: a request finishing during the drain may invalidate.
        let retries_stop = CancellationToken::new();
        let retries = tokio::spawn(deps.cache.clone().keep_retrying_invalidations(retries_stop.clone()));
        tokio::spawn(crate::infra::resource_gauges::run(
            deps.db.clone(),
            deps.redis.clone(),
            deps.config.database.max_connections,
            stop.clone(),
        ));
        if let Some(near) = deps.cache.near() {
            // Served copies stay fresh while the process still serves, its drain included.
            tokio::spawn(follow_invalidations(
                deps.redis.clone(),
                deps.cache.store().invalidation_channel(),
                near.clone(),
                stop.clone(),
            ));
        }
        let shutdown_timeout = deps.config.shutdown_timeout.as_secs();
        let http = deps.config.http.clone();
        // This process's own /metrics (several processes may share the API's port).
        let probes = match &http.metrics_addr {
            Some(range) => Some(crate::telemetry::probes::ProbeServer::start(
                crate::infra::listen::first_free(range, "IMTICKET_API_METRICS_ADDR")?,
                crate::telemetry::probes::Service {
                    name: "imticket-api",
                    roles: "api",
                },
                deps.config.metrics_targets_dir.as_deref(),
            )?),
            None => None,
        };
        let admission = web::Data::from(api::admission::Admission::new(&http));
        let draining = web::Data::new(api::operational::Draining::from_token(shutdown.requested.clone()));
        let server = HttpServer::new(move || {
            // Called once per worker thread: each gets its own Redis connection, driven there.
            let deps = deps.for_this_thread();
            // Outermost first: observe every request, then admit it (body read, a turn), then
            // the per-IP limit (a Redis call, so only for admitted requests), then the routes.
            App::new()
                .app_data(admission.clone())
                .app_data(draining.clone())
                .wrap(from_fn(api::rate_limits::limit_every_request))
                .wrap(from_fn(api::admission::admit))
                .wrap(from_fn(api::middleware::observe))
                .configure(api::configure(deps))
                .default_service(web::to(api::error::not_found))
        })
        .workers(http.workers)
        // Per worker thread in actix; the setting is per process.
        .max_connections(http.max_connections.div_ceil(http.workers))
        .client_request_timeout(http.header_timeout)
        .client_disconnect_timeout(std::time::Duration::from_secs(1))
        // Fans in a line poll every 2–30 s (poll_after_seconds) on one connection: with actix's
        // 5 s default the server closed idle connections just as clients reused them (k6 saw
        // EOFs in the on-sale). Longer than any poll interval, as load balancers do (60–75 s).
        .keep_alive(std::time::Duration::from_secs(75))
        // Our signal handler owns shutdown; the server stops gracefully after the drain.
        .disable_signals()
        .shutdown_signal(stop.clone().cancelled_owned())
        .shutdown_timeout(shutdown_timeout)
        .listen(self.listener)
        .context("listen")?
        .run();
        let drain = tokio::spawn(drain_then_stop(shutdown, http.drain, stop.clone()));
        // Open queue streams end when the drain does (their clients reconnect, through the
        // balancer, to an instance that stays), so they never hold the shutdown up.
        let streams = (stop.clone(), self.deps.queue_streams.clone());
        tokio::spawn(async move {
            streams.0.cancelled().await;
            streams.1.close_all();
        });
        let result = server.await.context("HTTP server");
        // Also when the server ended on its own.
        drain.abort();
        stop.cancel();
        if let Some(probes) = probes {
            probes.stop().await?;
        }
        retries_stop.cancel();
        let _ = retries.await;
        tracing::info!("HTTP API stopped");
        result
    }
}

/// Once `shutdown` is requested: the drain (readiness already answers `draining`), then `stop`.
async fn drain_then_stop(shutdown: Shutdown, drain: std::time::Duration, stop: CancellationToken) {
    shutdown.requested.cancelled().await;
    if !drain.is_zero() && !shutdown.urgent.is_cancelled() {
        tracing::info!(
            seconds = drain.as_secs(),
            "draining: /health/ready answers 503 so load balancers take this process out; still serving"
        );
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = shutdown.urgent.cancelled() => tracing::info!("drain cut short"),
        }
    }
    tracing::info!("stopping: no new connections; finishing in-flight requests");
    stop.cancel();
}
