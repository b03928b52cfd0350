//! Span export over OTLP/HTTP (protobuf), on when `IMTICKET_OTLP_ENDPOINT` is set: a
//! `tracing-opentelemetry` layer beside the log layer, and a batch processor that POSTs spans
//! from a thread of its own (never on a request's or a handler's path; when the receiver is slow
//! or down, spans beyond its queue are dropped, never waited for).

use std::sync::OnceLock;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

use crate::config::TelemetrySettings;

/// The process's tracer provider, kept so that [`shutdown`] can flush it at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// A tracer exporting to `settings`' endpoint, or `None` when none is configured.
pub fn tracer(service: &'static str, settings: &TelemetrySettings) -> anyhow::Result<Option<Tracer>> {
    let Some(url) = settings.traces_url() else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .context("IMTICKET_OTLP_ENDPOINT: OTLP exporter")?;
    let name = settings.service_name.clone().unwrap_or_else(|| service.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(name)
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let tracer = provider.tracer("imticket");
    // A second install in one process (tests) keeps the first provider; this one is dropped
    // with its tracer's last use.
    let _ = PROVIDER.set(provider);
    Ok(Some(tracer))
}

/// Exports the spans still queued (call once the work has drained, before exit).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(err) = provider.shutdown()
    {
        eprintln!("OTLP span export at shutdown: {err}");
    }
}
