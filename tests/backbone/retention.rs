//! `processed_events` stays bounded: records older than the retention are pruned, newer ones
//! (still needed to recognise duplicates) stay.

use std::time::Duration;

use imticket::stream::pruning::{PRUNE_BATCH, prune_processed_events};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// Inserts `n` records of group `g` processed `age` ago.
async fn insert_records(db: &PgPool, group: &str, n: i64, age: Duration) {
    sqlx::query(
        "INSERT INTO processed_events (event_id, consumer_group, processed_at)
         SELECT gen_random_uuid(), $1, now() - make_interval(secs => $2) FROM generate_series(1, $3)",
    )
    .bind(group)
    .bind(age.as_secs_f64())
    .bind(n)
    .execute(db)
    .await
    .unwrap();
}

async fn count(db: &PgPool, group: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE consumer_group = $1")
        .bind(group)
        .fetch_one(db)
        .await
        .unwrap()
}

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn one_prune_pass_deletes_exactly_the_records_older_than_the_retention() {
    let b = backbone().await;
    let retention = 7 * DAY;
    // More old records than one batch, so the pass takes several statements.
    let old = PRUNE_BATCH * 2 + 500;
    insert_records(&b.db, "old", old, retention + DAY).await;
    insert_records(&b.db, "recent", 300, retention - DAY).await;
    insert_records(&b.db, "fresh", 200, Duration::ZERO).await;

    let deleted = prune_processed_events(&b.deps.db, retention, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(deleted, old as u64);
    assert_eq!(
        (
            count(&b.db, "old").await,
            count(&b.db, "recent").await,
            count(&b.db, "fresh").await
        ),
        (0, 300, 200)
    );
    assert_eq!(
        prune_processed_events(&b.deps.db, retention, &CancellationToken::new())
            .await
            .unwrap(),
        0,
        "nothing left to prune"
    );
}

#[tokio::test]
async fn pruners_running_at_once_share_the_work() {
    let b = backbone().await;
    let old = PRUNE_BATCH * 3;
    insert_records(&b.db, "old", old, 8 * DAY).await;
    insert_records(&b.db, "fresh", 100, Duration::ZERO).await;
    let stop = CancellationToken::new();
    let passes =
        futures_util::future::join_all((0..4).map(|_| prune_processed_events(&b.deps.db, 7 * DAY, &stop))).await;
    let deleted: u64 = passes.into_iter().map(Result::unwrap).sum();
    assert_eq!(deleted, old as u64, "every old record deleted once, no pass failed");
    // A pass that met rows another one had locked may have stopped early: the next one
    // finishes (at worst the rest waits one maintenance period).
    prune_processed_events(&b.deps.db, 7 * DAY, &stop).await.unwrap();
    assert_eq!((count(&b.db, "old").await, count(&b.db, "fresh").await), (0, 100));
}

/// The defect: `processed_events` grew forever because no process ever pruned it.
#[tokio::test]
async fn a_consumer_worker_process_prunes_old_records() {
    let mut b = backbone().await;
    b.env
        .insert("IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS".into(), "86400".into());
    insert_records(&b.db, "old", 1_000, 2 * DAY).await;
    insert_records(&b.db, "fresh", 100, Duration::from_secs(3600)).await;

    let mut worker = KillOnDrop(b.command(WORKER).arg("seat-creation").spawn().unwrap());
    wait_for("the worker prunes the old records", Duration::from_secs(30), || async {
        count(&b.db, "old").await == 0
    })
    .await;
    assert_eq!(count(&b.db, "fresh").await, 100, "records inside the retention stay");

    signal(&worker, "TERM");
    let status = wait_exit(&mut worker, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
}
