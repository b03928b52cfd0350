//! Holding seats under real concurrency: one seat wanted by 1,000, overlapping multi-seat
//! holds, one user racing their own cap, a due hold counting as free, cancelling. The
//! invariants are checked in the database afterwards.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::join_all;
use imticket::app::tokens::TokenService;
use imticket::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// A fan with an access token and an active queue entry for the concert.
pub struct Fan {
    pub id: Uuid,
    pub access: String,
    pub queue: String,
}

/// `n` fans (rows in `users`, tokens minted with the deployment's key: hashing 1,000 passwords
/// would take minutes), each admitted to the concert's waiting room.
pub async fn fans(app: &TestApp, concert: &str, n: usize) -> Vec<Fan> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, name)
         SELECT id, 'fan-' || id || '@example.com', 'not-a-hash', 'Fan' FROM UNNEST($1::uuid[]) AS t(id)",
    )
    .bind(&ids)
    .execute(&app.db)
    .await
    .unwrap();
    let tokens = TokenService::new(
        &secrecy::SecretString::from(app.env["JWT_SECRET"].clone()),
        Duration::from_secs(3600),
    );
    futures_util::stream::iter(ids)
        .map(|id| {
            let access = tokens.issue(id, Role::User).unwrap().access_token;
            async move {
                let response = app
                    .client
                    .post(app.url(&format!("/api/v1/concerts/{concert}/queue")))
                    .bearer_auth(&access)
                    .send()
                    .await
                    .unwrap();
                let joined = expect_status(response, StatusCode::OK).await;
                assert_eq!(joined["status"], "active", "{joined}");
                Fan {
                    id,
                    access,
                    queue: joined["queue_token"].as_str().unwrap().to_owned(),
                }
            }
        })
        .buffered(200)
        .collect()
        .await
}

/// A deployment where every joiner is admitted at once, and a schedule with `seats` seats.
pub async fn sale(
    customize: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> (TestApp, String, String, Vec<Uuid>) {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1000000".into());
        env.insert("IMTICKET_QUEUE_PROMOTE_PER_SECOND".into(), "1000000".into());
        env.insert("IMTICKET_REDIS_TIMEOUT_MS".into(), "10000".into());
        customize(env);
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    app.add_seats(
        &admin,
        &schedule,
        json!([{"name": "A", "rows": 10, "seats_per_row": 10, "price": 100}]),
    )
    .await;
    let seats: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM seats WHERE schedule_id = $1::uuid ORDER BY row_number, seat_number")
            .bind(&schedule)
            .fetch_all(&app.db)
            .await
            .unwrap();
    (app, concert, schedule, seats)
}

pub async fn hold(app: &TestApp, fan: &Fan, schedule: &str, seats: &[Uuid]) -> (StatusCode, Value) {
    let mut tries = 0;
    loop {
        let sent = app
            .client
            .post(app.url("/api/v1/reservations"))
            .bearer_auth(&fan.access)
            .header("x-queue-token", &fan.queue)
            .json(&json!({"schedule_id": schedule, "seat_ids": seats}))
            .send()
            .await;
        match sent {
            // Not read by the server in time (overloaded test machine): sent again, as a client
            // would; a hold that was not read did nothing.
            Ok(r) if r.status() == StatusCode::REQUEST_TIMEOUT && tries < 5 => tries += 1,
            Err(e) if (e.is_request() || e.is_connect()) && tries < 5 => tries += 1,
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap();
                return (status, serde_json::from_str(&text).unwrap_or(Value::Null));
            }
            Err(e) => panic!("hold: {e}"),
        }
    }
}

/// `POST /users/me/points/charge` for the fan (with `key` as `Idempotency-Key`, if any).
pub async fn charge(app: &TestApp, fan: &Fan, key: Option<&str>, amount: Value) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/users/me/points/charge"))
        .bearer_auth(&fan.access)
        .json(&json!({ "amount": amount }));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /reservations/{id}/payments` for the fan with `key`.
pub async fn pay(app: &TestApp, fan: &Fan, reservation: &str, key: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/reservations/{reservation}/payments")))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs the payment worker in this process until the payments stream is drained.
pub async fn run_payment_worker(app: &TestApp) {
    // The API hands a payment's event to its batching publisher, which puts it on the stream a
    // moment after the answer: wait for that (a running worker would simply read it next),
    // unless Redis is down on purpose, which the caller then sees for itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let unpublished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND event_type = 'payment.completed'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if unpublished == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.drain_role(
        imticket::events::Stream::Payments,
        imticket::worker::handlers::PaymentHandler::new,
    )
    .await;
}

/// I1 and the counts: no seat in two live reservations; a seat is `held` exactly when a live
/// held reservation has it; the schedule's available count equals its available seats.
pub async fn check_invariants(app: &TestApp, schedule: &str) {
    let doubled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT seat_id FROM reservation_seats
          WHERE reservation_status IN ('held', 'paid', 'confirmed') GROUP BY seat_id HAVING count(*) > 1) d",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "a seat in two live reservations");
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM seats s WHERE s.schedule_id = $1::uuid AND
           ((s.status = 'held') <> EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.seat_id = s.id
                                             AND rs.reservation_status IN ('held', 'paid'))
            OR (s.status = 'sold') <> EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.seat_id = s.id
                                               AND rs.reservation_status = 'confirmed'))",
    )
    .bind(schedule)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(mismatched, 0, "seat status disagrees with its reservations");
    let (counted, available): (i32, i64) = sqlx::query_as(
        "SELECT (i.available_seats + COALESCE((SELECT sum(available_delta) FROM schedule_inventory_slots d
                                                WHERE d.schedule_id = i.schedule_id), 0))::int,
                (SELECT count(*) FROM seats WHERE schedule_id = i.schedule_id AND status = 'available')
         FROM schedule_inventory i WHERE i.schedule_id = $1::uuid",
    )
    .bind(schedule)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        i64::from(counted),
        available,
        "the available count drifted from the seats"
    );
}

/// How many times PostgreSQL ran a statement that takes seats (this test's database): the
/// one-statement hold (`hold_seats`), and the general path's seat update.
async fn seat_takes(app: &TestApp) -> (i64, i64) {
    (
        statement_calls(&app.db, "SELECT outcome %FROM hold_seats_told(%").await,
        statement_calls(
            &app.db,
            "UPDATE seats s SET status = %FROM unnest($1::uuid[]) AS wanted(id)%RETURNING s.id, s.price",
        )
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_fans_on_one_seat_one_wins_and_the_losers_never_reach_postgres() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fans = fans(&app, &concert, 1000).await;
    count_statements(&app.db).await;
    let before = seat_takes(&app).await;
    let results = join_all(fans.iter().map(|f| hold(&app, f, &schedule, &seats[..1]))).await;
    let won: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(won.len(), 1, "exactly one hold wins");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(
            (*status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("seat_unavailable")),
            "{body}"
        );
        assert_eq!(body["taken_seat_ids"], json!([seats[0]]));
    }
    assert_eq!(won[0]["status"], "held");
    assert_eq!(won[0]["seat_ids"], json!([seats[0]]));
    assert_eq!(won[0]["amount"], 100);
    // The 999 losers were turned away by the Redis gate: PostgreSQL took seats once, in the
    // one-statement hold.
    let after = seat_takes(&app).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 0),
        "statements that took seats (hold_seats, the general path's UPDATE)"
    );
    check_invariants(&app, &schedule).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_overlapping_holds_never_share_a_seat_and_every_win_is_complete() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fans = fans(&app, &concert, 2000).await;
    // Each fan wants 1 to 4 seats out of the 100, picked at random: heavy overlap.
    let wanted: Vec<Vec<Uuid>> = (0..fans.len())
        .map(|_| {
            let n = rand::random_range(1..=4usize);
            let mut picked = HashSet::new();
            while picked.len() < n {
                picked.insert(seats[rand::random_range(0..seats.len())]);
            }
            picked.into_iter().collect()
        })
        .collect();
    let results = join_all(fans.iter().zip(&wanted).map(|(f, w)| hold(&app, f, &schedule, w))).await;
    let mut held_seats = HashSet::new();
    let mut wins = 0;
    for ((status, body), want) in results.iter().zip(&wanted) {
        match *status {
            StatusCode::CREATED => {
                wins += 1;
                let got: HashSet<Uuid> = serde_json::from_value(body["seat_ids"].clone()).unwrap();
                assert_eq!(got, want.iter().copied().collect::<HashSet<_>>(), "all or nothing");
                for seat in got {
                    assert!(held_seats.insert(seat), "seat {seat} won twice");
                }
            }
            StatusCode::CONFLICT => assert_eq!(body["code"], "seat_unavailable", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(wins > 0);
    let in_db: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE status = 'held'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(in_db, wins, "every 201 is one held reservation, nothing else");
    check_invariants(&app, &schedule).await;
    let (code, report) = crate::audit::audit(&app);
    assert_eq!(code, Some(0), "imticket-admin audit after the storm: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fan_racing_their_own_cap_never_holds_more_than_it() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_MAX_SEATS_PER_USER".into(), "4".into());
    })
    .await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    // 20 concurrent holds of 2 distinct seats each.
    let results = join_all((0..20).map(|i| hold(&app, &fan, &schedule, &seats[i * 2..i * 2 + 2]))).await;
    let wins = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(wins, 2, "4 seats = 2 holds of 2");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(
            (*status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("seat_limit_reached")),
            "{body}"
        );
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
         WHERE r.user_id = $1 AND r.status = 'held'",
    )
    .bind(fan.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(live, 4);
    check_invariants(&app, &schedule).await;
}

#[tokio::test]
async fn a_hold_past_its_time_counts_as_free_and_is_expired_by_the_next_hold() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "1".into());
    })
    .await;
    let mut fans = fans(&app, &concert, 2).await;
    let (second, first) = (fans.remove(1), fans.remove(0));
    let (status, held) = hold(&app, &first, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let (status, _) = hold(&app, &second, &schedule, &seats[1..2]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Wait until the hold is due (its expires_at), then the seat is free to take.
    let due: chrono::DateTime<chrono::Utc> = serde_json::from_value(held["expires_at"].clone()).unwrap();
    tokio::time::sleep((due - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100)).await;
    let map_path = format!("/api/v1/schedules/{schedule}/seats");
    let state_in_map = |map: &Value, seat: Uuid| {
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == json!(seat))
            .unwrap()["status"]
            .clone()
    };
    let before = expect_status(app.get(&map_path).await, StatusCode::OK).await;
    assert_eq!(state_in_map(&before, seats[0]), "held", "no worker expired it yet");
    let (status, body) = hold(&app, &second, &schedule, &seats[1..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first_id: Uuid = serde_json::from_value(held["id"].clone()).unwrap();
    let old: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1")
        .bind(first_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(old, "expired", "expired in the same transaction");
    // It wrote the `reservation.expired` fact, and the seat map shows the old hold's other seat
    // free and the taken one held.
    let fact: Value = sqlx::query_scalar("SELECT payload FROM outbox WHERE event_type = 'reservation.expired'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(fact["reservation_id"], json!(first_id));
    assert_eq!(fact["seat_ids"].as_array().map(Vec::len), Some(2));
    let after = expect_status(app.get(&map_path).await, StatusCode::OK).await;
    assert_eq!(state_in_map(&after, seats[0]), "available");
    assert_eq!(state_in_map(&after, seats[1]), "held");
    let shown = expect_status(
        app.get_authed(&format!("/api/v1/reservations/{first_id}"), &first.access)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["status"], "expired");
    check_invariants(&app, &schedule).await;
}

#[tokio::test]
async fn cancelling_frees_the_seats_and_bad_requests_change_nothing() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let mut fans = fans(&app, &concert, 2).await;
    let (other, fan) = (fans.remove(1), fans.remove(0));
    let (status, held) = hold(&app, &fan, &schedule, &seats[..3]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(held["amount"], 300);
    let id = held["id"].as_str().unwrap().to_owned();
    let cancel = |who: &Fan| {
        app.client
            .delete(app.url(&format!("/api/v1/reservations/{id}")))
            .bearer_auth(&who.access)
            .header("x-queue-token", &who.queue)
            .send()
    };
    // Someone else's reservation does not exist for them.
    expect_problem(
        cancel(&other).await.unwrap(),
        StatusCode::NOT_FOUND,
        "reservation_not_found",
    )
    .await;
    expect_problem(
        app.get_authed(&format!("/api/v1/reservations/{id}"), &other.access)
            .await,
        StatusCode::NOT_FOUND,
        "reservation_not_found",
    )
    .await;
    assert_eq!(cancel(&fan).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(
        cancel(&fan).await.unwrap().status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    let shown = expect_status(
        app.get_authed(&format!("/api/v1/reservations/{id}"), &fan.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["status"], "cancelled");
    assert_eq!(
        shown["expires_at"], held["expires_at"],
        "the hold's answer shows what is stored"
    );
    // The seats (and their Redis gates) are free again at once.
    let (status, body) = hold(&app, &other, &schedule, &seats[..3]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Bad requests: 422 naming the field, nothing held.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations")
        .fetch_one(&app.db)
        .await
        .unwrap();
    for (wanted, code) in [
        (vec![], "invalid_field"),
        (seats[10..15].to_vec(), "too_many_seats"),
        (vec![seats[20], seats[20]], "invalid_field"),
        (vec![Uuid::now_v7()], "unknown_seats"),
    ] {
        let (status, body) = hold(&app, &fan, &schedule, &wanted).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
        assert!(body["detail"].as_str().unwrap().starts_with("seat_ids"), "{body}");
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(before, after);
    // Without an active queue entry: 401 / 403, nothing held.
    let response = app
        .client
        .post(app.url("/api/v1/reservations"))
        .bearer_auth(&fan.access)
        .json(&json!({"schedule_id": schedule, "seat_ids": [seats[30]]}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "missing_queue_token").await;
    check_invariants(&app, &schedule).await;
}

#[tokio::test]
async fn a_retried_hold_with_its_key_returns_the_same_reservation_never_a_second() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    let send = |key: &'static str, wanted: Vec<Uuid>| {
        let (app, fan, schedule) = (&app, &fan, schedule.clone());
        async move {
            let response = app
                .client
                .post(app.url("/api/v1/reservations"))
                .bearer_auth(&fan.access)
                .header("x-queue-token", &fan.queue)
                .header("idempotency-key", key)
                .json(&json!({"schedule_id": schedule, "seat_ids": wanted}))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let answers = join_all((0..20).map(|_| send("hold-1", seats[..2].to_vec()))).await;
    assert_eq!(answers[0].0, StatusCode::CREATED, "{:?}", answers[0]);
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "one reservation, 20 identical answers"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE user_id = $1")
        .bind(fan.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    // The same seats in another order are the same request: the same answer.
    let reordered = send("hold-1", vec![seats[1], seats[0]]).await;
    assert_eq!(reordered, answers[0]);
    let (status, body) = send("hold-1", seats[2..3].to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    check_invariants(&app, &schedule).await;
}

/// Deletes every seat gate of the deployment, as if they had expired; returns how many.
async fn drop_seat_gates(app: &TestApp) -> usize {
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let mut conn = deps.redis.connection().await.unwrap();
    let gates: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}hold:*", deps.keys.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !gates.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&gates).query_async(&mut conn).await.unwrap();
    }
    gates.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_sale_and_its_gates_lost_never_double_book() {
    let (mut app, concert, schedule, seats) = sale(|_| {}).await;
    let fans = fans(&app, &concert, 600).await;
    let pick = |_| vec![seats[rand::random_range(0..seats.len())]];
    let wanted: Vec<Vec<Uuid>> = (0..fans.len()).map(pick).collect();
    // First wave: 300 fans on 100 seats.
    let first = join_all(
        fans[..300]
            .iter()
            .zip(&wanted)
            .map(|(f, w)| hold(&app, f, &schedule, w)),
    )
    .await;
    assert!(first.iter().any(|(s, _)| *s == StatusCode::CREATED));
    // Redis crashes (kill -9: whatever the last second wrote may be lost) and comes back; then
    // every seat gate is lost too, as if it had expired: only PostgreSQL stands between the
    // second wave and the seats the first wave holds.
    app.redis.kill();
    app.redis.restart();
    drop_seat_gates(&app).await;
    let second = join_all(
        fans[300..]
            .iter()
            .zip(&wanted[300..])
            .map(|(f, w)| hold(&app, f, &schedule, w)),
    )
    .await;
    for (status, body) in first.iter().chain(&second) {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::CONFLICT && body["code"] == "seat_unavailable")
                || *status == StatusCode::FORBIDDEN
                || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}: {body}"
        );
    }
    check_invariants(&app, &schedule).await;
    let (code, report) = crate::audit::audit(&app);
    assert_eq!(code, Some(0), "{report}");
}

#[tokio::test]
async fn a_hold_short_of_a_seat_in_postgres_takes_none_of_them() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fans = fans(&app, &concert, 3).await;
    assert_eq!(
        hold(&app, &fans[0], &schedule, &seats[..1]).await.0,
        StatusCode::CREATED
    );
    // The gates are lost (a Redis restart): only PostgreSQL sees that seat 0 is taken. The
    // one-statement hold takes seat 1, finds seat 0 held, and puts seat 1 back.
    assert_eq!(drop_seat_gates(&app).await, 1);
    let (status, body) = hold(&app, &fans[1], &schedule, &[seats[1], seats[0]]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("seat_unavailable")),
        "{body}"
    );
    assert_eq!(body["taken_seat_ids"], json!([seats[0]]));
    let status: String = sqlx::query_scalar("SELECT status FROM seats WHERE id = $1")
        .bind(seats[1])
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "available");
    check_invariants(&app, &schedule).await;
    let (status, body) = hold(&app, &fans[2], &schedule, &seats[1..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    check_invariants(&app, &schedule).await;
}

/// An API process killed between taking a seat's Redis gate and committing the hold leaves a
/// gate with no hold behind it. Past a grace period the gate no longer refuses the seat: the
/// next fan's hold goes to PostgreSQL, which finds the seat free. A fresh gate (a hold in
/// progress) still refuses.
#[tokio::test]
async fn a_gate_left_by_a_hold_that_never_committed_does_not_block_its_seat() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fans = fans(&app, &concert, 2).await;
    let schedule_id: Uuid = schedule.parse().unwrap();
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let mut redis = deps.redis.connection().await.unwrap();
    let minted = |seconds_ago: u64| {
        let at = std::time::SystemTime::now() - Duration::from_secs(seconds_ago);
        let since = at.duration_since(std::time::UNIX_EPOCH).unwrap();
        Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            since.as_secs(),
            since.subsec_nanos(),
        ))
    };
    for (seat, owner) in [(seats[0], minted(60)), (seats[1], minted(0))] {
        let _: () = redis::cmd("SET")
            .arg(deps.keys.seat_gate(schedule_id, seat))
            .arg(owner.to_string())
            .arg("PX")
            .arg(300_000)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let (status, body) = hold(&app, &fans[0], &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CREATED, "a stale gate: {body}");
    let owner: String = redis::cmd("GET")
        .arg(deps.keys.seat_gate(schedule_id, seats[0]))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(owner, body["id"].as_str().unwrap(), "the gate is the new hold's");
    let (status, body) = hold(&app, &fans[1], &schedule, &seats[1..2]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("seat_unavailable")),
        "a fresh gate still refuses"
    );
    // And the stale gate's seat, now held for real, refuses the other fan.
    let (status, _) = hold(&app, &fans[1], &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    check_invariants(&app, &schedule).await;
}

/// A hold's `reservation.created` is published by the API process itself, with no relay
/// running, and concurrent holds' events go out together (one claim, XADD and commit per
/// batch: rows of one batch share their `published_at`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holds_events_are_published_in_batches_without_a_relay() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fans = fans(&app, &concert, seats.len()).await;
    let results = join_all(
        fans.iter()
            .zip(&seats)
            .map(|(f, s)| hold(&app, f, &schedule, std::slice::from_ref(s))),
    )
    .await;
    assert!(results.iter().all(|(status, _)| *status == StatusCode::CREATED));
    let published = || async {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT count(*), count(published_at), count(DISTINCT published_at) FROM outbox
             WHERE event_type = 'reservation.created'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    eventually("every hold's event published", Duration::from_secs(10), || async {
        let (rows, done, _) = published().await;
        rows == seats.len() as i64 && done == rows
    })
    .await;
    let (rows, _, batches) = published().await;
    assert!(batches < rows, "{rows} events in {batches} batches");
    eprintln!("evidence: {rows} concurrent holds' events published in {batches} batches");
}
