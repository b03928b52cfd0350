//! Hold expiry as durable events: due holds become `hold.expired` events and the expiry worker
//! frees their seats; paid reservations never expire; the PostgreSQL sweep catches a hold
//! Redis forgot.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::holds::{check_invariants, fans, hold, sale};

async fn run_expiry_worker(app: &TestApp) {
    app.drain_role(
        imticket::events::Stream::Expiry,
        imticket::worker::handlers::ExpiryHandler::new,
    )
    .await;
}

async fn status_of(app: &TestApp, reservation: &str) -> String {
    sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1::uuid")
        .bind(reservation)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn due_holds_expire_through_events_and_paid_ones_never_do() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "2".into());
    })
    .await;
    let mut fans = fans(&app, &concert, 3).await;
    let (later, payer, idler) = (fans.remove(2), fans.remove(1), fans.remove(0));
    let (_, idle) = hold(&app, &idler, &schedule, &seats[..2]).await;
    let (_, paid) = hold(&app, &payer, &schedule, &seats[2..3]).await;
    let charged = app
        .client
        .post(app.url("/api/v1/users/me/points/charge"))
        .bearer_auth(&payer.access)
        .header("idempotency-key", "top-up")
        .json(&json!({"amount": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(charged.status(), StatusCode::OK);
    let paying = app
        .client
        .post(app.url(&format!(
            "/api/v1/reservations/{}/payments",
            paid["id"].as_str().unwrap()
        )))
        .bearer_auth(&payer.access)
        .header("x-queue-token", &payer.queue)
        .header("idempotency-key", "pay")
        .send()
        .await
        .unwrap();
    assert_eq!(paying.status(), StatusCode::CREATED);

    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let idle_id = idle["id"].as_str().unwrap();
    eventually(
        "the idle hold expires through the expiry stream",
        Duration::from_secs(20),
        || async {
            imticket::app::expiry::publish_due(&deps).await.unwrap();
            run_expiry_worker(&app).await;
            status_of(&app, idle_id).await == "expired"
        },
    )
    .await;
    assert_eq!(
        status_of(&app, paid["id"].as_str().unwrap()).await,
        "paid",
        "paid never expires"
    );
    // The seats (and their gates) are free for the next fan.
    let (status, body) = hold(&app, &later, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    check_invariants(&app, &schedule).await;
}

#[tokio::test]
async fn the_sweep_expires_a_hold_redis_forgot() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "1".into());
    })
    .await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    let (_, held) = hold(&app, &fan, &schedule, &seats[..1]).await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    // Redis forgets every scheduled expiry.
    let () = redis::cmd("DEL")
        .arg(deps.keys.expiry_due())
        .query_async(&mut deps.redis.connection().await.unwrap())
        .await
        .unwrap();
    assert_eq!(imticket::app::expiry::publish_due(&deps).await.unwrap(), 0);
    let id = held["id"].as_str().unwrap();
    eventually("the sweep finds the due hold", Duration::from_secs(30), || async {
        imticket::app::expiry::sweep(&deps).await.unwrap();
        run_expiry_worker(&app).await;
        status_of(&app, id).await == "expired"
    })
    .await;
    check_invariants(&app, &schedule).await;
}
