//! The transactional outbox: fast-path publishing, the relay, crashes between commit and XADD,
//! Redis down at commit time, duplicate publishes, concurrent relays and pruning.

use std::time::Duration;

use imticket::events::{Envelope, Stream};
use imticket::infra::postgres::outbox;
use imticket::infra::publisher;

use crate::support::*;

async fn commit_events(b: &Backbone, n: usize) -> Vec<(i64, Envelope)> {
    let mut tx = b.db.begin().await.unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let envelope = Envelope::new("probe.ping", serde_json::json!({ "n": i }));
        out.push((
            outbox::append_envelope(&mut tx, Stream::Expiry, &envelope)
                .await
                .unwrap(),
            envelope,
        ));
    }
    tx.commit().await.unwrap();
    out
}

async fn unpublished(b: &Backbone) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&b.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_fast_path_publishes_right_after_commit() {
    let b = backbone().await;
    let events = commit_events(&b, 3).await;
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    publisher::publish_now(&b.deps.db, &b.deps.redis, &b.keys, &ids).await;
    assert_eq!(unpublished(&b).await, 0);
    let key = b.keys.stream(Stream::Expiry);
    assert_eq!(b.xlen(&key).await, 3);
    // The entry carries the envelope's fields, readable with redis-cli.
    let entries: redis::Value = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    let text = format!("{entries:?}");
    for (_, e) in &events {
        assert!(text.contains(&e.event_id.to_string()));
    }
    // Publishing the same rows again does nothing: they are no longer unpublished.
    publisher::publish_now(&b.deps.db, &b.deps.redis, &b.keys, &ids).await;
    assert_eq!(b.xlen(&key).await, 3);
}

/// A process that died between commit and XADD leaves unpublished rows; the relay role of a
/// real worker process publishes them.
#[tokio::test]
async fn the_outbox_relay_worker_publishes_what_a_crash_left_behind() {
    let b = backbone().await;
    commit_events(&b, 25).await; // committed, never published: what a crash after commit leaves
    assert_eq!(unpublished(&b).await, 25);

    let mut worker = KillOnDrop(b.command(WORKER).arg("outbox-relay").spawn().unwrap());
    wait_for(
        "the relay publishes every committed event",
        Duration::from_secs(30),
        || async { unpublished(&b).await == 0 },
    )
    .await;
    assert_eq!(b.xlen(&b.keys.stream(Stream::Expiry)).await, 25);
    let status = b.admin(&["outbox", "status"]);
    assert!(
        status.contains("unpublished          0") && status.contains("published (retained) 25"),
        "{status}"
    );

    signal(&worker, "TERM");
    let status = wait_exit(&mut worker, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(worker.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test]
async fn events_committed_while_redis_is_down_are_published_when_it_is_back() {
    let mut b = backbone().await;
    b.redis.kill();
    let events = commit_events(&b, 5).await;
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    publisher::publish_now(&b.deps.db, &b.deps.redis, &b.keys, &ids).await; // fails quietly: the commit stands
    assert_eq!(unpublished(&b).await, 5);
    assert!(
        publisher::publish_oldest(&b.deps.db, &b.deps.redis, &b.keys, 100)
            .await
            .is_err(),
        "the relay reports Redis down"
    );
    assert_eq!(
        unpublished(&b).await,
        5,
        "a failed round publishes nothing and marks nothing"
    );

    b.redis.restart();
    wait_for(
        "the relay publishes once Redis is back",
        Duration::from_secs(20),
        || async {
            publisher::publish_oldest(&b.deps.db, &b.deps.redis, &b.keys, 100)
                .await
                .is_ok()
                && unpublished(&b).await == 0
        },
    )
    .await;
    assert_eq!(b.xlen(&b.keys.stream(Stream::Expiry)).await, 5);
}

/// The relay died after XADD and before marking the row: the event is published twice, and
/// takes effect once.
#[tokio::test]
async fn a_duplicate_publish_takes_effect_once() {
    let b = backbone().await;
    let events = commit_events(&b, 4).await;
    assert_eq!(
        publisher::publish_oldest(&b.deps.db, &b.deps.redis, &b.keys, 100)
            .await
            .unwrap(),
        4
    );
    sqlx::query("UPDATE outbox SET published_at = NULL, stream_id = NULL WHERE id = $1")
        .bind(events[0].0)
        .execute(&b.db)
        .await
        .unwrap();
    assert_eq!(
        publisher::publish_oldest(&b.deps.db, &b.deps.redis, &b.keys, 100)
            .await
            .unwrap(),
        1
    );
    let key = b.keys.stream(Stream::Expiry);
    assert_eq!(b.xlen(&key).await, 5, "the event is in the stream twice");

    let mut consumer = b.consumer(&key, "expiry", b.probe("expiry"), fast_settings());
    let report = drain(&mut consumer).await;
    assert_eq!(report.acked, 5, "both copies are acked");
    assert_eq!(b.effects("expiry").await, (4, 4), "and the duplicate had no effect");
}

#[tokio::test]
async fn concurrent_relays_publish_each_event_once() {
    let b = backbone().await;
    let events = commit_events(&b, 2000).await;
    let relays = (0..4).map(|_| {
        let (db, redis, keys) = (b.deps.db.clone(), b.deps.redis.clone(), b.keys.clone());
        tokio::spawn(async move {
            let mut total = 0;
            loop {
                match publisher::publish_oldest(&db, &redis, &keys, 100).await.unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        })
    });
    let per_relay: Vec<usize> = futures_util::future::join_all(relays)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(per_relay.iter().sum::<usize>(), 2000, "{per_relay:?}");
    let key = b.keys.stream(Stream::Expiry);
    assert_eq!(b.xlen(&key).await, 2000);
    let mut consumer = b.consumer(&key, "expiry", b.probe("expiry"), fast_settings());
    drain(&mut consumer).await;
    assert_eq!(b.effects("expiry").await, (2000, 2000));
    assert_eq!(events.len(), 2000);
}

#[tokio::test]
async fn pruning_removes_old_published_rows_only() {
    let b = backbone().await;
    commit_events(&b, 3).await;
    publisher::publish_oldest(&b.deps.db, &b.deps.redis, &b.keys, 2)
        .await
        .unwrap(); // two published, one not
    sqlx::query("UPDATE outbox SET published_at = now() - interval '2 days' WHERE published_at IS NOT NULL")
        .execute(&b.db)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET occurred_at = now() - interval '3 days'")
        .execute(&b.db)
        .await
        .unwrap();
    assert_eq!(
        publisher::prune(&b.deps.db, Duration::from_secs(86_400)).await.unwrap(),
        2
    );
    assert_eq!(
        unpublished(&b).await,
        1,
        "an unpublished row is never pruned, however old"
    );
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&b.db)
        .await
        .unwrap();
    assert_eq!(total, 1);
}

/// Redis killed and back without its files (or without its last second, AOF `everysec`): the
/// stream entries are gone though their rows say published. A relay that finds a Redis it has
/// not published to before publishes again every event not yet processed by its group.
#[tokio::test]
async fn a_redis_that_lost_its_data_gets_every_unprocessed_event_again() {
    let mut b = backbone().await;
    let events = commit_events(&b, 6).await;
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    publisher::publish_now(&b.deps.db, &b.deps.redis, &b.keys, &ids).await;
    let key = b.keys.stream(Stream::Expiry);
    assert_eq!(b.xlen(&key).await, 6);
    // Two of them were handled already by every group that must read them (the expiry worker
    // and statistics); a third only by the expiry worker, so statistics still needs it.
    let processed: Vec<uuid::Uuid> = events[..2].iter().map(|(_, e)| e.event_id).collect();
    for group in ["expiry", "statistics"] {
        sqlx::query("INSERT INTO processed_events (event_id, consumer_group) SELECT unnest($1::uuid[]), $2")
            .bind(&processed)
            .bind(group)
            .execute(&b.db)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO processed_events (event_id, consumer_group) VALUES ($1, 'expiry')")
        .bind(events[2].1.event_id)
        .execute(&b.db)
        .await
        .unwrap();
    let mut watch = publisher::RedisWatch::default();
    assert_eq!(
        watch.check(&b.deps.db, &b.deps.redis, &b.keys).await.unwrap(),
        0,
        "the first Redis seen"
    );

    // Every file lost: a Redis with a new run id and no data.
    b.redis.kill();
    for lost in ["appendonlydir", "dump.rdb"] {
        let path = b.redis.dir().join(lost);
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&path);
    }
    b.redis.restart();
    // The test's own connection finds Redis back on its next command.
    while redis::cmd("PING")
        .query_async::<String>(&mut b.conn().await)
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.xlen(&key).await, 0, "the stream is gone");
    let marked = loop {
        match watch.check(&b.deps.db, &b.deps.redis, &b.keys).await {
            Ok(marked) => break marked,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await, // reconnecting
        }
    };
    assert_eq!(marked, 4, "the unprocessed events are marked for publishing again");
    assert_eq!(
        publisher::publish_oldest(&b.deps.db, &b.deps.redis, &b.keys, 100)
            .await
            .unwrap(),
        4
    );
    let entries: Vec<imticket::infra::redis::reply::StreamEntry> = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    let again: Vec<uuid::Uuid> = entries
        .iter()
        .map(|e| e.field("event_id").unwrap().parse().unwrap())
        .collect();
    let expected: Vec<uuid::Uuid> = events[2..].iter().map(|(_, e)| e.event_id).collect();
    assert_eq!(again, expected);
    // The same Redis again: nothing more.
    assert_eq!(watch.check(&b.deps.db, &b.deps.redis, &b.keys).await.unwrap(), 0);
    let mut fresh_relay = publisher::RedisWatch::default();
    assert_eq!(fresh_relay.check(&b.deps.db, &b.deps.redis, &b.keys).await.unwrap(), 0);
}
