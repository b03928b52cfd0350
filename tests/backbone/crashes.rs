//! Crashes of real processes: a worker killed mid-way, Redis killed under load, SIGTERM in the
//! middle of a batch.

use std::process::Stdio;
use std::time::Duration;

use imticket::events::{Envelope, Stream};
use imticket::infra::postgres::outbox;
use imticket::infra::publisher;
use imticket::stream::relay;
use tokio_util::sync::CancellationToken;

use crate::support::*;

fn spawn_consumer(b: &Backbone, key: &str, group: &str, delay_ms: u64, extra: &[(&str, &str)]) -> KillOnDrop {
    let mut cmd = b.command(PROBE);
    cmd.args([
        "--stream-key",
        key,
        "--group",
        group,
        "--handler",
        "probe",
        "--delay-ms",
        &delay_ms.to_string(),
    ])
    .envs(extra.iter().copied())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    KillOnDrop(cmd.spawn().unwrap())
}

/// (consumer name, pending) of every consumer of the group; none before the group exists.
async fn consumers(b: &Backbone, key: &str, group: &str) -> Vec<(String, u64)> {
    let stats = imticket::infra::redis::streams::stats(&mut b.conn().await, key)
        .await
        .unwrap()
        .unwrap();
    let Some(group) = stats.groups.into_iter().find(|g| g.name == group) else {
        return Vec::new();
    };
    group.consumers.into_iter().map(|c| (c.name, c.pending)).collect()
}

#[tokio::test]
async fn ten_thousand_events_through_three_workers_survive_a_kill_9_exactly_once() {
    let b = backbone().await;
    let key = b.key("crash");
    b.publish(&key, 10_000).await;
    let settings = [
        ("IMTICKET_STREAM_CLAIM_IDLE_MS", "2000"),
        ("IMTICKET_STREAM_BATCH_SIZE", "100"),
        ("IMTICKET_STREAM_BLOCK_MS", "100"),
        ("IMTICKET_STREAM_MAINTENANCE_SECONDS", "1"),
        ("IMTICKET_STREAM_CONSUMER_CLEANUP_IDLE_SECONDS", "2"),
    ];
    // The victim reads a batch and sits on it (a handler that hangs), so it certainly dies
    // holding entries; the two survivors work at the normal pace meanwhile. Killing a worker at
    // a random moment instead missed the case now and then: between an ack and its next read a
    // worker holds nothing.
    let mut victim = spawn_consumer(&b, &key, "g", 600_000, &settings);
    let workers: Vec<KillOnDrop> = (0..2).map(|_| spawn_consumer(&b, &key, "g", 40, &settings)).collect();
    let victim_pid = victim.id();
    let victim_name = format!("-{victim_pid}-");
    let held_by_victim = || async {
        consumers(&b, &key, "g")
            .await
            .iter()
            .filter(|(name, _)| name.contains(&victim_name))
            .map(|(_, pending)| pending)
            .sum::<u64>()
    };
    wait_for("the victim holds a batch", Duration::from_secs(60), || async {
        held_by_victim().await > 0
    })
    .await;
    victim.kill().unwrap();
    victim.wait().unwrap();
    // Its entries are claimable only after 2 s idle, far longer than the kill took.
    let orphaned = held_by_victim().await;
    assert!(
        orphaned > 0,
        "the killed worker died holding entries (the case under test)"
    );

    wait_for(
        "every event is processed and nothing is pending",
        Duration::from_secs(120),
        || async { b.effects("g").await.1 == 10_000 && b.pending(&key, "g").await == 0 },
    )
    .await;
    assert_eq!(
        b.effects("g").await,
        (10_000, 10_000),
        "every event took effect exactly once"
    );
    for (name, pending) in consumers(&b, &key, "g").await {
        assert_eq!(pending, 0, "{name} still owns entries");
    }
    // The survivors' housekeeping timer trims what every group acked and removes the dead
    // consumer, which no longer owns anything.
    wait_for(
        "the stream is trimmed and the dead consumer removed",
        Duration::from_secs(30),
        || async {
            let victim_gone = !consumers(&b, &key, "g")
                .await
                .iter()
                .any(|(name, _)| name.contains(&victim_name));
            victim_gone && b.xlen(&key).await == 0
        },
    )
    .await;
    assert_eq!(consumers(&b, &key, "g").await.len(), 2, "the live consumers stay");
    for mut worker in workers {
        signal(&worker, "TERM");
        assert_eq!(wait_exit(&mut worker, Duration::from_secs(30)).code(), Some(0));
    }
}

#[tokio::test]
async fn kill_9_of_redis_under_load_keeps_streams_groups_and_pending_lists_and_loses_nothing_committed() {
    let mut b = backbone().await;
    let key = b.keys.stream(Stream::Expiry);
    let stop = CancellationToken::new();
    let mut settings = fast_settings();
    settings.claim_idle = Duration::from_millis(500);

    // Consumers and a relay run in this process; events are committed to the outbox and
    // published on the fast path, as a use case does.
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let mut consumer = b.consumer(&key, "expiry", b.probe("expiry"), settings.clone());
        consumer.ensure_group().await.unwrap();
        tasks.push(tokio::spawn(consumer.run(stop.clone())));
    }
    let relay_settings = imticket::config::RelaySettings {
        batch_size: 200,
        idle_wait: Duration::from_millis(50),
        retention: Duration::from_secs(3600),
        housekeeping_interval: Duration::from_secs(3600),
        groups: Default::default(),
    };
    tasks.push(tokio::spawn(relay::run(
        b.deps.db.clone(),
        b.deps.redis.clone(),
        b.keys.clone(),
        relay_settings,
        stop.clone(),
    )));
    let producer = {
        let (db, redis, keys) = (b.deps.db.clone(), b.deps.redis.clone(), b.keys.clone());
        tokio::spawn(async move {
            for _ in 0..60 {
                let mut tx = db.begin().await.unwrap();
                let mut ids = Vec::new();
                for i in 0..50 {
                    ids.push(
                        outbox::append_envelope(
                            &mut tx,
                            Stream::Expiry,
                            &Envelope::new("probe.ping", serde_json::json!({ "n": i })),
                        )
                        .await
                        .unwrap(),
                    );
                }
                tx.commit().await.unwrap();
                publisher::publish_now(&db, &redis, &keys, &ids).await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };

    // An inspector group holds ten entries pending: its pending list must survive the crash.
    wait_for("some events are processed", Duration::from_secs(30), || async {
        b.effects("expiry").await.1 >= 500
    })
    .await;
    b.read_without_ack(&key, "inspector", "looker", 10).await;
    let pending_before = b.pending_ids(&key, "inspector").await;

    b.redis.kill(); // kill -9, mid-load
    tokio::time::sleep(Duration::from_millis(300)).await; // the producer keeps committing meanwhile
    b.redis.restart(); // same directory: the AOF is replayed

    producer.await.unwrap();
    wait_for(
        "every committed event is processed once",
        Duration::from_secs(90),
        || async { b.effects("expiry").await.1 == 3000 && b.pending(&key, "expiry").await == 0 },
    )
    .await;
    stop.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        b.effects("expiry").await,
        (3000, 3000),
        "nothing committed was lost or doubled"
    );
    let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&b.db)
        .await
        .unwrap();
    assert_eq!(unpublished, 0);

    assert_eq!(pending_before.len(), 10);
    assert_eq!(
        b.pending_ids(&key, "inspector").await,
        pending_before,
        "the pending list survived kill -9"
    );
}

#[tokio::test]
async fn sigterm_during_a_batch_finishes_and_acks_it_then_exits_zero() {
    let b = backbone().await;
    let key = b.key("graceful");
    b.publish(&key, 50).await;
    let mut worker = spawn_consumer(&b, &key, "g", 4000, &[("IMTICKET_STREAM_BATCH_SIZE", "100")]);
    // The batch is delivered (pending) and its handlers are in their 4 s of work.
    wait_for("the worker has a batch in flight", Duration::from_secs(30), || async {
        b.pending(&key, "g").await == 50
    })
    .await;
    assert_eq!(b.effects("g").await.0, 0, "still in flight when the signal arrives");

    signal(&worker, "TERM");
    let status = wait_exit(&mut worker, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert_eq!(b.effects("g").await, (50, 50), "the in-flight batch was finished");
    assert_eq!(b.pending(&key, "g").await, 0, "and acked before exit");
}
