//! The `statistics` role's handlers: the `statistics` group counts the reservation, expiry and
//! queue events ([`StatisticsHandler`]); the `settlement` group settles the payments
//! ([`SettlementHandler`]). A batch is one transaction; the types a group does not count are
//! acked as they are.

use crate::app::Deps;
use crate::app::statistics::{Counted, Fact, record, settle};
use crate::events::{
    DecodeError, Envelope, Event, PaymentCompleted, QueueAdmitted, QueueJoined, ReservationConfirmed,
    ReservationCreated, ReservationExpired, decode,
};
use crate::stream::{Handler, Outcome};

/// The `statistics` group's name.
pub const STATISTICS: &str = "statistics";
/// The `settlement` group's name.
pub const SETTLEMENT: &str = "settlement";

pub struct StatisticsHandler {
    deps: Deps,
}

impl StatisticsHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

/// What the statistics group makes of one envelope: a fact to count, nothing (a type it does
/// not count), or a dead letter (a type it counts that does not decode).
fn fact_of(envelope: &Envelope) -> Result<Option<Fact>, DecodeError> {
    Ok(Some(match envelope.event_type.as_str() {
        ReservationCreated::TYPE => Fact::Created(decode(envelope)?),
        ReservationConfirmed::TYPE => Fact::Confirmed(decode(envelope)?),
        ReservationExpired::TYPE => Fact::Expired(decode(envelope)?),
        QueueJoined::TYPE => Fact::Joined(decode(envelope)?),
        QueueAdmitted::TYPE => Fact::Admitted(decode(envelope)?),
        _ => return Ok(None),
    }))
}

/// Runs `apply` on the entries that decoded, and answers for the batch in order: the
/// undecodable ones dead-lettered, the ignored ones acked, the rest as `apply` went.
async fn handle_batch<T, F, Fut>(
    batch: &[Envelope],
    parse: impl Fn(&Envelope) -> Result<Option<T>, DecodeError>,
    apply: F,
) -> Vec<Outcome>
where
    F: FnOnce(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut outcomes = vec![Outcome::Ack; batch.len()];
    let mut items = Vec::new();
    let mut counted = Vec::new();
    for (i, envelope) in batch.iter().enumerate() {
        match parse(envelope) {
            Ok(Some(item)) => {
                items.push(item);
                counted.push(i);
            }
            Ok(None) => {}
            Err(err) => outcomes[i] = Outcome::DeadLetter(err.to_string()),
        }
    }
    if let Err(err) = apply(items).await {
        let failed = Outcome::failed(&err);
        for i in counted {
            outcomes[i] = failed.clone();
        }
    }
    outcomes
}

impl Handler for StatisticsHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let parse = |envelope: &Envelope| {
            Ok(fact_of(envelope)?.map(|fact| Counted {
                event_id: envelope.event_id,
                occurred_at: envelope.occurred_at,
                fact,
            }))
        };
        handle_batch(batch, parse, |facts| async move {
            record(&self.deps, STATISTICS, &facts).await
        })
        .await
    }

    /// A batch's facts mostly add to the same schedule's and concert's rows.
    fn whole_batches(&self) -> bool {
        true
    }
}

pub struct SettlementHandler {
    deps: Deps,
}

impl SettlementHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

impl Handler for SettlementHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let parse = |envelope: &Envelope| match envelope.event_type.as_str() {
            PaymentCompleted::TYPE => Ok(Some((envelope.event_id, decode::<PaymentCompleted>(envelope)?))),
            _ => Ok(None),
        };
        handle_batch(batch, parse, |payments| async move {
            settle(&self.deps, SETTLEMENT, &payments).await.map(|_| ())
        })
        .await
    }

    /// A batch's payments mostly add to the same day's and concert's settlement row.
    fn whole_batches(&self) -> bool {
        true
    }
}
