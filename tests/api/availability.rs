//! `app::availability::concert_sold_out`, the sold-out check the waiting room relies on.
//! Holds and sales do not exist yet (the booking issue), so the test sets the inventory and
//! inserts reservations with SQL, the way those use cases will leave them.

use std::time::Duration;

use imticket::app::Deps;
use imticket::app::catalog::availability::concert_sold_out;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

async fn sold_out(deps: &Deps, concert: &str) -> bool {
    concert_sold_out(deps, concert.parse().unwrap()).await.unwrap()
}

/// Creates two seats on `schedule` (inline job) and waits until they are there.
async fn two_seats(app: &TestApp, admin: &str, schedule: &str) {
    let sections = json!([{"name": "A", "rows": 1, "seats_per_row": 2, "price": 100}]);
    let job = app.request_seats(admin, schedule, "inline", sections).await;
    eventually("the seats exist", Duration::from_secs(30), || async {
        app.job(&job).await["status"] == "done"
    })
    .await;
}

/// What holds and sales will do to the counts: no seat of the schedule left to offer.
async fn take_every_seat(app: &TestApp, schedule: &str) {
    sqlx::query("UPDATE schedule_inventory SET available_seats = 0 WHERE schedule_id = $1::uuid")
        .bind(schedule)
        .execute(&app.db)
        .await
        .unwrap();
}

/// A `held` reservation of `schedule` expiring `expires_in_secs` from now (negative: expired
/// already, not yet swept by the expiry worker). Returns its id.
async fn hold(app: &TestApp, schedule: &str, expires_in_secs: i64) -> Uuid {
    let user = app.new_user().await;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO reservations (id, user_id, schedule_id, status, amount, expires_at)
         VALUES ($1, $2::uuid, $3::uuid, 'held', 200, now() + make_interval(secs => $4))",
    )
    .bind(id)
    .bind(&user.id)
    .bind(schedule)
    .bind(expires_in_secs as f64)
    .execute(&app.db)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn a_concert_is_sold_out_when_no_seat_is_left_and_no_hold_can_return_one() {
    let app = spawn_app().await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;

    assert!(!sold_out(&deps, &concert).await, "no seats yet: not sold out");
    assert!(
        !sold_out(&deps, &Uuid::now_v7().to_string()).await,
        "no such concert: not sold out"
    );

    two_seats(&app, &admin, &schedule).await;
    assert!(!sold_out(&deps, &concert).await, "seats available");

    take_every_seat(&app, &schedule).await;
    assert!(sold_out(&deps, &concert).await, "every seat taken, no hold");

    let live = hold(&app, &schedule, 300).await;
    assert!(
        !sold_out(&deps, &concert).await,
        "a live hold may still give seats back"
    );

    sqlx::query("UPDATE reservations SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(live)
        .execute(&app.db)
        .await
        .unwrap();
    assert!(
        sold_out(&deps, &concert).await,
        "a hold past its expiry counts for nothing, even before the sweep marks it expired"
    );

    // Other states of a reservation cannot give seats back either.
    let paid = hold(&app, &schedule, 300).await;
    sqlx::query("UPDATE reservations SET status = 'paid' WHERE id = $1")
        .bind(paid)
        .execute(&app.db)
        .await
        .unwrap();
    assert!(sold_out(&deps, &concert).await, "a paid reservation is no live hold");
}

#[tokio::test]
async fn seats_or_holds_on_any_schedule_keep_the_concert_on_sale_and_other_concerts_do_not() {
    let app = spawn_app().await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let admin = app.admin_token().await;
    let (concert, first) = app.concert_with_schedule(&admin, 30).await;
    let second = expect_status(
        app.post_json_authed(
            &format!("/api/v1/concerts/{concert}/schedules"),
            &admin,
            &json!({"starts_at": (chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339()}),
        )
        .await,
        reqwest::StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    two_seats(&app, &admin, &first).await;
    two_seats(&app, &admin, &second).await;

    take_every_seat(&app, &first).await;
    assert!(!sold_out(&deps, &concert).await, "the second schedule still has seats");
    take_every_seat(&app, &second).await;
    assert!(sold_out(&deps, &concert).await);

    // A live hold of another concert does not keep this one on sale.
    let (other, other_schedule) = app.concert_with_schedule(&admin, 30).await;
    two_seats(&app, &admin, &other_schedule).await;
    take_every_seat(&app, &other_schedule).await;
    hold(&app, &other_schedule, 300).await;
    assert!(sold_out(&deps, &concert).await);
    assert!(!sold_out(&deps, &other).await);

    // A live hold on either schedule does.
    hold(&app, &second, 300).await;
    assert!(!sold_out(&deps, &concert).await);
}
