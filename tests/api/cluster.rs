//! The code base on a real Redis Cluster of its own (3 masters + 3 replicas,
//! `scripts/redis-cluster.sh`): every Lua script and every `MULTI` runs there, again after the
//! nodes forgot their scripts (`NOSCRIPT`) and again after a failover; the partitioned streams
//! land on different masters.

use std::collections::HashSet;
use std::time::Duration;

use imticket::app::Deps;
use imticket::domain::queue::Admission;
use imticket::domain::rate_limit::{Policy, Quota};
use imticket::events::Stream;
use imticket::infra::redis::keys::slot;
use imticket::infra::redis::waiting_room::WaitingRoom;
use imticket::infra::redis::{cache_store::Generation, seat_gates, seat_states, streams};
use uuid::Uuid;

use crate::helpers::*;
use crate::servers::{Redis, RedisCluster};

async fn deployment(cluster: &RedisCluster, partitions: u16) -> Deps {
    let redis = Redis::on(cluster);
    let mut env = test_env(&redis).await;
    env.insert("IMTICKET_STREAM_PARTITIONS".into(), partitions.to_string());
    let deps = imticket::root::deps(config_from(&env)).unwrap();
    imticket::infra::postgres::migrate(&deps.db).await.unwrap();
    deps
}

/// Runs every script and transaction of `src/infra/redis` once, checking each answer.
async fn every_script_and_transaction(deps: &Deps, concert: Uuid, schedule: Uuid) {
    let (redis, keys) = (&deps.redis, &deps.keys);
    let admission = Admission {
        capacity: 10,
        per_second: 10,
        active_ttl_ms: 60_000,
    };
    // The waiting room: join, status, admit, release, leave (each a script on one slot), and
    // the stats pipeline.
    let room = WaitingRoom::new(redis, keys, concert);
    let (fan, other) = (Uuid::now_v7(), Uuid::now_v7());
    let joined = room.join(fan, Uuid::now_v7(), 0, admission).await.unwrap();
    assert_eq!(room.status(joined.entry).await.unwrap().entry, joined.entry);
    room.admit(admission, 10).await.unwrap();
    assert!(room.release(fan, 1000).await.unwrap(), "the fan's slot is released");
    let second = room.join(other, Uuid::now_v7(), 0, admission).await.unwrap();
    assert!(room.leave(other, second.entry).await.unwrap());
    room.stats(concert).await.unwrap();
    // Seat gates: take all or none, read, set over a stale one, give back.
    let seats: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let (owner, intruder) = (Uuid::now_v7(), Uuid::now_v7());
    let ttl = Duration::from_secs(60);
    assert!(
        seat_gates::take(redis, keys, schedule, &seats, owner, ttl)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        seat_gates::take(redis, keys, schedule, &seats[..1], intruder, ttl)
            .await
            .unwrap(),
        seats[..1].to_vec(),
        "a taken gate refuses another owner"
    );
    seat_gates::set(redis, keys, schedule, &seats[..2], intruder, ttl)
        .await
        .unwrap();
    assert_eq!(
        seat_gates::owners(redis, keys, schedule, &seats[..3]).await.unwrap(),
        vec![Some(intruder), Some(intruder), Some(owner)]
    );
    seat_gates::release(redis, keys, schedule, &seats[2..], owner)
        .await
        .unwrap();
    assert_eq!(
        seat_gates::owners(redis, keys, schedule, &seats[2..]).await.unwrap(),
        vec![None, None]
    );
    // Seat states: written through by a script.
    seat_states::put(redis, keys, schedule, b"aaaa", ttl).await.unwrap();
    assert!(
        seat_states::write(redis, keys, schedule, 4, &[(1, b'h'), (3, b's')])
            .await
            .unwrap()
    );
    assert_eq!(
        seat_states::get(redis, keys, schedule).await.unwrap().as_deref(),
        Some(&b"ahas"[..])
    );
    // The cache: a conditional store (script), an invalidation (MULTI), a refused stale store.
    let cache = imticket::infra::redis::cache_store::CacheStore::new(redis.clone(), keys.clone());
    let name = imticket::infra::redis::keys::CacheEntry::concert(concert);
    let (_, generation) = cache.get(&name).await.unwrap();
    assert!(cache.set_if(&name, b"{}", ttl, generation).await.unwrap());
    cache.delete(std::slice::from_ref(&name)).await.unwrap();
    assert!(!cache.set_if(&name, b"{}", ttl, generation).await.unwrap(), "stale");
    let (value, Generation(after)) = cache.get(&name).await.unwrap();
    assert!(value.is_none() && after > generation.0);
    // A rate-limit decision (script).
    let decision = imticket::infra::redis::rate_limits::decide(
        redis,
        keys,
        Policy::LoginIp,
        &Uuid::now_v7().to_string(),
        Quota::new(2, Duration::from_secs(60)),
        1,
    )
    .await
    .unwrap();
    assert!(decision.allowed && decision.remaining == 1, "{decision:?}");
    // Streams: XADD to every partition at once, read, the dead-letter move and its replay
    // (across slots), removing idle consumers (script).
    let mut conn = redis.connection().await.unwrap();
    let partitions = keys.stream_keys(Stream::Payments);
    let entries: Vec<(String, Vec<(&str, String)>)> = partitions
        .iter()
        .map(|key| (key.clone(), vec![("type", "probe".to_owned())]))
        .collect();
    let ids = streams::add_all(&mut conn, &entries).await.unwrap();
    assert_eq!(ids.len(), partitions.len());
    let key = &partitions[0];
    streams::create_group(&mut conn, key, "cluster-test").await.unwrap();
    let read = streams::read_group(&mut conn, key, "cluster-test", "c1", 10, None)
        .await
        .unwrap();
    assert!(!read.is_empty());
    let last = read.last().unwrap().id.clone();
    let letter = vec![(last.clone(), vec![("source_stream".to_owned(), key.clone())])];
    streams::move_entries(&mut conn, &keys.dead_letter(), key, "cluster-test", &letter)
        .await
        .unwrap();
    let letters = streams::range(&mut conn, &keys.dead_letter(), "-", "+", None)
        .await
        .unwrap();
    let replayed = streams::republish(
        &mut conn,
        key,
        &[("type".to_owned(), "probe".to_owned())],
        &keys.dead_letter(),
        &letters.last().unwrap().id,
    )
    .await
    .unwrap();
    assert!(!replayed.is_empty());
    streams::remove_dead_consumers(&mut conn, key, "cluster-test", Duration::ZERO, "c2")
        .await
        .unwrap();
}

#[tokio::test]
async fn every_script_and_transaction_runs_on_a_cluster_after_noscript_and_after_a_failover() {
    let cluster = RedisCluster::start();
    let deps = deployment(&cluster, 3).await;
    let (concert, schedule) = (Uuid::now_v7(), Uuid::now_v7());
    every_script_and_transaction(&deps, concert, schedule).await;
    // Every node forgets its scripts: EVALSHA answers NOSCRIPT, the script is loaded again.
    cluster.flush_scripts();
    every_script_and_transaction(&deps, concert, schedule).await;
    // The masters of the concert's line and of the schedule's seats hand over to their replicas,
    // which never ran a script: the same connection finds them and loads the scripts there.
    let line = deps.keys.queue(concert).waiting;
    cluster.fail_over(&line);
    cluster.fail_over(&deps.keys.seat_states(schedule));
    every_script_and_transaction(&deps, concert, schedule).await;
}

#[tokio::test]
async fn the_partitions_of_the_payments_and_expiry_streams_sit_on_different_masters() {
    let cluster = RedisCluster::start();
    let deps = deployment(&cluster, 3).await;
    for stream in [Stream::Payments, Stream::Expiry] {
        let keys = deps.keys.stream_keys(stream);
        let masters: HashSet<u16> = keys.iter().map(|key| cluster.master_of(key).0).collect();
        assert_eq!(masters.len(), 3, "{stream}: {keys:?}");
    }
    // Events of many reservations spread over the partitions, each where its due hold is.
    let mut tx = deps.db.begin().await.unwrap();
    for _ in 0..60 {
        let event = imticket::events::HoldExpired {
            reservation_id: Uuid::now_v7(),
        };
        imticket::infra::postgres::outbox::append(&mut tx, &event)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    while imticket::infra::publisher::publish_oldest(&deps.db, &deps.redis, &deps.keys, 500)
        .await
        .unwrap()
        > 0
    {}
    let mut conn = deps.redis.connection().await.unwrap();
    let mut total = 0;
    for key in deps.keys.stream_keys(Stream::Expiry) {
        let len = streams::len(&mut conn, &key).await.unwrap();
        assert!(len > 5, "{key} holds {len} of 60");
        total += len;
    }
    assert_eq!(total, 60);
    let reservation = Uuid::now_v7();
    assert_eq!(
        slot(&deps.keys.stream_for(Stream::Expiry, reservation)),
        slot(&deps.keys.expiry_due_for(reservation))
    );
}

#[tokio::test]
async fn after_a_master_is_killed_its_replica_serves_the_same_processes_without_a_restart() {
    let cluster = RedisCluster::start();
    let deps = deployment(&cluster, 3).await;
    let concert = Uuid::now_v7();
    let admission = Admission {
        capacity: 10,
        per_second: 10,
        active_ttl_ms: 60_000,
    };
    let room = WaitingRoom::new(&deps.redis, &deps.keys, concert);
    room.join(Uuid::now_v7(), Uuid::now_v7(), 0, admission).await.unwrap();
    let killed = cluster.kill_master_of(&deps.keys.queue(concert).waiting);
    // Within the node timeout (2 s) and an election the replica takes over; the handle, whose
    // node connection now fails, reads the slot map again and finds it.
    let started = std::time::Instant::now();
    eventually(
        "the line answers again on the promoted replica",
        Duration::from_secs(30),
        || async { room.join(Uuid::now_v7(), Uuid::now_v7(), 0, admission).await.is_ok() },
    )
    .await;
    let (now, _) = cluster.master_of(&deps.keys.queue(concert).waiting);
    assert_ne!(now, killed, "a replica serves the slot now");
    assert!(
        room.stats(concert).await.unwrap().active >= 1,
        "the line is still there"
    );
    eprintln!(
        "the line answered again {:.1} s after the kill",
        started.elapsed().as_secs_f64()
    );
}
