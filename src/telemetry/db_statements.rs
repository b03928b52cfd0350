//! Database statement durations by name: a repository function carries
//! `#[tracing::instrument(name = "db statement", skip_all, fields(statement = "<repository>.<function>"))]`
//! ([`STATEMENT_SPAN`]), and this layer times every such span from creation to close into the
//! `db_statement_duration_seconds{statement}` histogram, and logs one slower than
//! `IMTICKET_DB_SLOW_STATEMENT_MS` as a warning with its name. Never its parameters: the span
//! records none (`skip_all`), and the SQL text is not known here.
//!
//! The span also reaches the trace (a child of the request's or handler's span) when traces
//! are exported. The layer sees statement spans whatever `RUST_LOG` says: it has a filter of
//! its own.

use std::time::{Duration, Instant};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The span name that marks a repository statement.
pub const STATEMENT_SPAN: &str = "db statement";

pub struct StatementTimer {
    slow: Duration,
}

impl StatementTimer {
    pub fn new(slow: Duration) -> Self {
        Self { slow }
    }
}

/// What the layer keeps in a statement span's extensions.
struct Timing {
    statement: &'static str,
    started: Instant,
}

#[derive(Default)]
struct StatementName(Option<&'static str>);

impl Visit for StatementName {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "statement" {
            // Names are literals in the attribute; a dynamic one would grow the label space.
            self.0 = known(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// Statement names are `&'static str` literals, but `Visit` hands out borrowed `&str`s: they
/// are interned here once each (a few dozen names in the whole program).
fn known(value: &str) -> Option<&'static str> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(name) = names.get(value) {
        return Some(name);
    }
    if names.len() >= 512 || value.is_empty() || value.len() > 80 {
        return None;
    }
    let name: &'static str = Box::leak(value.to_owned().into_boxed_str());
    names.insert(name);
    Some(name)
}

impl<S> Layer<S> for StatementTimer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != STATEMENT_SPAN {
            return;
        }
        let mut name = StatementName::default();
        attrs.record(&mut name);
        if let (Some(statement), Some(span)) = (name.0, ctx.span(id)) {
            span.extensions_mut().insert(Timing {
                statement,
                started: Instant::now(),
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(timing) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        drop(span);
        let elapsed = timing.started.elapsed();
        metrics::histogram!("db_statement_duration_seconds", "statement" => timing.statement)
            .record(elapsed.as_secs_f64());
        if elapsed >= self.slow {
            tracing::warn!(
                statement = timing.statement,
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                threshold_ms = self.slow.as_millis() as u64,
                "slow database statement"
            );
        }
    }
}
