//! `console-fill`: what the console's pages are measured against (scripts/bench-console.sh):
//! dead letters as the runtime writes them (one error shape, its ids differing) and fans
//! waiting in one concert's line, through the product's own Redis functions.

use std::time::Instant;

use futures_util::StreamExt as _;
use imticket::app::Deps;
use imticket::events::Stream;
use uuid::Uuid;

#[derive(clap::Args)]
pub struct ConsoleFill {
    #[arg(long, default_value_t = 100_000)]
    pub dead_letters: usize,
    #[arg(long, default_value_t = 100_000)]
    pub fans: usize,
    /// The concert whose line the fans join (its line is opened).
    #[arg(long)]
    pub concert: Uuid,
}

pub async fn fill(deps: &Deps, args: &ConsoleFill) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut conn = deps.redis.connection().await?;
    let dead = deps.keys.dead_letter();
    let source = deps.keys.stream_for(Stream::Payments, Uuid::now_v7());
    let mut written = 0;
    while written < args.dead_letters {
        let mut pipe = redis::pipe();
        for i in written..(written + 5_000).min(args.dead_letters) {
            let envelope = imticket::events::encode(&imticket::events::PaymentCompleted {
                payment_id: Uuid::now_v7(),
                reservation_id: Uuid::now_v7(),
                user_id: Uuid::now_v7(),
                amount: 100,
            })?;
            let original: Vec<(String, String)> = envelope
                .to_fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            let fields = imticket::stream::dead_letter::fields(
                &original,
                &source,
                &format!("{}-0", i + 1),
                "payment",
                1,
                &format!("no reservation {}", Uuid::now_v7()),
            );
            pipe.cmd("XADD").arg(&dead).arg("*").arg(&fields).ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
        written = (written + 5_000).min(args.dead_letters);
    }
    let letters_done = started.elapsed();
    let room = imticket::infra::redis::waiting_room::WaitingRoom::new(&deps.redis, &deps.keys, args.concert);
    imticket::infra::redis::waiting_room::mark_open(&deps.redis, &deps.keys, args.concert).await?;
    let admission = imticket::domain::queue::Admission {
        capacity: deps.config.waiting_room.active_capacity,
        per_second: deps.config.waiting_room.promote_per_second,
        active_ttl_ms: deps.config.waiting_room.active_ttl.as_millis() as u64,
    };
    let mut failed = 0;
    let mut joins = futures_util::stream::iter(0..args.fans)
        .map(|_| room.join(Uuid::now_v7(), Uuid::now_v7(), 0, admission))
        .buffer_unordered(256);
    while let Some(joined) = joins.next().await {
        failed += usize::from(joined.is_err());
    }
    anyhow::ensure!(failed == 0, "{failed} joins failed");
    println!(
        "filled: {} dead letters in {:.1} s, {} fans in line in {:.1} s",
        args.dead_letters,
        letters_done.as_secs_f64(),
        args.fans,
        (started.elapsed() - letters_done).as_secs_f64()
    );
    Ok(())
}
