//! The consumer runtime in-process, drained deterministically with `process_batch`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imticket::events::Envelope;
use imticket::infra::redis::streams;
use imticket::stream::probe::ProbeHandler;
use imticket::stream::{Handler, Outcome, dead_letter, maintenance};

use crate::support::*;

#[tokio::test]
async fn events_are_handled_once_and_acked() {
    let b = backbone().await;
    let key = b.key("orders");
    let published = b.publish(&key, 250).await;
    let mut consumer = b.consumer(&key, "g", b.probe("g"), fast_settings());
    let report = drain(&mut consumer).await;
    assert_eq!((report.read, report.acked, report.dead_lettered), (250, 250, 0));
    assert_eq!(b.effects("g").await, (250, 250));
    assert_eq!(b.pending(&key, "g").await, 0);

    // A duplicate of an event already processed (same event_id, new entry) is acked without
    // a second effect.
    let mut conn = b.conn().await;
    let original: redis::Value = redis::cmd("XRANGE")
        .arg(&key)
        .arg(&published[7].0)
        .arg(&published[7].0)
        .query_async(&mut conn)
        .await
        .unwrap();
    let fields: Vec<(String, String)> = match original {
        redis::Value::Array(mut entries) => match entries.remove(0) {
            redis::Value::Array(mut parts) => match parts.remove(1) {
                redis::Value::Array(flat) => flat
                    .chunks(2)
                    .map(|p| match (&p[0], &p[1]) {
                        (redis::Value::BulkString(k), redis::Value::BulkString(v)) => (
                            String::from_utf8(k.clone()).unwrap(),
                            String::from_utf8(v.clone()).unwrap(),
                        ),
                        _ => panic!("unexpected field"),
                    })
                    .collect(),
                _ => panic!("no fields"),
            },
            _ => panic!("no entry"),
        },
        _ => panic!("no reply"),
    };
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg(&fields)
        .query_async(&mut conn)
        .await
        .unwrap();
    let report = drain(&mut consumer).await;
    assert_eq!((report.read, report.acked), (1, 1));
    assert_eq!(b.effects("g").await, (250, 250), "the duplicate had no effect");
}

#[tokio::test]
async fn reading_ahead_handles_every_entry_once_and_leaves_nothing_pending() {
    let b = backbone().await;
    let key = b.key("orders");
    b.publish(&key, 1_050).await;
    let mut consumer = b.consumer(&key, "g", b.probe("g"), fast_settings());
    let (mut read, mut most_ahead) = (0, 0);
    loop {
        let report = consumer.process_batch_reading_ahead().await.unwrap();
        read += report.read;
        let ahead = consumer.read_ahead();
        most_ahead = most_ahead.max(ahead);
        // What was read ahead is delivered to this consumer and pending under it, not lost.
        assert_eq!(b.pending(&key, "g").await, ahead as i64);
        if report.is_idle() {
            break;
        }
    }
    assert_eq!(most_ahead, 100, "a full batch was read ahead while another was handled");
    assert_eq!(read, 1_050);
    assert_eq!(b.effects("g").await, (1_050, 1_050));
    assert_eq!((b.pending(&key, "g").await, consumer.read_ahead()), (0, 0));
}

#[tokio::test]
async fn on_shutdown_a_batch_read_ahead_is_handled_and_nothing_more_is_read() {
    let b = backbone().await;
    let key = b.key("orders");
    b.publish(&key, 300).await;
    let mut consumer = b.consumer(&key, "g", b.probe("g"), fast_settings());
    let report = consumer.process_batch_reading_ahead().await.unwrap();
    assert_eq!((report.read, report.acked, consumer.read_ahead()), (100, 100, 100));
    assert_eq!(b.pending(&key, "g").await, 100);

    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), consumer.run(stop))
        .await
        .expect("run returns after handling the batch read ahead");
    assert_eq!(b.effects("g").await, (200, 200));
    assert_eq!(
        b.pending(&key, "g").await,
        0,
        "the batch read ahead was acked before run returned"
    );

    // The last 100 entries were never read: another consumer gets exactly those.
    let mut other = b.consumer(&key, "g", b.probe("g"), fast_settings());
    assert_eq!(drain(&mut other).await.read, 100);
    assert_eq!(b.effects("g").await, (300, 300));
}

#[tokio::test]
async fn an_unparsable_entry_is_dead_lettered_at_once_and_the_stream_flows_on() {
    let b = backbone().await;
    let key = b.key("orders");
    b.publish(&key, 10).await;
    let mut conn = b.conn().await;
    let bad_id: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("type")
        .arg("probe.ping")
        .arg("payload")
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    b.publish(&key, 10).await;

    let mut consumer = b.consumer(&key, "g", b.probe("g"), fast_settings());
    let report = drain(&mut consumer).await;
    assert_eq!((report.acked, report.dead_lettered, report.retried), (20, 1, 0));
    assert_eq!(b.effects("g").await, (20, 20));
    assert_eq!(b.pending(&key, "g").await, 0, "the poison entry is acked on its source");

    let letters = dead_letter::list(&mut conn, &b.keys, None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (
            letter.source_stream.as_str(),
            letter.source_id.as_str(),
            letter.group.as_str()
        ),
        (key.as_str(), bad_id.as_str(), "g")
    );
    assert_eq!(letter.deliveries, 1, "dead-lettered on the first delivery");
    assert!(letter.error.contains("missing field `event_id`"), "{}", letter.error);
    assert_eq!(letter.original_field("payload"), Some("{not json"));
}

/// Fails the events whose payload says `poison` while `failing` is set, recording each attempt.
struct Flaky {
    inner: ProbeHandler,
    failing: Arc<AtomicBool>,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl Handler for Flaky {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let poison = |e: &Envelope| e.payload.get("poison").is_some();
        let mut outcomes = self
            .inner
            .handle(&batch.iter().filter(|e| !poison(e)).cloned().collect::<Vec<_>>())
            .await
            .into_iter();
        let mut healthy = Vec::new();
        let answers: Vec<Option<Outcome>> = batch
            .iter()
            .map(|e| {
                if poison(e) {
                    self.attempts.lock().unwrap().push(Instant::now());
                    if self.failing.load(Ordering::SeqCst) {
                        return Some(Outcome::Retry("database unavailable (simulated)".into()));
                    }
                    healthy.push(e.clone());
                    None
                } else {
                    outcomes.next()
                }
            })
            .collect();
        let mut healed = self.inner.handle(&healthy).await.into_iter();
        answers
            .into_iter()
            .map(|a| a.or_else(|| healed.next()).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_transient_failure_backs_off_then_dead_letters_and_replay_processes_it_once() {
    let b = backbone().await;
    let key = b.key("orders");
    let failing = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let flaky = Flaky {
        inner: b.probe("g"),
        failing: failing.clone(),
        attempts: attempts.clone(),
    };
    let mut settings = fast_settings(); // max 3 deliveries
    settings.claim_idle = Duration::from_millis(500);
    let mut consumer = b.consumer(&key, "g", flaky, settings.clone());

    let poison = Envelope::new("probe.ping", serde_json::json!({"poison": true}));
    let mut conn = b.conn().await;
    b.xadd(&key, &poison).await;

    // Keep publishing while the poison entry fails: the stream must keep flowing.
    let mut published = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.publish(&key, 5).await;
        published += 5;
        consumer.process_batch().await.unwrap();
        if !dead_letter::list(&mut conn, &b.keys, None, 1).await.unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the failing entry was never dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drain(&mut consumer).await;
    assert_eq!(
        b.effects("g").await,
        (published, published),
        "healthy events flowed while one failed"
    );

    // Three deliveries, each after a longer wait: claim_idle × 2^(n−1).
    let times = attempts.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "max_deliveries is 3");
    // The back-off runs from each *delivery*; the handler starts a little after it, so the
    // gaps between handler starts are allowed that latency (100 ms) below the back-off.
    let latency = Duration::from_millis(100);
    let (gap1, gap2) = (times[1] - times[0], times[2] - times[1]);
    assert!(gap1 + latency >= settings.backoff(1), "{gap1:?}");
    assert!(gap2 + latency >= settings.backoff(2), "{gap2:?}");
    assert!(
        gap2 > gap1 + settings.claim_idle / 2,
        "the wait grows: {gap1:?} then {gap2:?}"
    );

    let letter = dead_letter::list(&mut conn, &b.keys, None, 10).await.unwrap().remove(0);
    assert_eq!(letter.deliveries, 3);
    assert!(letter.error.contains("database unavailable"), "{}", letter.error);
    assert_eq!(
        letter.original_field("event_id"),
        Some(poison.event_id.to_string().as_str())
    );
    assert_eq!(b.pending(&key, "g").await, 0);

    // The cause goes away; the operator replays the dead letter with the CLI.
    failing.store(false, Ordering::SeqCst);
    let listed = b.admin(&["dlq", "list", "--stream", "orders"]);
    assert!(
        listed.contains(&letter.id) && listed.contains("1 dead letter(s)"),
        "{listed}"
    );
    let shown = b.admin(&["dlq", "show", &letter.id]);
    assert!(
        shown.contains("database unavailable") && shown.contains(&poison.event_id.to_string()),
        "{shown}"
    );
    let replayed = b.admin(&["dlq", "replay", &letter.id]);
    assert!(replayed.contains("1 dead letter(s) replayed"), "{replayed}");
    drain(&mut consumer).await;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM probe_effects WHERE event_id = $1")
        .bind(poison.event_id)
        .fetch_one(&b.db)
        .await
        .unwrap();
    assert_eq!(applied, 1, "processed exactly once after the replay");
    assert!(
        dead_letter::list(&mut conn, &b.keys, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Replaying it again (say, a second operator) has no second effect either.
    b.xadd(&key, &poison).await;
    drain(&mut consumer).await;
    assert_eq!(b.effects("g").await, (published + 1, published + 1));
}

#[tokio::test]
async fn an_entry_left_by_a_dead_consumer_is_reclaimed_with_its_delivery_counted() {
    let b = backbone().await;
    let key = b.key("orders");
    b.publish(&key, 5).await;
    // A consumer that read and died: its entries stay pending under its name.
    assert_eq!(b.read_without_ack(&key, "g", "dead-one", 5).await, 5);

    let mut settings = fast_settings();
    settings.claim_idle = Duration::from_secs(2);
    let mut survivor = b.consumer(&key, "g", b.probe("g"), settings);
    let early = survivor.process_batch().await.unwrap();
    assert_eq!(early.reclaimed, 0, "not claimable before claim_idle");
    tokio::time::sleep(Duration::from_millis(2100)).await; // past claim_idle: the precondition of the test
    let report = drain(&mut survivor).await;
    assert_eq!((report.reclaimed, report.acked), (5, 5));
    assert_eq!(b.effects("g").await, (5, 5));
    assert_eq!(b.pending(&key, "g").await, 0);
}

#[tokio::test]
async fn a_pending_entry_whose_stream_entry_was_deleted_is_cleared_without_a_handler_call() {
    let b = backbone().await;
    let key = b.key("orders");
    let published = b.publish(&key, 3).await;
    assert_eq!(b.read_without_ack(&key, "g", "dead-one", 3).await, 3);
    // Someone deleted one of the pending entries (XDEL by hand, or a foreign trim).
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg(&published[1].0)
        .query_async(&mut b.conn().await)
        .await
        .unwrap();

    let mut settings = fast_settings();
    settings.claim_idle = Duration::from_millis(100);
    let mut survivor = b.consumer(&key, "g", b.probe("g"), settings);
    tokio::time::sleep(Duration::from_millis(150)).await; // past claim_idle: the precondition
    let report = drain(&mut survivor).await;
    assert_eq!((report.reclaimed, report.acked, report.dead_lettered), (2, 2, 0));
    assert_eq!(b.effects("g").await, (2, 2));
    assert_eq!(b.pending(&key, "g").await, 0, "the deleted entry left the pending list");
}

#[tokio::test]
async fn trimming_never_removes_what_a_slow_group_has_not_acked() {
    let b = backbone().await;
    let key = b.key("orders");
    let published = b.publish(&key, 100).await;
    let mut fast = b.consumer(&key, "fast", b.probe("fast"), fast_settings());
    drain(&mut fast).await;

    // The slow group acks 30 entries and holds the next 20 pending (its handler is stuck).
    let mut slow_settings = fast_settings();
    slow_settings.batch_size = 30;
    let mut slow = b.consumer(&key, "slow", b.probe("slow"), slow_settings.clone());
    slow.process_batch().await.unwrap();
    let mut conn = b.conn().await;
    b.read_without_ack(&key, "slow", "stuck", 20).await;
    // While a third group has not read anything yet, nothing may go.
    imticket::infra::redis::streams::create_group(&mut conn, &key, "never-read")
        .await
        .unwrap();
    assert_eq!(
        maintenance::trim(&mut conn, &key).await.unwrap(),
        0,
        "a group that read nothing keeps every entry"
    );
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&key)
        .arg("never-read")
        .query_async(&mut conn)
        .await
        .unwrap();

    let trimmed = maintenance::trim(&mut conn, &key).await.unwrap();
    assert_eq!(trimmed, 30, "exactly the entries every group acked");
    let first: redis::Value = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        format!("{first:?}").contains(&published[30].0),
        "the slow group's oldest pending entry is the first kept"
    );

    // The slow group recovers and still finds every entry it had not acked.
    let mut recovered = b.consumer(&key, "slow", b.probe("slow"), fast_settings());
    tokio::time::sleep(Duration::from_millis(250)).await; // past claim_idle of the stuck entries
    drain(&mut recovered).await;
    assert_eq!(b.effects("slow").await, (100, 100));
    assert_eq!(maintenance::trim(&mut conn, &key).await.unwrap(), 70);
    assert_eq!(b.xlen(&key).await, 0);
}

#[tokio::test]
async fn idle_consumers_without_pending_entries_are_removed_and_others_never() {
    let b = backbone().await;
    let key = b.key("orders");
    b.publish(&key, 3).await;
    let mut conn = b.conn().await;
    b.read_without_ack(&key, "g", "holder", 3).await;
    // Consumers that got nothing (Redis creates a reading consumer only when it receives entries).
    for name in ["empty-handed", "me"] {
        let _: i64 = redis::cmd("XGROUP")
            .arg("CREATECONSUMER")
            .arg(&key)
            .arg("g")
            .arg(name)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let removed = streams::remove_dead_consumers(&mut conn, &key, "g", Duration::from_secs(60), "me")
        .await
        .unwrap();
    assert_eq!(removed, 0, "nobody has been idle for a minute");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let removed = streams::remove_dead_consumers(&mut conn, &key, "g", Duration::from_millis(10), "me")
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let stats = streams::stats(&mut conn, &key).await.unwrap().unwrap();
    let mut names: Vec<&str> = stats.groups[0].consumers.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["holder", "me"],
        "the consumer with pending entries and the caller stay"
    );
    assert_eq!(b.pending(&key, "g").await, 3);
}

#[tokio::test]
async fn maintenance_before_the_stream_or_group_exists_finds_nothing_to_do_and_other_errors_still_surface() {
    let b = backbone().await;
    let key = b.key("not-yet");
    let mut conn = b.conn().await;
    let idle = Duration::from_millis(1);
    // Maintenance starts beside the consumer that creates the stream and its group.
    assert_eq!(
        streams::remove_dead_consumers(&mut conn, &key, "g", idle, "me")
            .await
            .unwrap(),
        0
    );
    assert_eq!(maintenance::trim(&mut conn, &key).await.unwrap(), 0);
    b.publish(&key, 1).await;
    assert_eq!(
        streams::remove_dead_consumers(&mut conn, &key, "g", idle, "me")
            .await
            .unwrap(),
        0
    );
    assert_eq!(b.xlen(&key).await, 1, "nothing trimmed without a group");

    let not_a_stream = b.key("a-string");
    let _: () = redis::cmd("SET")
        .arg(&not_a_stream)
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = streams::remove_dead_consumers(&mut conn, &not_a_stream, "g", idle, "me")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("WRONGTYPE"), "{err:#}");
}

/// `imticket-admin streams --json`'s entry for `key`.
fn stream_json(b: &Backbone, key: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(&b.admin(&["streams", "--json"])).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn operators_see_streams_groups_lag_and_metrics() {
    let b = backbone().await;
    let key = b.keys.stream(imticket::events::Stream::Payments);
    b.publish(&key, 10).await;
    let mut consumer = b.consumer(&key, "payment", b.probe("payment"), fast_settings());
    drain(&mut consumer).await;
    b.publish(&key, 4).await;

    let text = b.admin(&["streams"]);
    assert!(text.contains(&key), "{text}");
    assert!(text.contains("group payment") && text.contains("lag 4"), "{text}");
    assert!(text.contains(consumer.name()), "{text}");
    let payments = stream_json(&b, &key);
    assert_eq!(payments["length"], 14);
    assert_eq!(payments["groups"][0]["lag"], 4);

    // Deleting an undelivered entry makes Redis unable to compute the lag: reported as
    // unknown (null), never as 0.
    let last: redis::Value = redis::cmd("XREVRANGE")
        .arg(&key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(2)
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    let second_last = match last {
        redis::Value::Array(entries) => match &entries[1] {
            redis::Value::Array(parts) => match &parts[0] {
                redis::Value::BulkString(id) => String::from_utf8(id.clone()).unwrap(),
                _ => panic!(),
            },
            _ => panic!(),
        },
        _ => panic!(),
    };
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg(&second_last)
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    let payments = stream_json(&b, &key);
    assert!(payments["groups"][0]["lag"].is_null(), "{payments}");
    assert!(b.admin(&["streams"]).contains("lag unknown"));

    let stats = streams::stats(&mut b.conn().await, &key).await.unwrap().unwrap();
    maintenance::record_metrics("payments", &stats);
    let rendered = imticket::telemetry::metrics_handle().render();
    assert!(
        rendered.contains(r#"stream_events_total{stream=""#) && rendered.contains(r#"outcome="acked""#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"stream_group_lag_known{stream="payments",group="payment"} 0"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"stream_group_lag{stream="payments",group="payment"} NaN"#),
        "{rendered}"
    );
    assert!(
        rendered.contains("stream_handler_duration_seconds_bucket"),
        "{rendered}"
    );
}

/// Makes the pending entries `ids` look delivered `deliveries` times and idle for `idle`
/// (XCLAIM's `IDLE` and `RETRYCOUNT`), as if they had been retried that often: a back-off
/// state set up without waiting for it.
async fn set_pending_state(b: &Backbone, key: &str, group: &str, ids: &[String], idle: Duration, deliveries: u32) {
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(key)
        .arg(group)
        .arg("dead-one")
        .arg(0)
        .arg(ids)
        .arg("IDLE")
        .arg(idle.as_millis() as u64)
        .arg("RETRYCOUNT")
        .arg(deliveries)
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
}

/// Settings for the reclaim-paging tests: small batches, back-offs far longer than the test.
fn paging_settings(batch_size: usize) -> imticket::stream::ConsumerSettings {
    let mut settings = fast_settings();
    settings.batch_size = batch_size;
    settings.backoff_cap = Duration::from_secs(600);
    settings.max_deliveries = 10;
    settings
}

#[tokio::test]
async fn a_due_entry_behind_a_full_batch_of_backing_off_entries_is_reclaimed_in_one_round() {
    let b = backbone().await;
    let key = b.key("orders");
    let settings = paging_settings(5);
    // Twice a batch of entries that keep failing, then one a dead consumer left behind.
    let published = b.publish(&key, 11).await;
    assert_eq!(b.read_without_ack(&key, "g", "dead-one", 11).await, 11);
    let (backing_off, due) = published.split_at(10);
    let backing_off: Vec<String> = backing_off.iter().map(|(id, _)| id.clone()).collect();
    // Delivered 8 times: not due before claim_idle × 2^7 = 25.6 s; idle 1 s now.
    set_pending_state(&b, &key, "g", &backing_off, Duration::from_secs(1), 8).await;
    // Delivered once and idle 1 s: due since claim_idle (200 ms).
    set_pending_state(&b, &key, "g", &[due[0].0.clone()], Duration::from_secs(1), 1).await;

    let mut consumer = b.consumer(&key, "g", b.probe("g"), settings);
    let report = consumer.process_batch().await.unwrap();
    assert_eq!(
        (report.reclaimed, report.acked),
        (1, 1),
        "the due entry is found behind the backing-off ones"
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM probe_effects WHERE event_id = $1")
        .bind(due[0].1)
        .fetch_one(&b.db)
        .await
        .unwrap();
    assert_eq!(applied, 1);
    assert_eq!(
        b.pending_ids(&key, "g").await,
        backing_off,
        "the backing-off entries wait for their back-off"
    );
}

#[tokio::test]
async fn a_pending_list_longer_than_one_rounds_scan_is_walked_over_several_rounds() {
    use imticket::stream::RECLAIM_PAGES_PER_ROUND;
    let b = backbone().await;
    let key = b.key("orders");
    let batch = 2;
    let settings = paging_settings(batch);
    // More backing-off entries than two rounds examine, then a due one.
    let per_round = RECLAIM_PAGES_PER_ROUND * batch;
    let n = 2 * per_round + 1;
    let published = b.publish(&key, n + 1).await;
    assert_eq!(b.read_without_ack(&key, "g", "dead-one", n + 1).await, n + 1);
    let ids: Vec<String> = published.iter().map(|(id, _)| id.clone()).collect();
    set_pending_state(&b, &key, "g", &ids[..n], Duration::from_secs(1), 8).await;
    set_pending_state(&b, &key, "g", &ids[n..], Duration::from_secs(1), 1).await;

    let mut consumer = b.consumer(&key, "g", b.probe("g"), settings);
    let mut rounds = Vec::new();
    for _ in 0..3 {
        rounds.push(consumer.process_batch().await.unwrap().reclaimed);
    }
    assert_eq!(
        rounds,
        vec![0, 0, 1],
        "each round examines at most {per_round} entries and goes on where the last one stopped"
    );
    assert_eq!(b.effects("g").await, (1, 1));
    assert_eq!(b.pending(&key, "g").await, n as i64);
}

#[tokio::test]
async fn a_running_consumer_recreates_its_group_when_redis_lost_it() {
    let b = backbone().await;
    let key = b.key("orders");
    b.publish(&key, 5).await;
    let consumer = b.consumer(&key, "g", b.probe("g"), fast_settings());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(consumer.run(stop.clone()));
    wait_for("the first events handled", Duration::from_secs(20), || async {
        b.effects("g").await == (5, 5)
    })
    .await;

    // Redis restarted without its data, as far as the group is concerned (NOGROUP).
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&key)
        .arg("g")
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    b.publish(&key, 5).await;
    wait_for(
        "the group recreated and the new events handled",
        Duration::from_secs(20),
        || async { b.effects("g").await == (10, 10) },
    )
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    // The group restarts at id 0: the first five came again and were acked with no effect.
    assert_eq!(b.effects("g").await, (10, 10));
    assert_eq!(b.pending(&key, "g").await, 0);
}

/// Records the size of every batch it is handed; acks everything.
struct Sizes {
    whole: bool,
    calls: Arc<Mutex<Vec<usize>>>,
}

impl Handler for Sizes {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        self.calls.lock().unwrap().push(batch.len());
        vec![Outcome::Ack; batch.len()]
    }

    fn whole_batches(&self) -> bool {
        self.whole
    }
}

/// A batch goes to a handler in `concurrency` concurrent calls, or whole in one call to a
/// handler that asks so (the statistics handlers: their events write the same rows).
#[tokio::test]
async fn a_handler_that_asks_for_whole_batches_gets_each_in_one_call() {
    let b = backbone().await;
    for (whole, expected) in [(false, vec![50, 50]), (true, vec![100])] {
        let key = b.key(&format!("sizes-{whole}"));
        b.publish(&key, 100).await;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let handler = Sizes {
            whole,
            calls: calls.clone(),
        };
        let mut consumer = b.consumer(&key, "g", handler, fast_settings());
        let report = drain(&mut consumer).await;
        assert_eq!((report.read, report.acked), (100, 100));
        let mut seen = calls.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, expected, "whole_batches = {whole}");
    }
}

/// A `redis-server` of this test's own on a TCP port, with a password for user `worker`:
/// returns it (killed when dropped), its port and a `redis-cli` for it.
fn redis_with_a_password(password: &str) -> (KillOnDrop, u16) {
    let dir = tempfile::tempdir_in(crate::servers::scratch_dir()).unwrap();
    let port = crate::servers::free_port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(["--user", "worker", "on", &format!(">{password}"), "~*", "&*", "+@all"])
        .args(["--user", "default", "off"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::servers::reap(child.id());
    std::mem::forget(dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not come up on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (KillOnDrop(child), port)
}

/// The consumer's reader speaks to Redis itself on one server (`GroupReader::Lean`): it
/// logs in as the URL's user, selects the URL's database and reads what was published there
/// (the suite's other tests reach their Redis over a Unix socket with neither).
#[tokio::test]
async fn a_consumer_logs_in_and_reads_from_the_urls_database_over_tcp() {
    let b = backbone().await;
    let (_server, port) = redis_with_a_password("s3cret pass");
    let mut env = b.env.clone();
    env.remove("IMTICKET_REDIS_CLUSTER");
    env.insert(
        "REDIS_URL".into(),
        format!("redis://worker:s3cret%20pass@127.0.0.1:{port}/3"),
    );
    let deps = imticket::root::deps(crate::helpers::config_from(&env)).unwrap();
    let key = deps.keys.stream_named("tcp");
    let mut conn = deps.redis.connection().await.unwrap();
    for n in 0..250 {
        let e = Envelope::new("probe.ping", serde_json::json!({ "n": n }));
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg(e.to_fields())
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let runtime = imticket::root::stream_runtime(&deps).with_settings(fast_settings());
    let mut consumer = runtime.consumer(imticket::stream::Subscription::custom(&key, "g", b.probe("g")));
    let report = drain(&mut consumer).await;
    assert_eq!((report.read, report.acked, report.dead_lettered), (250, 250, 0));
    assert_eq!(b.effects("g").await, (250, 250));
    let cli = |db: &str, args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &port.to_string(),
                "--user",
                "worker",
                "--pass",
                "s3cret pass",
                "--no-auth-warning",
            ])
            .args(["-n", db])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(
        (cli("3", &["XLEN", &key]), cli("0", &["XLEN", &key])),
        ("250".to_owned(), "0".to_owned())
    );

    // The reader logs in when it first reads: with the password changed since the process
    // connected, that read fails at once with the server's answer, and nothing is lost.
    let mut consumer = runtime.consumer(imticket::stream::Subscription::custom(&key, "g2", b.probe("g2")));
    consumer.ensure_group().await.unwrap();
    assert_eq!(cli("0", &["ACL", "SETUSER", "worker", "resetpass", ">changed"]), "OK");
    let started = Instant::now();
    let err = consumer.process_batch().await.unwrap_err();
    assert!(format!("{err:#}").contains("WRONGPASS"), "{err:#}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(b.effects("g2").await, (0, 0));
}
