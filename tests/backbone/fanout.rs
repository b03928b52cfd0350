//! Fan-out: one stream read by several consumer groups, each independently — a failing group
//! dead-letters its own entries while the others stay at lag 0; trimming keeps what any
//! pinning group still needs, and stops keeping it for a group only as its declaration says.

use std::time::Duration;

use imticket::events::Envelope;
use imticket::events::Stream;
use imticket::events::groups::Registry;
use imticket::infra::redis::streams;
use imticket::stream::groups;
use imticket::stream::maintenance;
use imticket::stream::{Handler, Outcome};

use crate::support::{backbone, drain, fast_settings};

/// A group whose every delivery fails (its dependency is down for good).
struct Failing;

impl Handler for Failing {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        vec![Outcome::Retry("the receiving end is down".into()); batch.len()]
    }
}

fn group<'a>(stats: &'a streams::StreamStats, name: &str) -> &'a streams::GroupStats {
    stats.groups.iter().find(|g| g.name == name).unwrap()
}

#[tokio::test]
async fn a_failing_group_dead_letters_its_own_entries_while_the_others_stay_at_lag_zero() {
    let b = backbone().await;
    let key = b.keys.stream(Stream::Payments);
    let mut conn = b.conn().await;
    groups::ensure_all(&mut conn, &b.keys, &Registry::default())
        .await
        .unwrap();
    b.publish(&key, 40).await;

    let mut payment = b.consumer(&key, "payment", b.probe("payment"), fast_settings());
    let mut settlement = b.consumer(&key, "settlement", Failing, fast_settings());
    // Interleaved, as two roles run side by side: settlement fails every round.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut dead_lettered = 0;
    while dead_lettered < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "settlement dead-lettered only {dead_lettered}"
        );
        drain(&mut payment).await;
        let stats = streams::stats(&mut conn, &key).await.unwrap().unwrap();
        let paid = group(&stats, "payment");
        assert_eq!(
            (paid.lag, paid.pending),
            (Some(0), 0),
            "the payment group never waits for settlement"
        );
        dead_lettered += settlement.process_batch().await.unwrap().dead_lettered;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.effects("payment").await, (40, 40), "every event once for payment");
    // The dead letters are settlement's alone.
    let letters = streams::range(&mut conn, &b.keys.dead_letter(), "-", "+", None)
        .await
        .unwrap();
    assert_eq!(letters.len(), 40);
    assert!(letters.iter().all(|l| l.field("group") == Some("settlement")));
    // Both groups are done with every entry (acked or dead-lettered): the stream can go.
    let (trimmed, trim) = maintenance::trim_declared(
        &mut conn,
        &b.keys,
        &Registry::default(),
        Duration::from_secs(3600),
        &key,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(trimmed, 40, "{trim:?}");
}

#[tokio::test]
async fn declared_groups_exist_before_their_workers_and_pin_as_declared() {
    let b = backbone().await;
    let key = b.keys.stream(Stream::Reservations);
    let mut conn = b.conn().await;
    groups::ensure_all(&mut conn, &b.keys, &Registry::default())
        .await
        .unwrap();
    let stats = streams::stats(&mut conn, &key).await.unwrap().unwrap();
    let mut names: Vec<&str> = stats.groups.iter().map(|g| g.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["notifications", "statistics"],
        "created before any worker ran"
    );
    b.publish(&key, 10).await;

    // Statistics reads everything; notifications' workers never ran.
    let mut statistics = b.consumer(&key, "statistics", b.probe("statistics"), fast_settings());
    drain(&mut statistics).await;
    let hour = Duration::from_secs(3600);
    let (trimmed, trim) = maintenance::trim_declared(&mut conn, &b.keys, &Registry::default(), hour, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trimmed, 0, "notifications has read nothing yet: {trim:?}");
    assert_eq!(trim.held_by.as_deref(), Some("notifications"));
    let shown = b.admin(&["streams"]);
    assert!(shown.contains("held by group notifications"), "{shown}");
    assert!(shown.contains("until-abandoned (pinning)"), "{shown}");

    // Past the abandon time with no consumer of it seen, notifications stops pinning;
    // statistics, which pins always, holds the trim point after its last acked entry.
    let abandon_after = Duration::from_millis(20);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let trim = loop {
        let (trimmed, trim) = maintenance::trim_declared(&mut conn, &b.keys, &Registry::default(), abandon_after, &key)
            .await
            .unwrap()
            .unwrap();
        if trimmed == 10 {
            break trim;
        }
        assert!(std::time::Instant::now() < deadline, "never trimmed: {trim:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(trim.held_by.as_deref(), Some("statistics"));
    let notifications = trim.groups.iter().find(|g| g.group == "notifications").unwrap();
    assert!(notifications.abandoned && !notifications.pins);
    maintenance::record_pinning("reservations", &trim);
    let rendered = imticket::telemetry::metrics_handle().render();
    assert!(
        rendered.contains(r#"stream_group_pins_trim{stream="reservations",group="statistics"} 1"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"stream_group_abandoned{stream="reservations",group="notifications"} 1"#),
        "{rendered}"
    );

    // A consumer of notifications that comes back resumes; it finds only what was kept.
    b.publish(&key, 3).await;
    let mut notifications = b.consumer(&key, "notifications", b.probe("notifications"), fast_settings());
    drain(&mut notifications).await;
    assert_eq!(b.effects("notifications").await, (3, 3));
}

#[tokio::test]
async fn a_retired_group_is_not_created_and_pins_nothing() {
    let b = backbone().await;
    let key = b.keys.stream(Stream::Queue);
    let mut conn = b.conn().await;
    let retired = Registry::new(vec!["notifications".into()]);
    groups::ensure_all(&mut conn, &b.keys, &retired).await.unwrap();
    let stats = streams::stats(&mut conn, &key).await.unwrap().unwrap();
    let names: Vec<&str> = stats.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["statistics"]);
    // An old notifications group left behind (created before it was retired) holds nothing.
    streams::create_group(&mut conn, &key, "notifications").await.unwrap();
    b.publish(&key, 5).await;
    let mut statistics = b.consumer(&key, "statistics", b.probe("statistics"), fast_settings());
    drain(&mut statistics).await;
    let (trimmed, trim) = maintenance::trim_declared(&mut conn, &b.keys, &retired, Duration::from_secs(3600), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trimmed, 5, "{trim:?}");
    let old = trim.groups.iter().find(|g| g.group == "notifications").unwrap();
    assert_eq!((old.pinning, old.pins), ("retired", false));
}
