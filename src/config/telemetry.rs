//! What a process reports beyond its logs and metrics: where its trace spans go, and when a
//! database statement counts as slow.

use std::time::Duration;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// `IMTICKET_OTLP_ENDPOINT`: an OTLP/HTTP receiver (`http://127.0.0.1:4318`); spans are
    /// POSTed as protobuf to its `/v1/traces`. Unset: no span leaves the process, and no trace
    /// context is written into events. The service name is the standard `OTEL_SERVICE_NAME`
    /// (default: the binary's name).
    pub otlp_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME` (the OpenTelemetry standard): the process's name in the traces.
    pub service_name: Option<String>,
    /// `IMTICKET_DB_SLOW_STATEMENT_MS`: a repository statement that takes longer is logged
    /// (a warning naming the statement, never its parameters).
    pub db_slow_statement: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: None,
            db_slow_statement: Duration::from_millis(200),
        }
    }
}

impl TelemetrySettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            otlp_endpoint: otlp_endpoint(env)?,
            service_name: env.get("OTEL_SERVICE_NAME").map(|v| v.trim().to_owned()),
            db_slow_statement: env.millis("IMTICKET_DB_SLOW_STATEMENT_MS", 200, 1..=600_000)?,
        })
    }

    /// The URL spans are sent to: the endpoint's `/v1/traces` (the OTLP/HTTP path), unless
    /// it names that path already.
    pub fn traces_url(&self) -> Option<String> {
        let endpoint = self.otlp_endpoint.as_deref()?.trim_end_matches('/');
        Some(if endpoint.ends_with("/v1/traces") {
            endpoint.to_owned()
        } else {
            format!("{endpoint}/v1/traces")
        })
    }
}

/// An `http://` or `https://` URL with a host. The value is never echoed: a collector's URL
/// may carry a token.
fn otlp_endpoint(env: &Env) -> Result<Option<String>, ConfigError> {
    const VAR: &str = "IMTICKET_OTLP_ENDPOINT";
    let Some(raw) = env.get(VAR).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::new(VAR, "expected an http:// or https:// URL (OTLP/HTTP)"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ConfigError::new(VAR, "expected an http:// or https:// URL with a host"));
    }
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<TelemetrySettings, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| map.get(name).cloned();
        TelemetrySettings::read(&Env::new(&lookup))
    }

    #[test]
    fn off_by_default_and_urls_are_checked() {
        assert_eq!(read(&[]).unwrap(), TelemetrySettings::default());
        let on = read(&[("IMTICKET_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]).unwrap();
        assert_eq!(on.traces_url().unwrap(), "http://127.0.0.1:4318/v1/traces");
        let full = read(&[("IMTICKET_OTLP_ENDPOINT", "https://otel.example/v1/traces")]).unwrap();
        assert_eq!(full.traces_url().unwrap(), "https://otel.example/v1/traces");
        for bad in ["127.0.0.1:4318", "grpc://x:4317", "http://"] {
            let err = read(&[("IMTICKET_OTLP_ENDPOINT", bad)]).unwrap_err();
            assert_eq!(err.var, "IMTICKET_OTLP_ENDPOINT", "{bad}");
        }
        let err = read(&[("IMTICKET_DB_SLOW_STATEMENT_MS", "slow")]).unwrap_err();
        assert_eq!(err.var, "IMTICKET_DB_SLOW_STATEMENT_MS");
    }
}
