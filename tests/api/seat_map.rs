//! The seat map under a hold storm: the layout is kept per process, the states are written
//! through to Redis by every hold, cancel, expiry and sale, so reads do not go to PostgreSQL;
//! a change the write-through missed shows for at most `IMTICKET_SEAT_STATES_TTL_SECONDS`.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::holds::{charge, check_invariants, fans, hold, pay, run_payment_worker, sale};

/// The map as `GET /schedules/{id}/seats` answers it, read through `deps` (its own process:
/// its own layouts and PostgreSQL load counters).
async fn read(deps: &imticket::app::Deps, schedule: &str, status: Option<&str>) -> Value {
    let body = imticket::app::catalog::seat_map::seat_map(deps, schedule.parse().unwrap(), status)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn states(map: &Value) -> HashMap<Uuid, String> {
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                serde_json::from_value(s["id"].clone()).unwrap(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn states_in_postgres(app: &TestApp, schedule: &str) -> HashMap<Uuid, String> {
    sqlx::query_as::<_, (Uuid, String)>("SELECT id, status FROM seats WHERE schedule_id = $1::uuid")
        .bind(schedule)
        .fetch_all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_storm_is_written_through_and_reads_never_reload_the_map() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let reader = imticket::root::deps(config_from(&app.env)).unwrap();
    let first = read(&reader, &schedule, None).await;
    assert!(states(&first).values().all(|s| s == "available"));
    assert_eq!(
        reader.seat_layouts.loads(),
        (1, 1),
        "the first read loads layout and states"
    );

    // 50 fans hold two seats each, all at once, while the map is read over and over.
    let fans = fans(&app, &concert, 50).await;
    let holds = join_all(
        fans.iter()
            .enumerate()
            .map(|(i, fan)| hold(&app, fan, &schedule, &seats[2 * i..2 * i + 2])),
    );
    let reads = async {
        let mut n = 0;
        for _ in 0..20 {
            read(&reader, &schedule, Some("held")).await;
            n += 1;
        }
        n
    };
    let (results, reads) = tokio::join!(holds, reads);
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(reads, 20);
    let after = read(&reader, &schedule, None).await;
    assert_eq!(states(&after), states_in_postgres(&app, &schedule).await);
    assert!(states(&after).values().all(|s| s == "held"));
    assert_eq!(
        read(&reader, &schedule, Some("held")).await["seats"]
            .as_array()
            .unwrap()
            .len(),
        100
    );

    // A cancel and a sale (payment, then the payment worker) are written through as well.
    let reservation = |i: usize| results[i].1["id"].as_str().unwrap().to_owned();
    let cancelled = app
        .client
        .delete(app.url(&format!("/api/v1/reservations/{}", reservation(0))))
        .bearer_auth(&fans[0].access)
        .header("x-queue-token", &fans[0].queue)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::NO_CONTENT);
    let (charged, _) = charge(&app, &fans[1], Some("top-up"), json!(1000)).await;
    assert_eq!(charged, StatusCode::OK);
    let (paid, _) = pay(&app, &fans[1], &reservation(1), "pay").await;
    assert_eq!(paid, StatusCode::CREATED);
    run_payment_worker(&app).await;
    let now = states(&read(&reader, &schedule, None).await);
    assert_eq!(now[&seats[0]], "available");
    assert_eq!(now[&seats[1]], "available");
    assert_eq!(now[&seats[2]], "sold");
    assert_eq!(now[&seats[3]], "sold");
    assert_eq!(now, states_in_postgres(&app, &schedule).await);

    // 24 reads, 100 holds, a cancel and a sale: PostgreSQL was asked for the map once.
    assert_eq!(reader.seat_layouts.loads(), (1, 1), "(layout, states) loads");
    check_invariants(&app, &schedule).await;
}

#[tokio::test]
async fn a_change_the_write_through_missed_shows_for_at_most_the_states_ttl() {
    let (app, _, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_SEAT_STATES_TTL_SECONDS".into(), "1".into());
    })
    .await;
    let reader = imticket::root::deps(config_from(&app.env)).unwrap();
    read(&reader, &schedule, None).await;
    // A sale whose Redis write never happened (a process died between commit and write).
    sqlx::query("UPDATE seats SET status = 'sold' WHERE id = $1")
        .bind(seats[7])
        .execute(&app.db)
        .await
        .unwrap();
    let ttl = Duration::from_secs(1);
    eventually(
        "the states are rebuilt within their TTL",
        ttl + Duration::from_secs(5),
        || async { states(&read(&reader, &schedule, None).await)[&seats[7]] == "sold" },
    )
    .await;
    let (layouts, states_loads) = reader.seat_layouts.loads();
    assert_eq!(layouts, 1, "the layout is kept");
    assert!(states_loads >= 2, "the states were rebuilt from PostgreSQL");
}

#[tokio::test]
async fn seats_added_later_reach_a_process_that_kept_the_old_layout() {
    let (app, _, schedule, _) = sale(|_| {}).await;
    let reader = imticket::root::deps(config_from(&app.env)).unwrap();
    assert_eq!(
        read(&reader, &schedule, None).await["seats"].as_array().unwrap().len(),
        100
    );
    let admin = app.admin_token().await;
    app.add_seats(
        &admin,
        &schedule,
        json!([{"name": "B", "rows": 5, "seats_per_row": 10, "price": 80}]),
    )
    .await;
    // The job is reported done when it commits; its process drops the old states a moment
    // later (after that commit), so a read in between may still show the old map.
    let bound = Duration::from_secs(10) + Duration::from_secs(5);
    eventually("the added seats show", bound, || async {
        read(&reader, &schedule, None).await["seats"].as_array().unwrap().len() == 150
    })
    .await;
    let map = read(&reader, &schedule, None).await;
    assert_eq!(states(&map), states_in_postgres(&app, &schedule).await);
    // The states once more (their count no longer fits the kept layout), then both.
    assert_eq!(reader.seat_layouts.loads(), (2, 3));
}

#[tokio::test]
async fn with_redis_down_the_seat_map_comes_from_postgres() {
    let (mut app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_REDIS_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    let (status, _) = hold(&app, &fan, &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CREATED);
    app.redis.kill();
    let map = expect_status(
        app.get(&format!("/api/v1/schedules/{schedule}/seats")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(states(&map), states_in_postgres(&app, &schedule).await);
    assert_eq!(states(&map)[&seats[0]], "held");
}
