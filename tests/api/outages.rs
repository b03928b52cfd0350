//! Dependency outages as clients and workers see them: with Redis down the catalog still
//! answers from PostgreSQL while the waiting room, holds and payments answer 503 with
//! `Retry-After`; with PostgreSQL down writes answer 503 and a worker's entries stay pending
//! however long the outage (none is dead-lettered) and are processed after recovery. Nothing is
//! restarted in either case.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::holds::{charge, fans, hold, pay, sale};
use crate::servers::OwnPostgres;

/// A 503 with `Retry-After`, and its problem's code.
async fn unavailable(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response.headers().contains_key("retry-after"),
        "503 without Retry-After"
    );
    let body: Value = response.json().await.unwrap();
    body["code"].as_str().unwrap().to_owned()
}

async fn join(app: &TestApp, concert: &str, access: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/concerts/{concert}/queue")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_keeps_the_catalog_and_refuses_bookings_until_it_returns() {
    let (mut app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_REDIS_TIMEOUT_MS".into(), "500".into());
    })
    .await;
    let mut fans = fans(&app, &concert, 2).await;
    let fan = fans.remove(0);
    let late = fans.remove(0);
    assert_eq!(charge(&app, &fan, Some("c"), json!(1000)).await.0, StatusCode::OK);
    let (status, held) = hold(&app, &fan, &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CREATED);
    let held = held["id"].as_str().unwrap().to_owned();

    app.redis.kill();
    // The catalog, from PostgreSQL.
    for path in [
        "/api/v1/concerts".to_owned(),
        format!("/api/v1/concerts/{concert}"),
        format!("/api/v1/schedules/{schedule}/seats"),
    ] {
        assert_eq!(app.get(&path).await.status(), StatusCode::OK, "{path} with Redis down");
    }
    // The waiting room, holds and payments: 503 with Retry-After, and nothing done.
    assert_eq!(
        unavailable(join(&app, &concert, &late.access).await).await,
        "dependency_unavailable"
    );
    let response = app
        .client
        .post(app.url("/api/v1/reservations"))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .json(&json!({"schedule_id": schedule, "seat_ids": &seats[1..2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unavailable(response).await, "dependency_unavailable");
    let response = app
        .client
        .post(app.url(&format!("/api/v1/reservations/{held}/payments")))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .header("idempotency-key", "p")
        .send()
        .await
        .unwrap();
    assert_eq!(unavailable(response).await, "dependency_unavailable");
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE status <> 'held'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(paid, 0, "nothing was paid while Redis was down");
    assert_eq!(
        app.count("reservations").await,
        1,
        "nothing was held while Redis was down"
    );
    let ready = app.get("/health/ready").await;
    assert_eq!(unavailable(ready).await, "dependency_unavailable");

    // Redis returns (its AOF replayed): everything answers again, nothing restarted.
    app.redis.restart();
    eventually("the API is ready again", Duration::from_secs(30), || async {
        app.get("/health/ready").await.status() == StatusCode::OK
    })
    .await;
    // Each connection finds Redis back on its next command: the first one may still fail, and a
    // client sends it again after Retry-After, as it would any 503 (the payment is keyed).
    eventually(
        "the payment goes through once Redis is back",
        Duration::from_secs(30),
        || async { pay(&app, &fan, &held, "p").await.0 == StatusCode::CREATED },
    )
    .await;
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM point_transactions WHERE kind = 'payment'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(payments, 1, "paid once");
    // Each HTTP worker thread has its own Redis connection, back on its next use: a hold on a
    // thread that has not used it yet may still get 503 (with Retry-After) for a moment.
    eventually(
        "a hold goes through once Redis is back",
        Duration::from_secs(30),
        || async { hold(&app, &fan, &schedule, &seats[1..2]).await.0 == StatusCode::CREATED },
    )
    .await;
    // So may a join (seen under load: 503 with Retry-After on a thread not yet reconnected).
    eventually(
        "a join goes through once Redis is back",
        Duration::from_secs(30),
        || async {
            match join(&app, &concert, &late.access).await.status() {
                StatusCode::OK => true,
                StatusCode::SERVICE_UNAVAILABLE => false,
                other => panic!("a join after the outage: {other}"),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_and_pending_entries_survive_a_long_outage() {
    let pg = OwnPostgres::start();
    let database = pg.fresh_database().await;
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("DATABASE_URL".into(), database.clone());
        env.insert("IMTICKET_DB_ACQUIRE_TIMEOUT_MS".into(), "1000".into());
        // Many deliveries in a short outage: without the rule that a delivery a dependency
        // outage made fail does not count, these settings dead-letter within two seconds.
        env.insert("IMTICKET_STREAM_CLAIM_IDLE_MS".into(), "200".into());
        env.insert("IMTICKET_STREAM_MAX_DELIVERIES".into(), "2".into());
        env.insert("IMTICKET_STREAM_BACKOFF_CAP_MS".into(), "400".into());
    })
    .await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    assert_eq!(charge(&app, &fan, Some("c"), json!(1000)).await.0, StatusCode::OK);
    let (status, held) = hold(&app, &fan, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED);
    let held = held["id"].as_str().unwrap().to_owned();
    // Paid while no payment worker runs: its event waits in the payments stream.
    let (status, _) = pay(&app, &fan, &held, "p").await;
    assert_eq!(status, StatusCode::CREATED);

    pg.stop_immediately();
    let response = app
        .client
        .post(app.url("/api/v1/reservations"))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .json(&json!({"schedule_id": schedule, "seat_ids": &seats[2..3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unavailable(response).await, "database_unavailable");
    let (status, body) = charge(&app, &fan, Some("c2"), json!(5)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("database_unavailable"))
    );
    let ready = app.get("/health/ready").await;
    assert_eq!(unavailable(ready).await, "dependency_unavailable");

    // A payment worker starts during the outage: it reads the entry, cannot reach PostgreSQL,
    // backs off, and reclaims it again and again, far more often than max_deliveries.
    let mut env = app.env.clone();
    env.insert("IMTICKET_WORKER_METRICS_ADDR".into(), "127.0.0.1:0".into());
    let mut cmd = binary_command(env!("CARGO_BIN_EXE_imticket-worker"), &env);
    cmd.arg("payment");
    let (_worker, port) = spawn_listening(cmd, &app.redis.dir().join("worker.log"));
    let retried = || async move {
        let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.lines()
            .filter(|l| l.starts_with("stream_events_total{") && l.contains("outcome=\"retried\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    eventually("the entry was tried five times", Duration::from_secs(60), || async {
        retried().await >= 5.0
    })
    .await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let mut redis = deps.redis.connection().await.unwrap();
    let dead = deps.keys.dead_letter();
    let dead_letters: u64 = redis::cmd("XLEN").arg(&dead).query_async(&mut redis).await.unwrap();
    assert_eq!(dead_letters, 0, "an outage dead-letters nothing");

    // PostgreSQL returns (crash recovery): the entry is processed, nothing restarted.
    pg.restart();
    eventually("the reservation is confirmed", Duration::from_secs(60), || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM reservations WHERE id = $1::uuid")
            .bind(&held)
            .fetch_one(&app.db)
            .await
            .is_ok_and(|s| s == "confirmed")
    })
    .await;
    let dead_letters: u64 = redis::cmd("XLEN").arg(&dead).query_async(&mut redis).await.unwrap();
    assert_eq!(dead_letters, 0);
    eventually("the API is ready again", Duration::from_secs(30), || async {
        app.get("/health/ready").await.status() == StatusCode::OK
    })
    .await;
    // A fan who paid has left the line; another one books.
    let next = fans(&app, &concert, 1).await.remove(0);
    let (status, _) = hold(&app, &next, &schedule, &seats[2..3]).await;
    assert_eq!(status, StatusCode::CREATED);
}
