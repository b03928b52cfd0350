//! Sales statistics and settlement: an on-sale with the real worker roles running, then the
//! reports checked against the database they summarise — settlement against the wallet ledger,
//! exactly — and the handlers fed the same events twice.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::*;
use crate::holds::{Fan, charge, fans, hold, pay, sale};
use imticket::events::{Envelope, PaymentCompleted, ReservationCreated, encode};
use imticket::stream::Handler;
use imticket::worker::Role;
use imticket::worker::handlers::{SettlementHandler, StatisticsHandler};

/// The worker roles of an on-sale, in this process, until the guard is dropped.
fn workers(app: &TestApp) -> tokio_util::sync::DropGuard {
    let stop = CancellationToken::new();
    let roles = vec![
        Role::Payment,
        Role::Expiry,
        Role::ExpiryScheduler,
        Role::OutboxRelay,
        Role::Statistics,
    ];
    tokio::spawn(imticket::worker::run(config_from(&app.env), roles, stop.clone()));
    stop.drop_guard()
}

async fn admin_get(app: &TestApp, admin: &str, path: &str) -> (StatusCode, String) {
    let response = app.get_authed(path, admin).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// What the ledger says was charged, per (UTC day, concert).
pub(crate) async fn ledger(app: &TestApp) -> Vec<(String, Uuid, i64, i64)> {
    sqlx::query_as(
        "SELECT to_char((pt.created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'), s.concert_id, count(*), sum(-pt.amount)::bigint
         FROM point_transactions pt JOIN reservations r ON r.id = pt.reservation_id JOIN schedules s ON s.id = r.schedule_id
         WHERE pt.kind = 'payment' GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

pub(crate) async fn settled(app: &TestApp) -> Vec<(String, Uuid, i64, i64)> {
    sqlx::query_as("SELECT to_char(day, 'YYYY-MM-DD'), concert_id, payments, points FROM settlement_days ORDER BY 1, 2")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_sale_settles_to_the_ledger_exactly_and_the_report_counts_every_step() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "6".into());
    })
    .await;
    let _workers = workers(&app);
    let admin = app.admin_token().await;
    // 200 fans, one seat each (100 A seats at 100 points). Of every four: three pay, one lets
    // the hold expire; ten of the payers have no points (402) and so expire too.
    let buyers = fans(&app, &concert, 100).await;
    let outcomes: Vec<(bool, bool)> = futures_util::stream::iter(buyers.iter().zip(&seats).enumerate())
        .map(|(i, (fan, seat)): (usize, (&Fan, &Uuid))| {
            let (app, schedule) = (&app, &schedule);
            async move {
                let pays = i % 4 != 0;
                let broke = pays && i < 40 && i % 4 == 1;
                if !broke {
                    let (status, body) = charge(app, fan, Some(&format!("charge-{i}")), json!(1000)).await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                }
                let (status, held) = hold(app, fan, schedule, &[*seat]).await;
                assert_eq!(status, StatusCode::CREATED, "{held}");
                let reservation = held["id"].as_str().unwrap().to_owned();
                if !pays {
                    return (false, false);
                }
                let (status, body) = pay(app, fan, &reservation, &format!("pay-{i}")).await;
                if broke {
                    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
                    return (false, true);
                }
                assert_eq!(status, StatusCode::CREATED, "{body}");
                (true, false)
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let paid = outcomes.iter().filter(|(p, _)| *p).count() as i64;
    let broke = outcomes.iter().filter(|(_, b)| *b).count() as i64;
    assert_eq!((paid, broke), (65, 10));
    let unpaid = 100 - paid;

    // Every payment confirmed and settled, every unpaid hold expired and counted.
    eventually(
        "the statistics role to count the on-sale",
        Duration::from_secs(90),
        || async {
            let (status, body) = admin_get(&app, &admin, &format!("/api/v1/admin/reports/concerts/{concert}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let report: Value = serde_json::from_str(&body).unwrap();
            let s = &report["schedules"][0];
            s["seats_sold"] == json!(paid)
                && s["holds_expired"] == json!(unpaid)
                && report["funnel"]["paid"] == json!(paid)
        },
    )
    .await;
    let (_, body) = admin_get(&app, &admin, &format!("/api/v1/admin/reports/concerts/{concert}")).await;
    let report: Value = serde_json::from_str(&body).unwrap();
    let s = &report["schedules"][0];
    assert_eq!(s["schedule_id"], json!(schedule));
    assert_eq!(
        (
            &s["holds_placed"],
            &s["holds_confirmed"],
            &s["revenue_points"],
            &s["seats_expired"]
        ),
        (&json!(100), &json!(paid), &json!(paid * 100), &json!(unpaid)),
        "{report}"
    );
    // The seats as they stand now agree with the events.
    let sold: i64 = sqlx::query_scalar("SELECT count(*) FROM seats WHERE schedule_id = $1::uuid AND status = 'sold'")
        .bind(&schedule)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sold, paid);
    assert_eq!(s["seats_available"], json!(100 - paid));
    assert_eq!(s["seats_held_now"], json!(0));
    assert_eq!(
        report["funnel"],
        json!({"joined": 100, "admitted": 100, "held": 100, "paid": paid, "admitted_never_held": 0, "held_never_paid": unpaid})
    );
    assert_eq!(report["payment_failures"], json!({"insufficient_points": broke}));

    // Settlement: the ledger's own rows, day by day, exactly.
    let ledger = ledger(&app).await;
    assert_eq!(settled(&app).await, ledger);
    assert_eq!(ledger.iter().map(|l| l.3).sum::<i64>(), paid * 100);
    let today = chrono::Utc::now().date_naive();
    let span = format!(
        "from={}&to={}",
        today - chrono::Duration::days(1),
        today + chrono::Duration::days(1)
    );
    let (status, body) = admin_get(&app, &admin, &format!("/api/v1/admin/reports/settlement?{span}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let settlement: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&settlement["total_points"], &settlement["total_payments"]),
        (&json!(paid * 100), &json!(paid))
    );
    // The same as CSV: a header, then one line per day and concert.
    let response = app
        .get_authed(&format!("/api/v1/admin/reports/settlement?{span}&format=csv"), &admin)
        .await;
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "day,concert_id,payments,points");
    let expected: Vec<String> = ledger.iter().map(|(d, c, n, p)| format!("{d},{c},{n},{p}")).collect();
    assert_eq!(lines[1..].to_vec(), expected);
    let (_, csv) = admin_get(
        &app,
        &admin,
        &format!("/api/v1/admin/reports/concerts/{concert}?format=csv"),
    )
    .await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("schedule_id,starts_at,seats_total,"), "{csv}");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with(&format!("{schedule},")), "{csv}");

    // The operator CLI says the same.
    let cli = admin_cli(
        &app,
        &[
            "report",
            "settlement",
            "--from",
            &today.to_string(),
            "--to",
            &today.to_string(),
            "--csv",
        ],
    );
    assert_eq!(cli.trim_end().lines().skip(1).collect::<Vec<_>>(), expected);
    let cli = admin_cli(&app, &["--json", "report", "concert", &concert]);
    let from_cli: Value = serde_json::from_str(&cli).unwrap();
    assert_eq!(from_cli["funnel"], report["funnel"]);
}

pub(crate) fn admin_cli(app: &TestApp, args: &[&str]) -> String {
    let output = binary_command(env!("CARGO_BIN_EXE_imticket-admin"), &app.env)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn envelope_with_id<E: imticket::events::Event>(event: &E) -> Envelope {
    encode(event).unwrap()
}

#[tokio::test]
async fn the_same_events_handled_twice_count_once() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let buyer = fans(&app, &concert, 1).await.remove(0);
    charge(&app, &buyer, Some("c"), json!(500)).await;
    let (_, held) = hold(&app, &buyer, &schedule, &seats[..2]).await;
    let reservation: Uuid = held["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = pay(&app, &buyer, &reservation.to_string(), "p").await;
    assert_eq!(status, StatusCode::CREATED);

    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let created = envelope_with_id(&ReservationCreated {
        reservation_id: reservation,
        user_id: buyer.id,
        concert_id: concert.parse().unwrap(),
        schedule_id: schedule.parse().unwrap(),
        seat_ids: seats[..2].to_vec(),
        amount: 200,
        expires_at: chrono::Utc::now(),
    });
    let payment = envelope_with_id(&PaymentCompleted {
        payment_id: Uuid::now_v7(),
        reservation_id: reservation,
        user_id: buyer.id,
        amount: 200,
    });
    let statistics = StatisticsHandler::new(deps.clone());
    let settlement = SettlementHandler::new(deps.clone());
    // A redelivery: the same entries again, and once more inside a batch of their own.
    for _ in 0..2 {
        let outcomes = statistics.handle(std::slice::from_ref(&created)).await;
        assert_eq!(outcomes, vec![imticket::stream::Outcome::Ack]);
        let outcomes = settlement.handle(&[payment.clone(), payment.clone()]).await;
        assert_eq!(outcomes, vec![imticket::stream::Outcome::Ack; 2]);
    }
    let (holds, seats_held): (i64, i64) =
        sqlx::query_as("SELECT holds_placed, seats_held FROM sales_schedule_totals WHERE schedule_id = $1::uuid")
            .bind(&schedule)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((holds, seats_held), (1, 2));
    assert_eq!(settled(&app).await, ledger(&app).await);
    assert_eq!(settled(&app).await[0].3, 200);
    // An event of a type the group does not count is acked and changes nothing; one that
    // does not decode is a dead letter.
    let other = Envelope::new("hold.expired", json!({"reservation_id": reservation}));
    let broken = Envelope::new("reservation.created", json!({"reservation_id": "nope"}));
    let outcomes = statistics.handle(&[other, broken]).await;
    assert_eq!(outcomes[0], imticket::stream::Outcome::Ack);
    assert!(
        matches!(outcomes[1], imticket::stream::Outcome::DeadLetter(_)),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn reports_are_for_admins_and_bad_requests_are_named() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 10).await;
    let fan = app.new_user().await;
    let response = app
        .get_authed(&format!("/api/v1/admin/reports/concerts/{concert}"), &fan.token)
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "admin_required").await;
    let response = app.get(&format!("/api/v1/admin/reports/concerts/{concert}")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .get_authed(&format!("/api/v1/admin/reports/concerts/{}", Uuid::now_v7()), &admin)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "concert_not_found").await;
    for query in [
        "from=2026-12-01&to=2026-11-30",
        "from=yesterday&to=2026-12-01",
        "from=2024-01-01&to=2026-12-01",
        "from=2026-12-01&to=2026-12-01&format=xml",
    ] {
        let response = app
            .get_authed(&format!("/api/v1/admin/reports/settlement?{query}"), &admin)
            .await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
    // A concert with no sales yet: zeros, not an error.
    let (status, body) = admin_get(&app, &admin, &format!("/api/v1/admin/reports/concerts/{concert}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["funnel"]["joined"], 0);
    assert_eq!(report["schedules"][0]["seats_sold"], 0);
}
