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
        let addr = config.http.addr;
        let deps = crate::root::api_deps(config)?;
        crate::infra::postgres::migrate(&deps.db).await?;
        crate::app::auth::bootstrap_admin(&deps).await?;
        // Warm the cache for the schedules of the coming week, without delaying start-up.
        let warm = deps.clone();
        tokio::spawn(async move { crate::app::catalog::warm_up::warm_up(&warm, chrono::Duration::days(7)).await });
        // Touch the recorder now so /metrics lists the process from the first scrape.
        crate::telemetry::metrics_handle();

        let listener = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
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

    /// Serves until `shutdown` is cancelled, then stops accepting connections, lets in-flight
    /// requests finish (up to `IMTICKET_SHUTDOWN_TIMEOUT_SECONDS`) and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let deps = self.deps.clone();
        // Stopped after the last request: a request finishing during the drain may invalidate.
        let retries_stop = CancellationToken::new();
        let retries = tokio::spawn(deps.cache.clone().keep_retrying_invalidations(retries_stop.clone()));
        tokio::spawn(crate::infra::resource_gauges::run(
            deps.db.clone(),
            deps.redis.clone(),
            deps.config.database.max_connections,
            shutdown.clone(),
        ));
        if let Some(near) = deps.cache.near() {
            tokio::spawn(follow_invalidations(
                deps.redis.clone(),
                deps.cache.store().invalidation_channel(),
                near.clone(),
                shutdown.clone(),
            ));
        }
        let shutdown_timeout = deps.config.shutdown_timeout.as_secs();
        let server = HttpServer::new(move || {
            // Called once per worker thread: each gets its own Redis connection, driven there.
            let deps = deps.for_this_thread();
            App::new()
                .wrap(from_fn(api::middleware::observe))
                .configure(api::configure(deps))
                .default_service(web::to(api::error::not_found))
        })
        // Fans in a line poll every 2–30 s (poll_after_seconds) on one connection: with actix's
        // 5 s default the server closed idle connections just as clients reused them (k6 saw
        // EOFs in the on-sale). Longer than any poll interval, as load balancers do (60–75 s).
        .keep_alive(std::time::Duration::from_secs(75))
        // Our signal handler owns shutdown; the server stops gracefully when it cancels.
        .disable_signals()
        .shutdown_signal(shutdown.cancelled_owned())
        .shutdown_timeout(shutdown_timeout)
        .listen(self.listener)
        .context("listen")?
        .run();
        let result = server.await.context("HTTP server");
        retries_stop.cancel();
        let _ = retries.await;
        tracing::info!("HTTP API stopped");
        result
    }
}
