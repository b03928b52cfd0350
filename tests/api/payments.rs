//! Points and payments: charging once per key, paying once per key under concurrency, 402
//! changing nothing, an expired hold refusing payment, and the payment worker confirming
//! (ticket code, seats sold, queue slot released) exactly once.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::holds::{Fan, charge, check_invariants, fans, hold, pay, run_payment_worker, sale};

/// I3: every balance is ≥ 0 and equals its ledger.
async fn ledgers_balance(app: &TestApp) {
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM wallets w WHERE w.balance < 0 OR w.balance <>
           (SELECT COALESCE(sum(amount), 0) FROM point_transactions t WHERE t.user_id = w.user_id)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(wrong, 0, "a wallet disagrees with its ledger");
}

async fn ledger_rows(app: &TestApp, fan: &Fan, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM point_transactions WHERE user_id = $1 AND kind = $2")
        .bind(fan.id)
        .bind(kind)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn charging_is_once_per_key_and_bad_charges_change_nothing() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    let balance = expect_status(
        app.get_authed("/api/v1/users/me/points", &fan.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(balance, json!({"balance": 0}));
    assert_eq!(
        charge(&app, &fan, Some("k1"), json!(500)).await,
        (StatusCode::OK, json!({"balance": 500}))
    );
    assert_eq!(
        charge(&app, &fan, Some("k1"), json!(500)).await,
        (StatusCode::OK, json!({"balance": 500})),
        "replay"
    );
    let (status, body) = charge(&app, &fan, Some("k1"), json!(700)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    // A key is scoped to the user and the endpoint: the same key on another endpoint is
    // another key, with its own effect.
    let held = app
        .client
        .post(app.url("/api/v1/reservations"))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .header("idempotency-key", "k1")
        .json(&json!({"schedule_id": schedule, "seat_ids": &seats[..1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::CREATED, "the charge's key holds seats too");
    let (status, body) = charge(&app, &fan, None, json!(5)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_required"))
    );
    for bad in [json!(0), json!(-5), json!(10_000_001), json!("x")] {
        let (status, body) = charge(&app, &fan, Some(&format!("bad-{bad}")), bad.clone()).await;
        assert!(status.is_client_error(), "{bad}: {status}");
        assert!(body["detail"].as_str().unwrap().starts_with("amount"), "{body}");
    }
    // 50 concurrent identical requests: charged once, 50 identical answers.
    let answers = join_all((0..50).map(|_| charge(&app, &fan, Some("k2"), json!(25)))).await;
    assert!(
        answers.iter().all(|a| *a == (StatusCode::OK, json!({"balance": 525}))),
        "{answers:?}"
    );
    assert_eq!(ledger_rows(&app, &fan, "charge").await, 2);
    // Different keys at once: every one counts.
    let keys: Vec<String> = (0..100).map(|i| format!("many-{i}")).collect();
    join_all(keys.iter().map(|k| charge(&app, &fan, Some(k), json!(1)))).await;
    let balance = expect_status(
        app.get_authed("/api/v1/users/me/points", &fan.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(balance["balance"], 625);
    ledgers_balance(&app).await;
}

#[tokio::test]
async fn hold_pay_confirm_once_even_when_fifty_identical_payments_race() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let mut fans = fans(&app, &concert, 2).await;
    let (poor, fan) = (fans.remove(1), fans.remove(0));
    charge(&app, &fan, Some("top-up"), json!(1000)).await;
    let (status, held) = hold(&app, &fan, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let reservation = held["id"].as_str().unwrap().to_owned();

    let answers = join_all((0..50).map(|_| pay(&app, &fan, &reservation, "pay-1"))).await;
    let (status, first) = &answers[0];
    assert_eq!(*status, StatusCode::CREATED, "{first}");
    assert!(answers.iter().all(|a| a == &answers[0]), "50 identical answers");
    assert_eq!(first["amount"], 200);
    assert_eq!(first["balance"], 800);
    assert_eq!(first["status"], "completed");
    assert_eq!(ledger_rows(&app, &fan, "payment").await, 1, "one debit");
    let (status, body) = pay(&app, &fan, &reservation, "pay-2").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("reservation_paid"))
    );

    // 402 changes nothing.
    let (status, poor_hold) = hold(&app, &poor, &schedule, &seats[5..6]).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = pay(&app, &poor, poor_hold["id"].as_str().unwrap(), "p").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("insufficient_points"))
    );
    let still: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1::uuid")
        .bind(poor_hold["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(still, "held");

    // The payment worker confirms: ticket code, seats sold, the queue slot given back.
    run_payment_worker(&app).await;
    run_payment_worker(&app).await;
    let shown = expect_status(
        app.get_authed(&format!("/api/v1/reservations/{reservation}"), &fan.access)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["status"], "confirmed");
    let code = shown["ticket_code"].as_str().unwrap();
    assert!(code.starts_with("TK-") && code.len() > 30, "{code}");
    let sold: i64 = sqlx::query_scalar("SELECT count(*) FROM seats WHERE schedule_id = $1::uuid AND status = 'sold'")
        .bind(&schedule)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sold, 2);
    let slot = expect_status(
        app.client
            .get(app.url("/api/v1/queue/status"))
            .header("x-queue-token", &fan.queue)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(slot["status"], "done", "paying gave the slot back: {slot}");
    assert!(slot["active_until"].is_null() && slot["position"].is_null(), "{slot}");
    // Done is not active: the booking endpoints refuse the token now.
    let refused = app
        .client
        .delete(app.url(&format!("/api/v1/reservations/{reservation}")))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Joining again starts a new entry.
    let rejoined = expect_status(
        app.client
            .post(app.url(&format!("/api/v1/concerts/{concert}/queue")))
            .bearer_auth(&fan.access)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_ne!(rejoined["queue_token"], fan.queue.as_str());
    assert_ne!(rejoined["status"], "done", "{rejoined}");
    // A replay after the slot is gone still gets the stored answer.
    assert_eq!(&pay(&app, &fan, &reservation, "pay-1").await, &answers[0]);
    // The user's tickets, newest first.
    let mine = expect_status(
        app.get_authed("/api/v1/users/me/reservations", &fan.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["id"], reservation.as_str());
    assert_eq!(mine["items"][0]["ticket_code"], code);
    ledgers_balance(&app).await;
    check_invariants(&app, &schedule).await;
}

#[tokio::test]
async fn an_expired_hold_cannot_be_paid_and_its_seats_go_to_the_next_fan() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "1".into());
    })
    .await;
    let mut fans = fans(&app, &concert, 2).await;
    let (next, fan) = (fans.remove(1), fans.remove(0));
    charge(&app, &fan, Some("top-up"), json!(1000)).await;
    let (_, held) = hold(&app, &fan, &schedule, &seats[..1]).await;
    let due: chrono::DateTime<chrono::Utc> = serde_json::from_value(held["expires_at"].clone()).unwrap();
    tokio::time::sleep((due - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100)).await;
    let (status, body) = pay(&app, &fan, held["id"].as_str().unwrap(), "late").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("hold_expired"))
    );
    assert_eq!(ledger_rows(&app, &fan, "payment").await, 0, "nothing charged");
    let (status, _) = hold(&app, &next, &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CREATED);
    ledgers_balance(&app).await;
    check_invariants(&app, &schedule).await;
}

#[tokio::test]
async fn concurrent_debits_never_drive_a_balance_below_zero() {
    let (app, concert, _, _) = sale(|_| {}).await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    charge(&app, &fan, Some("top-up"), json!(1000)).await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    // 30 debits of 100 at once against 1,000: exactly 10 can succeed.
    let results = join_all((0..30).map(|_| {
        let deps = deps.clone();
        let user = fan.id;
        async move {
            let mut tx = deps.db.begin().await.unwrap();
            let debited = imticket::infra::postgres::wallet::debit(&mut tx, user, 100, uuid::Uuid::now_v7())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            debited
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), 10);
    let balance = expect_status(
        app.get_authed("/api/v1/users/me/points", &fan.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(balance["balance"], 0);
    ledgers_balance(&app).await;
}

/// The usual payment (held, the caller's, enough points) is one statement with its key: a
/// process of its own (the real binary, so its metrics are its alone) counts it as
/// `path="fast"`; its stored answer is replayed and a reused key refused; a refusal (402) goes
/// the general way and counts no payment; the rows are those of any payment (one
/// debit, one payment, `paid`, one outbox event), and the worker confirms it as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_of_a_held_reservation_takes_the_one_statement_path() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    // Not the Redis's directory: on the cluster pass that Redis is shared and has none here.
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("api-pay.log");
    let (_api, port) = spawn_listening(binary_command(env!("CARGO_BIN_EXE_imticket-api"), &app.env), &log);
    let mut fans = fans(&app, &concert, 2).await;
    let (poor, fan) = (fans.remove(1), fans.remove(0));
    charge(&app, &fan, Some("top-up"), json!(1000)).await;
    let (status, held) = hold(&app, &fan, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let reservation = held["id"].as_str().unwrap().to_owned();
    let (status, poor_held) = hold(&app, &poor, &schedule, &seats[2..3]).await;
    assert_eq!(status, StatusCode::CREATED, "{poor_held}");
    let base = format!("http://127.0.0.1:{port}");
    let pay_there = |fan: &Fan, reservation: String| {
        app.client
            .post(format!("{base}/api/v1/reservations/{reservation}/payments"))
            .bearer_auth(&fan.access)
            .header("x-queue-token", &fan.queue)
            .header("idempotency-key", "pay-1")
            .send()
    };
    let paid = pay_there(&fan, reservation.clone()).await.unwrap();
    assert_eq!(paid.status(), StatusCode::CREATED);
    let body: serde_json::Value = paid.json().await.unwrap();
    assert_eq!(
        (body["amount"].clone(), body["balance"].clone()),
        (json!(200), json!(800))
    );
    let refused = pay_there(&poor, poor_held["id"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    // The statement stored the answer with the payment: a replay gets it, the key on another
    // reservation is 409, and neither pays again.
    let replayed = pay_there(&fan, reservation.clone()).await.unwrap();
    assert_eq!(replayed.status(), StatusCode::CREATED);
    assert_eq!(replayed.json::<serde_json::Value>().await.unwrap(), body);
    let (status, other) = hold(&app, &fan, &schedule, &seats[3..4]).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let reused = pay_there(&fan, other["id"].as_str().unwrap().to_owned()).await.unwrap();
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    let reused: serde_json::Value = reused.json().await.unwrap();
    assert_eq!(reused["code"], "idempotency_key_reused", "{reused}");

    let metrics = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |path: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("payments_total") && l.contains(&format!("path=\"{path}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .map(|v| v.parse::<f64>().unwrap())
    };
    assert_eq!(count("fast"), Some(1.0), "{metrics}");
    assert_eq!(count("general"), None, "the refusal paid nothing");
    let counted = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains("scope=\"reservation.pay\""))
            .and_then(|l| l.rsplit(' ').next())
            .map(|v| v.parse::<f64>().unwrap())
    };
    assert_eq!(counted("idempotency_replays_total"), Some(1.0), "{metrics}");
    assert_eq!(counted("idempotency_conflicts_total"), Some(1.0), "{metrics}");

    let (debits, payments, outbox, status): (i64, i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM point_transactions WHERE reservation_id = r.id AND kind = 'payment' AND amount = -200),
                (SELECT count(*) FROM payments WHERE reservation_id = r.id AND amount = 200 AND idempotency_key = 'pay-1'),
                (SELECT count(*) FROM outbox WHERE event_type = 'payment.completed' AND payload->>'reservation_id' = r.id::text
                   AND (payload->>'amount')::bigint = 200),
                r.status
         FROM reservations r WHERE r.id = $1::uuid",
    )
    .bind(&reservation)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((debits, payments, outbox, status.as_str()), (1, 1, 1, "paid"));
    let (status, _) = pay(&app, &poor, poor_held["id"].as_str().unwrap(), "pay-1").await;
    assert_eq!(
        status,
        StatusCode::PAYMENT_REQUIRED,
        "refused again, the general way, nothing written"
    );
    app.every_event_published().await;
    run_payment_worker(&app).await;
    let confirmed: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1::uuid")
        .bind(&reservation)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(confirmed, "confirmed");
    ledgers_balance(&app).await;
    check_invariants(&app, &schedule).await;
}
