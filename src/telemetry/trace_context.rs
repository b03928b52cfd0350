//! The W3C trace context (`traceparent`) that events carry from the span that wrote them to
//! the span that handles them, so one trace runs from a fan's request through the outbox, the
//! stream and a worker's handler (docs/architecture.md, "Tracing").
//!
//! Written by [`crate::events::encode`] into the envelope's `trace_id` (and so into the outbox
//! row and the stream entry); read by the consumer ([`crate::stream::Consumer`]), which makes
//! the handler's span a child of it. Without an OpenTelemetry layer (`IMTICKET_OTLP_ENDPOINT`
//! unset) spans have no trace context and events carry none.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The current span's context as a `traceparent` (`00-<trace id>-<span id>-<flags>`), if it
/// has one.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    traceparent(span.span_context())
}

pub fn traceparent(context: &SpanContext) -> Option<String> {
    context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    })
}

/// The remote span a `traceparent` names; `None` for anything else (an older entry's request
/// id, a malformed value: the handler's span then starts a trace of its own).
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; a later version may add some (W3C: read the first four).
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !hex(version, 2) || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()? & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Makes `span` a child of the remote span `traceparent` names (no-op when it names none or
/// no OpenTelemetry layer is installed).
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

/// Links `span` to the remote span `traceparent` names (a batch handled in one span has one
/// parent; the other events' traces are linked).
pub fn add_remote_link(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        span.add_link(remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip_and_junk_is_refused() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse_traceparent(value).unwrap();
        assert!(context.is_remote() && context.is_sampled());
        assert_eq!(traceparent(&context).unwrap(), value);
        for junk in [
            "",
            "req-1",
            "0193b1c4-7c1e-7aa0-9e7b-2f0c3d4e5f60",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(junk), None, "{junk:?}");
        }
        // Without an OpenTelemetry layer a span has no trace context.
        let span = tracing::info_span!("no layer");
        assert_eq!(span.in_scope(current_traceparent), None);
    }
}
