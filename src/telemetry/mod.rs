//! Logging (tracing) and the process-wide Prometheus recorder.

pub mod probes;
pub mod targets;

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Installs the global tracing subscriber for `config`'s process: filter from `RUST_LOG`
/// (default `info`); JSON lines when `IMTICKET_LOG_FORMAT=json`, human-readable otherwise.
/// Logs go to stderr. Then warns about every `IMTICKET_*` variable that nothing reads.
pub fn init(service: &'static str, config: &Config) {
    install(service, config.log_format);
    config.warn_unread();
}

/// The subscriber alone (tests, which have no process environment of their own).
pub fn install(service: &'static str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = format == LogFormat::Json;
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            // Colours only on a terminal: log files and collectors get plain text.
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
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
