//! Logging (tracing) and the process-wide Prometheus recorder.

pub mod db_statements;
pub mod otel;
pub mod probes;
pub mod process;
pub mod targets;
pub mod trace_context;

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterFn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Installs the global tracing subscriber for `config`'s process: filter from `RUST_LOG`
/// (default `info`); JSON lines when `IMTICKET_LOG_FORMAT=json`, human-readable otherwise.
/// Logs go to stderr. With `IMTICKET_OTLP_ENDPOINT`, spans are exported over OTLP too
/// ([`otel`]). Then warns about every `IMTICKET_*` variable that nothing reads.
pub fn init(service: &'static str, config: &Config) {
    let tracer = otel::tracer(service, &config.telemetry).unwrap_or_else(|err| {
        // The exporter is built without any I/O; this is a broken setting, reported as one.
        eprintln!("{service}: {err:#}");
        std::process::exit(2)
    });
    install_with(service, config.log_format, &config.telemetry, tracer);
    config.warn_unread();
}

/// The subscriber alone (tests, which have no process environment of their own).
pub fn install(service: &'static str, format: LogFormat) {
    install_with(service, format, &crate::config::TelemetrySettings::default(), None);
}

/// Exports the spans still queued for OTLP; the binaries call it last.
pub fn shutdown() {
    otel::shutdown();
}

fn install_with(
    service: &'static str,
    format: LogFormat,
    settings: &crate::config::TelemetrySettings,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = format == LogFormat::Json;
    // The filter is the log layer's alone: the statement timer sees its spans at any
    // `RUST_LOG`, and the span export takes every span at `info` and above.
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        // Colours only on a terminal: log files and collectors get plain text.
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    };
    let statements = db_statements::StatementTimer::new(settings.db_slow_statement)
        .with_filter(FilterFn::new(|meta| meta.name() == db_statements::STATEMENT_SPAN));
    let spans = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO)
    });
    let result = tracing_subscriber::registry()
        .with(logs)
        .with(statements)
        .with(spans)
        .try_init();
    if result.is_ok() {
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    }
}

/// The Prometheus recorder, installed on first use. The recorder is process-global by nature
/// (the `metrics` macros write to it), so this is the one global the code keeps.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        const LATENCY: &[f64] = &[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        // A wait in the waiting room is minutes, not milliseconds.
        const QUEUE_WAIT: &[f64] = &[
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("queue_wait_seconds".to_owned()), QUEUE_WAIT)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY))
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then ours renders nothing, which
        // the metrics tests would show at once.
        if metrics::set_global_recorder(recorder).is_err() {
            eprintln!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}
