//! A process's own small HTTP server: `/metrics` and `/health/live`, on a listener its caller
//! bound on the first free port of its range (`IMTICKET_WORKER_METRICS_ADDR`,
//! `IMTICKET_API_METRICS_ADDR`; [`crate::infra::listen::first_free`]), so any number of
//! processes with one environment share a host. Independent of the API's routes.

use std::net::SocketAddr;
use std::path::Path;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;

use super::targets::Target;

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::telemetry::metrics_handle().render())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Who serves the probes, for the log line and the discovery file.
pub struct Service<'a> {
    /// `imticket-api` or `imticket-worker`.
    pub name: &'a str,
    /// The worker roles (or `api`).
    pub roles: &'a str,
}

/// A started probe server: stop it with [`ProbeServer::stop`] after the work has drained.
pub struct ProbeServer {
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    addr: SocketAddr,
    _target: Option<Target>,
}

impl ProbeServer {
    /// Serves on `listener` and, with `targets_dir`, writes this process's discovery file there.
    pub fn start(
        listener: std::net::TcpListener,
        service: Service<'_>,
        targets_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        crate::telemetry::metrics_handle();
        let addr = listener.local_addr().context("local address")?;
        let server = HttpServer::new(|| {
            // Resources, so a wrong method answers 405 with `Allow: GET` rather than 404.
            App::new()
                .service(web::resource("/metrics").get(metrics))
                .service(web::resource("/health/live").get(live))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let target = targets_dir
            .map(|dir| Target::register(dir, service.name, service.roles, addr))
            .transpose()?;
        tracing::info!(%addr, service = service.name, "metrics listening");
        Ok(Self {
            handle: server.handle(),
            task: tokio::spawn(server),
            addr,
            _target: target,
        })
    }

    /// The address it listens on (the port it took from the range).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.task
            .await
            .context("metrics server task")?
            .context("metrics server")
    }
}
