//! The waiting room against a real Redis and PostgreSQL, with real concurrency: positions,
//! FIFO admission, the rate across promoters, the pre-queue shuffle, the gate, sold-out,
//! Redis down, and a promoter killed in the middle of an opening.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix_web::web;
use futures_util::future::join_all;
use imticket::app::Deps;
use imticket::app::tokens::{QueuePass, TokenService};
use imticket::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// Access tokens for made-up users, minted with the deployment's key: joining checks the token,
/// not the users table, and 5,000 password hashes would take minutes.
fn tokens(app: &TestApp) -> TokenService {
    TokenService::new(
        &secrecy::SecretString::from(app.env["JWT_SECRET"].clone()),
        Duration::from_secs(3600),
    )
}

fn user_token(tokens: &TokenService) -> (Uuid, String) {
    let id = Uuid::now_v7();
    (id, tokens.issue(id, Role::User).unwrap().access_token)
}

async fn concert(app: &TestApp, admin: &str, sale_opens_at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let mut body = json!({"title": "Aurora Live"});
    if let Some(at) = sale_opens_at {
        body["sale_opens_at"] = json!(at.to_rfc3339());
    }
    let created = expect_status(
        app.post_json_authed("/api/v1/concerts", admin, &body).await,
        StatusCode::CREATED,
    )
    .await;
    created["id"].as_str().unwrap().to_owned()
}

/// Joins as a client would: a request the server did not read in time (408, or a connection
/// closed before the answer) is sent again, and one the server shed (503 `overloaded`) is sent
/// again after its `Retry-After`. Joining is idempotent, so a retry can never make a second
/// entry: the tests below would see it as a duplicate or a gap.
async fn join(app: &TestApp, token: &str, concert: &str) -> Value {
    for _ in 0..30 {
        let sent = app
            .client
            .post(app.url(&format!("/api/v1/concerts/{concert}/queue")))
            .bearer_auth(token)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == StatusCode::REQUEST_TIMEOUT => continue,
            Ok(response) => match shed(response).await {
                Ok(response) => return expect_status(response, StatusCode::OK).await,
                Err(wait) => tokio::time::sleep(wait).await,
            },
            Err(err) if err.is_request() || err.is_connect() => continue,
            Err(err) => panic!("join: {err}"),
        }
    }
    panic!("join: no answer after 30 tries");
}

async fn queue_status(app: &TestApp, queue_token: &str) -> Value {
    for _ in 0..30 {
        let response = app
            .client
            .get(app.url("/api/v1/queue/status"))
            .header("x-queue-token", queue_token)
            .send()
            .await
            .unwrap();
        match shed(response).await {
            Ok(response) => return expect_status(response, StatusCode::OK).await,
            Err(wait) => tokio::time::sleep(wait).await,
        }
    }
    panic!("queue status: shed 30 times");
}

async fn leave(app: &TestApp, queue_token: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/api/v1/queue"))
        .header("x-queue-token", queue_token)
        .send()
        .await
        .unwrap()
}

/// The deployment's dependencies with some settings changed (a promoter of our own).
fn deps_with(app: &TestApp, settings: &[(&str, &str)]) -> Deps {
    let mut env = app.env.clone();
    for (name, value) in settings {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    imticket::root::deps(config_from(&env)).unwrap()
}

/// The statuses of many entries, in order, 256 requests at a time (a check, not the load).
async fn statuses(app: &TestApp, joined: &[Value]) -> Vec<Value> {
    use futures_util::StreamExt;
    futures_util::stream::iter(
        joined
            .iter()
            .map(|j| queue_status(app, j["queue_token"].as_str().unwrap())),
    )
    .buffered(256)
    .collect()
    .await
}

fn position(status: &Value) -> u64 {
    status["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position in {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_joins_get_positions_1_to_5000_and_are_admitted_in_that_order() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1".into());
        // 5,000 scripts queue up behind each other in one Redis: more than the tests' 500 ms.
        env.insert("IMTICKET_REDIS_TIMEOUT_MS".into(), "10000".into());
    })
    .await;
    let admin = app.admin_token().await;
    let concert = concert(&app, &admin, None).await;
    let tokens = tokens(&app);
    // Someone takes the one slot first, so everybody after waits.
    let first = join(&app, &user_token(&tokens).1, &concert).await;
    assert_eq!(
        (first["status"].as_str(), first["position"].as_u64()),
        (Some("active"), Some(0))
    );

    let users: Vec<String> = (0..5000).map(|_| user_token(&tokens).1).collect();
    let joined = join_all(users.iter().map(|t| join(&app, t, &concert))).await;
    let mut positions: Vec<u64> = joined.iter().map(position).collect();
    assert!(joined.iter().all(|j| j["status"] == "waiting"));
    positions.sort_unstable();
    assert_eq!(
        positions,
        (1..=5000).collect::<Vec<_>>(),
        "exactly 1..5000, no gap, no duplicate"
    );

    // Joining again returns the same entry and position.
    let again = join(&app, &users[17], &concert).await;
    assert_eq!(again["position"], joined[17]["position"]);
    assert_eq!(
        queue_status(&app, again["queue_token"].as_str().unwrap()).await["position"],
        joined[17]["position"]
    );

    // Admission follows the line: after each round, exactly the front of the line is active.
    let promoter = deps_with(
        &app,
        &[
            ("IMTICKET_QUEUE_ACTIVE_CAPACITY", "100000"),
            ("IMTICKET_QUEUE_PROMOTE_PER_SECOND", "1000000"),
        ],
    );
    let concert_id: Uuid = concert.parse().unwrap();
    let mut admitted = 0u64;
    while admitted < 5000 {
        let report = imticket::app::waiting_room::admit(&promoter, concert_id).await.unwrap();
        assert!(report.admitted > 0);
        admitted += report.admitted;
        for (before, now) in joined.iter().zip(&statuses(&app, &joined).await) {
            let place = position(before);
            if place <= admitted {
                assert_eq!(now["status"], "active", "position {place} after {admitted} admissions");
            } else {
                assert_eq!(now["status"], "waiting");
                assert_eq!(position(now), place - admitted, "moved up by exactly the admitted");
            }
        }
    }
}

#[tokio::test]
async fn three_promoters_together_admit_no_faster_than_the_rate() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_PROMOTE_PER_SECOND".into(), "40".into());
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "100000".into());
    })
    .await;
    let admin = app.admin_token().await;
    // Opens in a moment, so the whole line exists before anyone is admitted.
    let opens = chrono::Utc::now() + chrono::Duration::seconds(3);
    let concert = concert(&app, &admin, Some(opens)).await;
    let tokens = tokens(&app);
    let users: Vec<String> = (0..400).map(|_| user_token(&tokens).1).collect();
    join_all(users.iter().map(|t| join(&app, t, &concert))).await;

    let stop = tokio_util::sync::CancellationToken::new();
    let promoters: Vec<_> = (0..3)
        .map(|_| {
            let deps = deps_with(&app, &[]);
            tokio::spawn(imticket::worker::promoter::run(deps, stop.clone()))
        })
        .collect();
    let concert_id: Uuid = concert.parse().unwrap();
    let observer = deps_with(&app, &[]);
    let stats = || async {
        imticket::infra::redis::waiting_room::WaitingRoom::new(&observer.redis, &observer.keys, concert_id)
            .stats(concert_id)
            .await
            .unwrap()
    };
    eventually(
        "admissions under way for 3 seconds",
        Duration::from_secs(30),
        || async { stats().await.active >= 130 },
    )
    .await;
    stop.cancel();
    for p in promoters {
        p.await.unwrap();
    }
    // Group the admission times (Redis's clock, ms) by second: never more than 40 in one.
    let admitted: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(observer.keys.queue(concert_id).admitted)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut observer.redis.connection().await.unwrap())
        .await
        .unwrap();
    let mut per_second: HashMap<i64, u32> = HashMap::new();
    for (_, at) in &admitted {
        *per_second.entry((*at as i64) / 1000).or_default() += 1;
    }
    assert!(admitted.len() >= 130, "{}", admitted.len());
    assert!(per_second.values().all(|n| *n <= 40), "{per_second:?}");
    assert_eq!(
        stats().await.active as usize,
        admitted.len(),
        "every admission is one active entry"
    );
}

#[tokio::test]
async fn the_pre_queue_is_shuffled_once_at_the_opening_ahead_of_late_joiners() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1".into());
    })
    .await;
    let admin = app.admin_token().await;
    // Far enough ahead that the early joins land before it however slow the machine; then the
    // room's clock is brought forward (its `opens_at`, which the room's scripts read).
    let opens = chrono::Utc::now() + chrono::Duration::seconds(600);
    let concert = concert(&app, &admin, Some(opens)).await;
    let tokens = tokens(&app);
    // 1,000 early joiners, 50 at a time; their join order is the order of their entry ids
    // (UUID v7, made by the API at the join, monotonic).
    let joined: Vec<Value> = {
        use futures_util::StreamExt;
        let users: Vec<String> = (0..1000).map(|_| user_token(&tokens).1).collect();
        futures_util::stream::iter(users.iter().map(|t| join(&app, t, &concert)))
            .buffered(50)
            .collect()
            .await
    };
    let mut early: Vec<(Uuid, String)> = joined
        .iter()
        .map(|j| {
            assert_eq!(j["status"], "pre_queue", "{j}");
            assert!(j["position"].is_null());
            let token = j["queue_token"].as_str().unwrap().to_owned();
            (tokens.verify_queue(&token).unwrap().entry_id, token)
        })
        .collect();
    early.sort();
    let early: Vec<String> = early.into_iter().map(|(_, token)| token).collect();
    let waiting = queue_status(&app, &early[0]).await;
    assert_eq!(waiting["status"], "pre_queue");
    let observer = deps_with(&app, &[]);
    let _: () = redis::cmd("HSET")
        .arg(observer.keys.queue(concert.parse().unwrap()).meta)
        .arg("opens_at")
        .arg(chrono::Utc::now().timestamp_millis())
        .query_async(&mut observer.redis.connection().await.unwrap())
        .await
        .unwrap();

    let mut late = Vec::new();
    for _ in 0..50 {
        let joined = join(&app, &user_token(&tokens).1, &concert).await;
        late.push(joined);
    }
    let places: Vec<u64> = join_all(early.iter().map(|t| queue_status(&app, t)))
        .await
        .iter()
        .map(position)
        .collect();
    let mut sorted = places.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=1000).collect::<Vec<_>>(),
        "every early joiner placed exactly once"
    );
    // Late joiners line up behind, in arrival order (one slot is free: the first may enter).
    let late_places: Vec<Value> = late.iter().map(|j| j["position"].clone()).collect();
    let numbered: Vec<u64> = late_places
        .iter()
        .filter_map(Value::as_u64)
        .filter(|p| *p > 0)
        .collect();
    assert!(numbered.windows(2).all(|w| w[1] == w[0] + 1), "{late_places:?}");
    assert!(numbered.iter().all(|p| *p > 1000));
    // Random, not the join order: a sorted or nearly sorted result would fail these.
    let in_join_order = places.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        (300..700).contains(&in_join_order),
        "ascending neighbours: {in_join_order} of 999"
    );
    let fixed = places.iter().enumerate().filter(|(i, p)| **p == *i as u64 + 1).count();
    assert!(fixed < 20, "{fixed} early joiners kept their join position");
}

#[tokio::test]
async fn leaving_and_rejoining() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let concert = concert(&app, &admin, None).await;
    let tokens = tokens(&app);
    let first = join(&app, &user_token(&tokens).1, &concert).await;
    assert_eq!(first["status"], "active");
    let (_, second_user) = user_token(&tokens);
    let second = join(&app, &second_user, &concert).await;
    let third = join(&app, &user_token(&tokens).1, &concert).await;
    assert_eq!((position(&second), position(&third)), (1, 2));

    let second_token = second["queue_token"].as_str().unwrap();
    assert_eq!(leave(&app, second_token).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        leave(&app, second_token).await.status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    assert_eq!(queue_status(&app, second_token).await["status"], "expired");
    assert_eq!(
        position(&queue_status(&app, third["queue_token"].as_str().unwrap()).await),
        1
    );
    // Rejoining after leaving is a new entry, at the back.
    let again = join(&app, &second_user, &concert).await;
    assert_ne!(again["queue_token"], second["queue_token"]);
    assert_eq!(position(&again), 2);

    // An unknown concert is 404; no access token is 401; no queue token is 401.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/concerts/{}/queue", Uuid::now_v7())))
        .bearer_auth(&second_user)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND, "concert_not_found").await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/concerts/{concert}/queue")))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "missing_token").await;
    expect_problem(
        app.get("/api/v1/queue/status").await,
        StatusCode::UNAUTHORIZED,
        "missing_queue_token",
    )
    .await;

    // Giving the active slot back.
    let first_token = first["queue_token"].as_str().unwrap();
    assert_eq!(leave(&app, first_token).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(queue_status(&app, first_token).await["status"], "expired");
}

async fn gated(app: &TestApp, deps: &Deps, access: &str, queue_token: Option<&str>, concert: &str) -> (u16, Value) {
    async fn handler(
        gate: imticket::api::waiting_room::ActiveQueue,
        concert: web::Path<Uuid>,
    ) -> Result<actix_web::HttpResponse, imticket::app::AppError> {
        let pass = gate.0.for_concert(*concert)?;
        Ok(actix_web::HttpResponse::Ok().json(json!({"user": pass.pass.user_id})))
    }
    let service = actix_web::test::init_service(
        actix_web::App::new()
            .configure(imticket::api::configure(deps.clone()))
            .route("/test/gate/{concert}", web::post().to(handler)),
    )
    .await;
    let mut request = actix_web::test::TestRequest::post()
        .uri(&format!("/test/gate/{concert}"))
        .insert_header(("authorization", format!("Bearer {access}")));
    if let Some(token) = queue_token {
        request = request.insert_header(("x-queue-token", token));
    }
    let response = actix_web::test::call_service(&service, request.to_request()).await;
    let status = response.status().as_u16();
    let body: Value = actix_web::test::read_body_json(response).await;
    let _ = app;
    (status, body)
}

#[tokio::test]
async fn the_gate_lets_only_an_active_entry_of_the_caller_for_that_concert_through() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1".into());
    })
    .await;
    let deps = deps_with(&app, &[]);
    let admin = app.admin_token().await;
    let concert_a = concert(&app, &admin, None).await;
    let concert_b = concert(&app, &admin, None).await;
    let tokens = tokens(&app);
    let (active_user, active_access) = user_token(&tokens);
    let active = join(&app, &active_access, &concert_a).await;
    let active_token = active["queue_token"].as_str().unwrap();
    let (_, waiting_access) = user_token(&tokens);
    let waiting = join(&app, &waiting_access, &concert_a).await;
    assert_eq!(waiting["status"], "waiting");

    let (status, body) = gated(&app, &deps, &active_access, Some(active_token), &concert_a).await;
    assert_eq!(
        (status, body["user"].as_str()),
        (200, Some(active_user.to_string().as_str()))
    );
    // Waiting, another concert, another user: 403 queue_not_active.
    for (access, token, concert) in [
        (&waiting_access, waiting["queue_token"].as_str().unwrap(), &concert_a),
        (&active_access, active_token, &concert_b),
        (&waiting_access, active_token, &concert_a),
    ] {
        let (status, body) = gated(&app, &deps, access, Some(token), concert).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("queue_not_active")),
            "{body}"
        );
    }
    // Forged, expired, malformed, an access token as queue token, none: 401.
    let pass = QueuePass {
        user_id: active_user,
        concert_id: concert_a.parse().unwrap(),
        entry_id: Uuid::now_v7(),
    };
    let forged = TokenService::new(
        &secrecy::SecretString::from("another-secret-that-is-long-enough-0123".to_owned()),
        Duration::from_secs(60),
    )
    .issue_queue(pass)
    .unwrap();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": active_user, "concert": concert_a, "jti": Uuid::now_v7(), "aud": "queue",
                "iss": "imticket", "iat": 1_600_000_000, "exp": 1_600_000_600}),
        &jsonwebtoken::EncodingKey::from_secret(app.env["JWT_SECRET"].as_bytes()),
    )
    .unwrap();
    for token in [
        Some(forged.as_str()),
        Some(expired.as_str()),
        Some("garbage"),
        Some(active_access.as_str()),
        None,
    ] {
        let (status, body) = gated(&app, &deps, &active_access, token, &concert_a).await;
        assert_eq!(status, 401, "{token:?}: {body}");
    }
    // And a queue token is no access token.
    expect_problem(app.me(active_token).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // The status endpoint refuses the same bad tokens.
    let response = app
        .client
        .get(app.url("/api/v1/queue/status"))
        .header("x-queue-token", &active_access)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "invalid_queue_token").await;
    // Release (a payment completed): the slot ends, the gate closes.
    let released = imticket::app::waiting_room::release(&deps, concert_a.parse().unwrap(), active_user)
        .await
        .unwrap();
    assert!(released);
    let (status, _) = gated(&app, &deps, &active_access, Some(active_token), &concert_a).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn redis_down_means_503_never_a_silent_admission() {
    let mut app = spawn_app().await;
    let deps = deps_with(&app, &[]);
    let admin = app.admin_token().await;
    let concert = concert(&app, &admin, None).await;
    let tokens = tokens(&app);
    let (_, access) = user_token(&tokens);
    let joined = join(&app, &access, &concert).await;
    let queue_token = joined["queue_token"].as_str().unwrap().to_owned();
    app.redis.stop();

    let response = app
        .client
        .post(app.url(&format!("/api/v1/concerts/{concert}/queue")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("retry-after").is_some());
    expect_problem(response, StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable").await;
    let response = app
        .client
        .get(app.url("/api/v1/queue/status"))
        .header("x-queue-token", &queue_token)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable").await;
    let (status, body) = gated(&app, &deps, &access, Some(&queue_token), &concert).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("dependency_unavailable")));
}

#[tokio::test]
async fn sold_out_pauses_admission_and_seats_coming_back_resume_it() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    app.add_seats(
        &admin,
        &schedule,
        json!([{"name": "A", "rows": 1, "seats_per_row": 2, "price": 10}]),
    )
    .await;
    let tokens = tokens(&app);
    let first = join(&app, &user_token(&tokens).1, &concert).await;
    assert_eq!(first["status"], "active");
    let second = join(&app, &user_token(&tokens).1, &concert).await;
    let second_token = second["queue_token"].as_str().unwrap();
    assert_eq!(second["status"], "waiting");

    let set_available = |n: i32| {
        let db = app.db.clone();
        let schedule = schedule.clone();
        async move {
            sqlx::query("UPDATE schedule_inventory SET available_seats = $1 WHERE schedule_id = $2::uuid")
                .bind(n)
                .bind(schedule)
                .execute(&db)
                .await
                .unwrap();
        }
    };
    set_available(0).await;
    let promoter = deps_with(&app, &[("IMTICKET_QUEUE_ACTIVE_CAPACITY", "10")]);
    let state = imticket::app::waiting_room::PromoterState::default();
    imticket::app::waiting_room::promote_all(&promoter, &state)
        .await
        .unwrap();
    let seen = queue_status(&app, second_token).await;
    assert_eq!(
        (seen["status"].as_str(), seen["position"].as_u64()),
        (Some("sold_out"), Some(1))
    );

    set_available(1).await;
    // A promoter reads the counts at most once a second.
    eventually("admission resumes", Duration::from_secs(10), || async {
        imticket::app::waiting_room::promote_all(&promoter, &state)
            .await
            .unwrap();
        queue_status(&app, second_token).await["status"] == "active"
    })
    .await;
}

/// An admin pauses a concert's admission: joiners wait even with free slots and no promoter
/// round admits them; the pause survives Redis losing its flag (the promoter puts it back from
/// PostgreSQL); resuming admits them in line order. A fan cannot pause; an unknown concert is
/// 404. The operator CLI does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_pauses_admission_and_resumes_it() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "100".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    app.add_seats(
        &admin,
        &schedule,
        json!([{"name": "A", "rows": 1, "seats_per_row": 10, "price": 10}]),
    )
    .await;
    let tokens = tokens(&app);
    let first = join(&app, &user_token(&tokens).1, &concert).await;
    assert_eq!(
        first["status"], "active",
        "before the pause a joiner with a free slot is admitted"
    );

    let pause = format!("/api/v1/admin/concerts/{concert}/queue/pause");
    let fan = app.new_user().await;
    let refused = app.post_json_authed(&pause, &fan.token, &json!({})).await;
    expect_problem(refused, StatusCode::FORBIDDEN, "admin_required").await;
    let unknown = format!("/api/v1/admin/concerts/{}/queue/pause", Uuid::now_v7());
    expect_problem(
        app.post_json_authed(&unknown, &admin, &json!({})).await,
        StatusCode::NOT_FOUND,
        "concert_not_found",
    )
    .await;
    let line = expect_status(app.post_json_authed(&pause, &admin, &json!({})).await, StatusCode::OK).await;
    assert_eq!(
        (line["paused"].clone(), line["active"].clone()),
        (json!(true), json!(1))
    );

    let waiting: Vec<String> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            let joined = join(&app, &user_token(&tokens).1, &concert).await;
            assert_eq!(
                joined["status"], "waiting",
                "paused: free slots, yet nobody is admitted"
            );
            out.push(joined["queue_token"].as_str().unwrap().to_owned());
        }
        out
    };
    let promoter = deps_with(&app, &[]);
    let state = imticket::app::waiting_room::PromoterState::default();
    // Redis loses the flag (a restart without it): the promoter's refresh restores it.
    // The deployment's own Redis handle: a single server or a cluster, as the suite runs.
    let mut conn = promoter.redis.connection().await.unwrap();
    let meta = promoter.keys.queue(concert.parse().unwrap()).meta;
    let removed: i64 = redis::cmd("HDEL")
        .arg(&meta)
        .arg("paused")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(removed, 1, "{meta}");
    for _ in 0..3 {
        let round = imticket::app::waiting_room::promote_all(&promoter, &state)
            .await
            .unwrap();
        assert_eq!(round.admitted, 0);
    }
    for token in &waiting {
        assert_eq!(queue_status(&app, token).await["status"], "waiting");
    }

    let resume = format!("/api/v1/admin/concerts/{concert}/queue/resume");
    let line = expect_status(app.post_json_authed(&resume, &admin, &json!({})).await, StatusCode::OK).await;
    assert_eq!(line["paused"], false);
    eventually("the line is admitted again", Duration::from_secs(10), || async {
        imticket::app::waiting_room::promote_all(&promoter, &state)
            .await
            .unwrap();
        let mut all = true;
        for token in &waiting {
            all &= queue_status(&app, token).await["status"] == "active";
        }
        all
    })
    .await;
    let (paused_at, by): (Option<chrono::DateTime<chrono::Utc>>, Option<Uuid>) =
        sqlx::query_as("SELECT admission_paused_at, admission_paused_by FROM concerts WHERE id = $1::uuid")
            .bind(&concert)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((paused_at, by), (None, None), "resumed: no pause on record");

    // The operator CLI: pause, see it, resume.
    let admin_cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_imticket-admin"))
            .args(args)
            .envs(&app.env)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = admin_cli(&["queue", "pause", &concert]);
    assert!(shown.contains("admission paused"), "{shown}");
    let json: Value = serde_json::from_str(&admin_cli(&["--json", "queue", "stats", &concert])).unwrap();
    assert_eq!(json["paused"], true);
    let json: Value = serde_json::from_str(&admin_cli(&["--json", "queue", "resume", &concert])).unwrap();
    assert_eq!(json["paused"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoter_killed_during_the_opening_admits_nobody_twice_and_loses_nobody() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_REDIS_TIMEOUT_MS".into(), "10000".into());
    })
    .await;
    let admin = app.admin_token().await;
    // The opening is far enough ahead that 2,000 joins land before it however slow the machine;
    // then the room's clock is brought forward (its `opens_at`, which the promoter reads).
    let opens = chrono::Utc::now() + chrono::Duration::seconds(600);
    let concert = concert(&app, &admin, Some(opens)).await;
    let tokens = tokens(&app);
    let users: Vec<String> = (0..2000).map(|_| user_token(&tokens).1).collect();
    let joined = join_all(users.iter().map(|t| join(&app, t, &concert))).await;
    assert!(joined.iter().all(|j| j["status"] == "pre_queue"));
    let concert_id: Uuid = concert.parse().unwrap();
    let deps = deps_with(&app, &[]);
    let _: () = redis::cmd("HSET")
        .arg(deps.keys.queue(concert_id).meta)
        .arg("opens_at")
        .arg(chrono::Utc::now().timestamp_millis())
        .query_async(&mut deps.redis.connection().await.unwrap())
        .await
        .unwrap();

    let mut env = app.env.clone();
    env.insert("IMTICKET_QUEUE_PROMOTE_PER_SECOND".into(), "300".into());
    env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "100000".into());
    let worker = || {
        let mut cmd = binary_command(env!("CARGO_BIN_EXE_imticket-worker"), &env);
        cmd.arg("queue-promoter")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        KillOnDrop(cmd.spawn().unwrap())
    };
    let first = worker();
    let room = || imticket::infra::redis::waiting_room::WaitingRoom::new(&deps.redis, &deps.keys, concert_id);
    eventually("the opening has begun admitting", Duration::from_secs(20), || async {
        room().stats(concert_id).await.unwrap().active > 0
    })
    .await;
    signal(&first.0, "KILL");
    drop(first);
    let _second = worker();
    eventually("everyone admitted", Duration::from_secs(60), || async {
        room().stats(concert_id).await.unwrap().active == 2000
    })
    .await;
    let statuses = statuses(&app, &joined).await;
    assert!(
        statuses.iter().all(|s| s["status"] == "active"),
        "every early joiner is active"
    );
    let admitted: Vec<String> = redis::cmd("ZRANGE")
        .arg(deps.keys.queue(concert_id).admitted)
        .arg(0)
        .arg(-1)
        .query_async(&mut deps.redis.connection().await.unwrap())
        .await
        .unwrap();
    let distinct: HashSet<&String> = admitted.iter().collect();
    assert_eq!(
        (admitted.len(), distinct.len()),
        (2000, 2000),
        "each admitted exactly once"
    );
}
