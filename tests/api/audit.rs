//! `imticket-admin audit`: clean after real holds and payments, and it catches a planted
//! violation of each invariant.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::holds::{charge, fans, hold, pay, sale};

pub fn audit(app: &TestApp) -> (Option<i32>, String) {
    let output = binary_command(env!("CARGO_BIN_EXE_imticket-admin"), &app.env)
        .arg("audit")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

async fn exec(app: &TestApp, sql: &str) {
    sqlx::raw_sql(sql).execute(&app.db).await.unwrap();
}

#[tokio::test]
async fn the_audit_is_clean_after_real_work_and_catches_each_planted_violation() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let mut fans = fans(&app, &concert, 2).await;
    let (other, fan) = (fans.remove(1), fans.remove(0));
    let (status, held) = hold(&app, &fan, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED);
    let (charged, _) = charge(&app, &fan, Some("k"), json!(1000)).await;
    assert_eq!(charged, StatusCode::OK);
    let (paying, _) = pay(&app, &fan, held["id"].as_str().unwrap(), "p").await;
    assert_eq!(paying, StatusCode::CREATED);
    hold(&app, &other, &schedule, &seats[5..6]).await;

    let (code, text) = audit(&app);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("0 violation(s)"), "{text}");

    // Plant one violation of each kind.
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (fan_id, seat, free) = (fan.id, seats[0], seats[50]);
    exec(
        &app,
        &format!(
            "DROP INDEX reservation_seats_live_seat_key;
             INSERT INTO reservations (id, user_id, schedule_id, status, amount, expires_at)
               VALUES ('{a}', '{fan_id}', '{schedule}', 'held', 0, now() + interval '1 hour'),
                      ('{b}', '{fan_id}', '{schedule}', 'held', 0, now() + interval '1 hour');
             INSERT INTO reservation_seats VALUES ('{a}', '{seat}', 'held');
             UPDATE seats SET status = 'sold' WHERE id = '{free}';
             INSERT INTO reservations (id, user_id, schedule_id, status, amount, expires_at, ticket_code)
               VALUES (gen_random_uuid(), '{fan_id}', '{schedule}', 'confirmed', 0, now(), 'TK-PLANTED');
             UPDATE wallets SET balance = balance + 5 WHERE user_id = '{fan_id}';
             INSERT INTO payments (id, reservation_id, user_id, amount, idempotency_key)
               VALUES (gen_random_uuid(), '{a}', '{fan_id}', 0, 'same'), (gen_random_uuid(), '{b}', '{fan_id}', 0, 'same');
             UPDATE schedule_inventory SET available_seats = available_seats - 7 WHERE schedule_id = '{schedule}';
             INSERT INTO outbox (event_id, stream, event_type, version, payload, occurred_at)
               VALUES (gen_random_uuid(), 'payments', 'payment.completed', 1, '{{}}', now() - interval '2 minutes');"
        ),
    )
    .await;
    let (code, text) = audit(&app);
    assert_eq!(code, Some(1), "{text}");
    for expected in [
        "I1  seat in more than one live reservation",
        "I1  seat status disagrees with its reservations",
        "I2  confirmed reservation without exactly one completed payment",
        "I3  wallet balance negative or not the sum of its ledger",
        "I4  one Idempotency-Key with more than one payment",
        "counts  schedule's available count differs",
        "I5  outbox event unpublished for more than a minute",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
