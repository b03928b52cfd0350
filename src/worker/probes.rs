//! A worker's own small HTTP server: `/metrics` and `/health/live` on
//! `IMTICKET_WORKER_METRICS_ADDR`. Independent of the API's routes.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::telemetry::metrics_handle().render())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// A started probe server: stop it with [`ProbeServer::stop`] after the roles have drained.
pub struct ProbeServer {
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ProbeServer {
    pub fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        crate::telemetry::metrics_handle();
        let listener = TcpListener::bind(addr).with_context(|| format!("bind worker metrics address {addr}"))?;
        let local = listener.local_addr().context("local address")?;
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
        tracing::info!(addr = %local, "worker metrics listening");
        Ok(Self {
            handle: server.handle(),
            task: tokio::spawn(server),
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.task
            .await
            .context("metrics server task")?
            .context("metrics server")
    }
}
