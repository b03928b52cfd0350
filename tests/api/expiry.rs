//! Hold expiry as durable events: due holds become `hold.expired` events and the expiry worker
//! frees their seats; paid reservations never expire; the PostgreSQL sweep catches a hold
//! Redis forgot.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::holds::{charge, check_invariants, fans, hold, pay, sale};

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
    let (charged, _) = charge(&app, &payer, Some("top-up"), json!(1000)).await;
    assert_eq!(charged, StatusCode::OK);
    let (paying, _) = pay(&app, &payer, paid["id"].as_str().unwrap(), "pay").await;
    assert_eq!(paying, StatusCode::CREATED);

    let map_path = format!("/api/v1/schedules/{schedule}/seats?status=held");
    let held_in_map = || async {
        let map = expect_status(app.get(&map_path).await, StatusCode::OK).await;
        let mut held: Vec<String> = map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        held.sort();
        held
    };
    let mut all_three: Vec<String> = seats[..3].iter().map(|s| s.to_string()).collect();
    all_three.sort();
    assert_eq!(held_in_map().await, all_three);

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
    // The expiry was written through to the seat map: a paid seat still shows held.
    assert_eq!(held_in_map().await, vec![seats[2].to_string()]);
    // The release wrote the `reservation.expired` fact, published on the expiry stream, where
    // the expiry worker acks it without work (nothing pending, nothing dead-lettered).
    let (payload, stream_id): (serde_json::Value, Option<String>) = sqlx::query_as(
        "SELECT payload, stream_id FROM outbox WHERE event_type = 'reservation.expired' AND stream = 'expiry'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(payload["reservation_id"], idle["id"]);
    assert_eq!(payload["user_id"], json!(idler.id));
    assert_eq!(payload["schedule_id"].as_str(), Some(schedule.as_str()));
    let mut expected_seats = vec![seats[0], seats[1]];
    expected_seats.sort();
    let mut got: Vec<uuid::Uuid> = serde_json::from_value(payload["seat_ids"].clone()).unwrap();
    got.sort();
    assert_eq!(got, expected_seats);
    assert!(stream_id.is_some(), "published after commit");
    run_expiry_worker(&app).await;
    let mut conn = deps.redis.connection().await.unwrap();
    // XPENDING's summary starts with the number of pending entries.
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(deps.keys.stream(imticket::events::Stream::Expiry))
        .arg("expiry")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending.first(), Some(&redis::Value::Int(0)), "every expiry entry acked");
    let dead: i64 = redis::cmd("XLEN")
        .arg(deps.keys.dead_letter())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(dead, 0, "nothing dead-lettered");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_racing_expiry_at_the_due_instant_each_end_one_way() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "2".into());
    })
    .await;
    let fans = fans(&app, &concert, 40).await;
    for fan in &fans {
        let (charged, _) = charge(&app, fan, Some("top-up"), json!(1000)).await;
        assert_eq!(charged, StatusCode::OK);
    }
    let held = futures_util::future::join_all(
        fans.iter()
            .zip(&seats)
            .map(|(fan, seat)| hold(&app, fan, &schedule, std::slice::from_ref(seat))),
    )
    .await;
    let ids: Vec<String> = held
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    // Start both sides a little before the first hold is due, so the race spans the instant.
    let due = held
        .iter()
        .map(|(_, b)| serde_json::from_value::<chrono::DateTime<chrono::Utc>>(b["expires_at"].clone()).unwrap())
        .min()
        .unwrap();
    tokio::time::sleep(
        (due - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            .saturating_sub(Duration::from_millis(150)),
    )
    .await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let payments = futures_util::future::join_all(fans.iter().zip(&ids).map(|(fan, id)| pay(&app, fan, id, "pay")));
    let expiries = futures_util::future::join_all(ids.iter().map(|id| {
        let (deps, app) = (&deps, &app);
        async move {
            // The expiry worker's redeliveries: it keeps at it until the hold is due.
            loop {
                let outcome = imticket::app::expiry::expire(deps, id.parse().unwrap(), "expiry", uuid::Uuid::now_v7())
                    .await
                    .unwrap();
                let status: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1::uuid")
                    .bind(id)
                    .fetch_one(&app.db)
                    .await
                    .unwrap();
                if status != "held" {
                    return outcome;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }));
    let (payments, expiries) = tokio::join!(payments, expiries);
    let (mut paid, mut expired) = (0, 0);
    for (i, ((status, body), expiry)) in payments.iter().zip(&expiries).enumerate() {
        let final_status = status_of(&app, &ids[i]).await;
        match *status {
            StatusCode::CREATED => {
                paid += 1;
                assert_eq!(final_status, "paid");
                assert_eq!(
                    *expiry,
                    imticket::app::expiry::Expired::Nothing,
                    "a paid hold never expires"
                );
            }
            StatusCode::CONFLICT => {
                expired += 1;
                assert_eq!(body["code"], "hold_expired", "{body}");
                assert_eq!(final_status, "expired");
                assert!(
                    matches!(expiry, imticket::app::expiry::Expired::Released(1)),
                    "{expiry:?}"
                );
            }
            other => panic!("payment answered {other}: {body}"),
        }
    }
    assert_eq!(paid + expired, 40);
    // A debit exactly for each payment that won: never a charge without a reservation.
    let debits: i64 = sqlx::query_scalar("SELECT count(*) FROM point_transactions WHERE kind = 'payment'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(debits, paid);
    let debited_but_expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM point_transactions t JOIN reservations r ON r.id = t.reservation_id
         WHERE t.kind = 'payment' AND r.status = 'expired'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(debited_but_expired, 0);
    check_invariants(&app, &schedule).await;
}
