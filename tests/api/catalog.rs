//! Concerts, schedules, bulk seat creation and the look-aside cache.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn admins_create_concerts_and_schedules_and_anyone_reads_them() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let details = expect_status(app.get(&format!("/api/v1/concerts/{concert}")).await, StatusCode::OK).await;
    assert_eq!(details["title"], "Aurora Live");
    assert_eq!(details["description"], "Stadium tour");
    assert_eq!(details["schedules"].as_array().unwrap().len(), 1);
    assert_eq!(details["schedules"][0]["id"], schedule.as_str());
    assert_eq!(
        (
            details["schedules"][0]["total_seats"].as_i64(),
            details["schedules"][0]["available_seats"].as_i64()
        ),
        (Some(0), Some(0))
    );

    // Ordinary users may read but not write; anonymous writes are 401.
    let user = app.new_user().await;
    let forbidden = app
        .post_json_authed("/api/v1/concerts", &user.token, &json!({"title": "Mine"}))
        .await;
    expect_problem(forbidden, StatusCode::FORBIDDEN, "admin_required").await;
    expect_problem(
        app.post_json("/api/v1/concerts", &json!({"title": "Mine"})).await,
        StatusCode::UNAUTHORIZED,
        "missing_token",
    )
    .await;
    let seats = app
        .post_json(&format!("/api/v1/schedules/{schedule}/seats"), &json!({"sections": []}))
        .await;
    expect_problem(seats, StatusCode::UNAUTHORIZED, "missing_token").await;
    expect_problem(
        app.get(&format!("/api/v1/concerts/{}", uuid::Uuid::now_v7())).await,
        StatusCode::NOT_FOUND,
        "concert_not_found",
    )
    .await;
    expect_problem(
        app.get("/api/v1/concerts/not-a-uuid").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    expect_problem(
        app.get(&format!("/api/v1/jobs/{}", uuid::Uuid::now_v7())).await,
        StatusCode::NOT_FOUND,
        "job_not_found",
    )
    .await;
}

#[tokio::test]
async fn invalid_catalog_input_is_422_naming_the_field_and_creates_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let concerts_before = app.count("concerts").await;
    for (body, field) in [
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": 7}), "title"),
        (json!({"description": "no title"}), "title"),
    ] {
        let problem = expect_problem(
            app.post_json_authed("/api/v1/concerts", &admin, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(problem["detail"].as_str().unwrap().contains(field), "{problem}");
    }
    assert_eq!(app.count("concerts").await, concerts_before);

    let schedules_before = app.count("schedules").await;
    let path = format!("/api/v1/concerts/{concert}/schedules");
    for starts_at in ["2001-01-01T00:00:00Z", "2999-01-01T00:00:00Z"] {
        let problem = expect_problem(
            app.post_json_authed(&path, &admin, &json!({"starts_at": starts_at}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(problem["detail"].as_str().unwrap().contains("starts_at"), "{problem}");
    }
    expect_problem(
        app.post_json_authed(&path, &admin, &json!({"starts_at": "next tuesday"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    let missing = app
        .post_json_authed(
            &format!("/api/v1/concerts/{}/schedules", uuid::Uuid::now_v7()),
            &admin,
            &json!({"starts_at": "2030-01-01T20:00:00Z"}),
        )
        .await;
    expect_problem(missing, StatusCode::NOT_FOUND, "concert_not_found").await;
    assert_eq!(app.count("schedules").await, schedules_before);

    let seats_path = format!("/api/v1/schedules/{schedule}/seats");
    let section = |name: &str, rows: i64, seats: i64, price: i64| json!({"name": name, "rows": rows, "seats_per_row": seats, "price": price});
    for (sections, needle) in [
        (json!([]), "at least one section"),
        (json!([section("A", 1, 1, 10), section("A", 1, 1, 10)]), "duplicate"),
        (json!([section("A", 0, 1, 10)]), "sections[0].rows"),
        (json!([section("A", 1, -1, 10)]), "sections[0].seats_per_row"),
        (json!([section("A", 1, 1, 0)]), "sections[0].price"),
        (json!([section("", 1, 1, 10)]), "sections[0].name"),
        (json!([section("A", 500, 401, 10)]), "200000"),
        (
            json!([{"name": "A", "rows": "ten", "seats_per_row": 1, "price": 1}]),
            "sections[0].rows",
        ),
    ] {
        let problem = expect_problem(
            app.post_json_authed(&seats_path, &admin, &json!({"sections": sections}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{needle}: {problem}"
        );
    }
    let bad_mode = app
        .post_json_authed(
            &format!("{seats_path}?mode=fast"),
            &admin,
            &json!({"sections": [section("A", 1, 1, 1)]}),
        )
        .await;
    expect_problem(bad_mode, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let no_schedule = app
        .post_json_authed(
            &format!("/api/v1/schedules/{}/seats", uuid::Uuid::now_v7()),
            &admin,
            &json!({"sections": [section("A", 1, 1, 1)]}),
        )
        .await;
    expect_problem(no_schedule, StatusCode::NOT_FOUND, "schedule_not_found").await;
    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    assert_eq!(app.count("seats").await, 0);
}

#[tokio::test]
async fn concerts_page_in_a_stable_order() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let body = expect_status(
            app.post_json_authed("/api/v1/concerts", &admin, &json!({"title": format!("Show {i}")}))
                .await,
            StatusCode::CREATED,
        )
        .await;
        created.push(body["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let body = expect_status(
            app.get(&format!("/api/v1/concerts?page={page}&size=3")).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            (body["page"].as_i64(), body["size"].as_i64(), body["total"].as_i64()),
            (Some(page), Some(3), Some(7))
        );
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, created, "every concert once, in creation order");
    let defaults = expect_status(app.get("/api/v1/concerts").await, StatusCode::OK).await;
    assert_eq!(
        (defaults["page"].as_i64(), defaults["size"].as_i64()),
        (Some(1), Some(20))
    );
    expect_problem(
        app.get("/api/v1/concerts?size=101").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_problem(
        app.get("/api/v1/concerts?page=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_problem(
        app.get("/api/v1/concerts?page=first").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}

/// The `sale_opens_at` of a concert object, parsed; `None` for `null`. Fails when the key is
/// missing: api.md requires it (null when absent) in every concert answer.
fn sale_opens_at(concert: &Value) -> Option<DateTime<Utc>> {
    let value = concert
        .get("sale_opens_at")
        .unwrap_or_else(|| panic!("no sale_opens_at in {concert}"));
    value
        .as_str()
        .map(|at| DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc))
}

#[tokio::test]
async fn concerts_carry_their_sale_opening_in_every_answer() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // Whole seconds: PostgreSQL keeps microseconds, so a nanosecond value would not round-trip.
    let opens = (Utc::now() + chrono::Duration::days(7)).trunc_subsecs(0);
    let opened = (Utc::now() - chrono::Duration::hours(2)).trunc_subsecs(0);
    let mut expected = Vec::new();
    for (title, body) in [
        ("Later", json!({"title": "Later", "sale_opens_at": opens.to_rfc3339()})),
        ("Now", json!({"title": "Now"})),
        ("Null", json!({"title": "Null", "sale_opens_at": null})),
        // A time already past is allowed: the sale is open.
        (
            "Opened",
            json!({"title": "Opened", "sale_opens_at": opened.to_rfc3339()}),
        ),
    ] {
        let created = expect_status(
            app.post_json_authed("/api/v1/concerts", &admin, &body).await,
            StatusCode::CREATED,
        )
        .await;
        let want = match title {
            "Later" => Some(opens),
            "Opened" => Some(opened),
            _ => None,
        };
        assert_eq!(sale_opens_at(&created), want, "{created}");
        expected.push((created["id"].as_str().unwrap().to_owned(), want));
    }

    let page = expect_status(app.get("/api/v1/concerts?size=100").await, StatusCode::OK).await;
    let listed: Vec<(String, Option<DateTime<Utc>>)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), sale_opens_at(c)))
        .collect();
    assert_eq!(listed, expected);

    let mut conn = app.db.acquire().await.unwrap();
    for (id, want) in &expected {
        let details = expect_status(app.get(&format!("/api/v1/concerts/{id}")).await, StatusCode::OK).await;
        assert_eq!(sale_opens_at(&details), *want, "{details}");
        // Twice: the second answer comes from the cache.
        let cached = expect_status(app.get(&format!("/api/v1/concerts/{id}")).await, StatusCode::OK).await;
        assert_eq!(sale_opens_at(&cached), *want, "{cached}");
        let window = imticket::infra::postgres::catalog::concert_sale_window(&mut conn, id.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(window, Some(*want));
    }
    let window = imticket::infra::postgres::catalog::concert_sale_window(&mut conn, uuid::Uuid::now_v7())
        .await
        .unwrap();
    assert_eq!(window, None, "no such concert");

    let doc = expect_status(app.get("/openapi.json").await, StatusCode::OK).await;
    for schema in ["NewConcert", "Concert", "ConcertDetails"] {
        let property = &doc["components"]["schemas"][schema]["properties"]["sale_opens_at"];
        assert!(property.is_object(), "{schema}.sale_opens_at is not documented");
    }
}

#[tokio::test]
async fn a_bad_sale_opening_is_422_naming_the_field_and_creates_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let six_years = (Utc::now() + chrono::Duration::days(365 * 6)).to_rfc3339();
    for value in [
        json!("tomorrow"),
        json!(six_years),
        json!(17),
        json!("2027-13-01T00:00:00Z"),
    ] {
        let problem = expect_problem(
            app.post_json_authed(
                "/api/v1/concerts",
                &admin,
                &json!({"title": "Soon", "sale_opens_at": value}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with("sale_opens_at: "),
            "{value}: {problem}"
        );
    }
    assert_eq!(app.count("concerts").await, 0);
}

fn layout() -> Value {
    json!([
        {"name": "Floor", "rows": 10, "seats_per_row": 20, "price": 15000},
        {"name": "Balcony", "rows": 5, "seats_per_row": 10, "price": 9000},
    ])
}

#[tokio::test]
async fn seats_are_created_by_the_worker_and_a_repeated_request_adds_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let job = app.request_seats(&admin, &schedule, "stream", layout()).await;
    let pending = app.job(&job).await;
    assert_eq!(
        (
            pending["kind"].as_str(),
            pending["total"].as_i64(),
            pending["done"].as_i64()
        ),
        (Some("seat_creation"), Some(250), Some(0))
    );

    app.run_seat_worker().await;
    let done = app.job(&job).await;
    assert_eq!(
        done,
        json!({"id": job, "kind": "seat_creation", "status": "done", "total": 250, "done": 250, "error": null})
    );
    let seats = expect_status(
        app.get(&format!("/api/v1/schedules/{schedule}/seats")).await,
        StatusCode::OK,
    )
    .await;
    let seats = seats["seats"].as_array().unwrap().clone();
    assert_eq!(seats.len(), 250);
    let balcony: Vec<&Value> = seats.iter().filter(|s| s["section"] == "Balcony").collect();
    assert_eq!(balcony.len(), 50);
    assert!(balcony.iter().all(|s| s["price"] == 9000 && s["status"] == "available"));
    assert!(
        seats
            .iter()
            .any(|s| s["section"] == "Floor" && s["row"] == 10 && s["number"] == 20)
    );
    let details = expect_status(app.get(&format!("/api/v1/concerts/{concert}")).await, StatusCode::OK).await;
    assert_eq!(
        (
            details["schedules"][0]["total_seats"].as_i64(),
            details["schedules"][0]["available_seats"].as_i64()
        ),
        (Some(250), Some(250))
    );

    // The same request again: a new job, which finds every position taken.
    let again = app.request_seats(&admin, &schedule, "stream", layout()).await;
    app.run_seat_worker().await;
    assert_eq!(app.job(&again).await["status"], "done");
    assert_eq!(app.count("seats").await, 250);
    let (total, available): (i32, i32) = sqlx::query_as("SELECT total_seats, available_seats FROM schedule_inventory")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        (total, available),
        (250, 250),
        "the inventory counts only seats actually created"
    );

    let available = expect_status(
        app.get(&format!("/api/v1/schedules/{schedule}/seats?status=available"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(available["seats"].as_array().unwrap().len(), 250);
    let sold = expect_status(
        app.get(&format!("/api/v1/schedules/{schedule}/seats?status=sold"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(sold["seats"].as_array().unwrap().is_empty());
    expect_problem(
        app.get(&format!("/api/v1/schedules/{schedule}/seats?status=lost"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn inline_mode_runs_the_job_inside_the_api() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, schedule) = app.concert_with_schedule(&admin, 30).await;
    let job = app.request_seats(&admin, &schedule, "inline", layout()).await;
    eventually("the inline job finishes", Duration::from_secs(30), || async {
        app.job(&job).await["status"] == "done"
    })
    .await;
    assert_eq!(app.count("seats").await, 250);
    assert_eq!(app.count("outbox").await, 0, "inline jobs publish no event");
}

#[tokio::test]
async fn a_job_whose_schedule_disappeared_fails_with_a_readable_error() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, schedule) = app.concert_with_schedule(&admin, 30).await;
    let job = app.request_seats(&admin, &schedule, "stream", layout()).await;
    sqlx::query("DELETE FROM schedules WHERE id = $1::uuid")
        .bind(&schedule)
        .execute(&app.db)
        .await
        .unwrap();
    // The job row went with its schedule (ON DELETE CASCADE); the event names a job that is
    // gone and is dead-lettered rather than retried forever.
    app.run_seat_worker().await;
    expect_problem(
        app.get(&format!("/api/v1/jobs/{job}")).await,
        StatusCode::NOT_FOUND,
        "job_not_found",
    )
    .await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let letters =
        imticket::stream::dead_letter::list(&mut deps.redis.connection().await.unwrap(), &deps.keys, None, 10)
            .await
            .unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].error.contains("no job"), "{}", letters[0].error);
}

/// Counts this test database's executions of the concert-details query.
async fn concert_loads(app: &TestApp) -> i64 {
    statement_calls(
        &app.db,
        "SELECT id, title, description, created_at, sale_opens_at FROM concerts WHERE id = $1%",
    )
    .await
}

#[tokio::test]
async fn a_hundred_concurrent_misses_load_the_concert_once() {
    let app = spawn_app().await;
    count_statements(&app.db).await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 30).await;
    let before = concert_loads(&app).await;
    let path = format!("/api/v1/concerts/{concert}");
    let responses = futures_util::future::join_all((0..100).map(|_| app.get(&path))).await;
    let mut bodies = Vec::new();
    for response in responses {
        bodies.push(expect_status(response, StatusCode::OK).await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        concert_loads(&app).await - before,
        1,
        "one database load for 100 concurrent misses"
    );
    // And hits cost none.
    app.get(&path).await;
    assert_eq!(concert_loads(&app).await - before, 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for result in ["hit", "miss"] {
        let line = format!(r#"cache_requests_total{{cache="concert",result="{result}"}}"#);
        assert!(metrics.contains(&line), "{line} missing from /metrics");
    }
    assert!(metrics.contains(r#"cache_loads_total{cache="concert"}"#));
}

#[tokio::test]
async fn reads_fall_back_to_postgres_while_redis_is_down() {
    let mut app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    app.request_seats(
        &admin,
        &schedule,
        "inline",
        json!([{"name": "A", "rows": 2, "seats_per_row": 2, "price": 10}]),
    )
    .await;
    eventually("seats exist", Duration::from_secs(30), || async {
        app.count("seats").await == 4
    })
    .await;
    let cached = expect_status(app.get(&format!("/api/v1/concerts/{concert}")).await, StatusCode::OK).await;

    app.redis.kill();
    let details = expect_status(app.get(&format!("/api/v1/concerts/{concert}")).await, StatusCode::OK).await;
    assert_eq!(details, cached);
    let seats = expect_status(
        app.get(&format!("/api/v1/schedules/{schedule}/seats")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(seats["seats"].as_array().unwrap().len(), 4);
    // Writes that invalidate the cache still succeed too.
    app.concert_with_schedule(&admin, 40).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("cache_errors_total")),
        "cache errors are counted"
    );
}

#[tokio::test]
async fn a_change_made_while_redis_is_down_still_reaches_the_cache_when_redis_is_back() {
    let mut app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 30).await;
    let schedules = |details: Value| details["schedules"].as_array().unwrap().len();
    let path = format!("/api/v1/concerts/{concert}");
    assert_eq!(schedules(expect_status(app.get(&path).await, StatusCode::OK).await), 1);

    // Redis stops with the concert's details cached, and keeps them on disk.
    app.redis.stop();
    // A change while it is down: a second schedule. Its invalidation cannot be delivered.
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(45)).to_rfc3339();
    expect_status(
        app.post_json_authed(
            &format!("/api/v1/concerts/{concert}/schedules"),
            &admin,
            &json!({ "starts_at": starts_at }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        schedules(expect_status(app.get(&path).await, StatusCode::OK).await),
        2,
        "read from PostgreSQL while Redis is down"
    );

    // Redis is back with the old details: the API sends the invalidation it kept, instead of
    // serving the old details until their TTL (300 s).
    app.redis.restart();
    eventually(
        "the kept invalidation reached Redis",
        Duration::from_secs(10),
        || async {
            schedules(expect_status(app.get(&path).await, StatusCode::OK).await) == 2
                && app
                    .get("/metrics")
                    .await
                    .text()
                    .await
                    .unwrap()
                    .lines()
                    .any(|l| l.starts_with("cache_invalidations_retried_total") && !l.ends_with(" 0"))
        },
    )
    .await;
}

/// Sets the concert's title in the database and drops its Redis entry, bypassing the API: what
/// the API answers next shows where it read from.
async fn change_title_behind_the_apis_back(app: &TestApp, concert: &str, title: &str) {
    sqlx::query("UPDATE concerts SET title = $1 WHERE id = $2::uuid")
        .bind(title)
        .bind(concert)
        .execute(&app.db)
        .await
        .unwrap();
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(cached_key(&deps, concert))
        .query_async(&mut deps.redis.connection().await.unwrap())
        .await
        .unwrap();
}

/// The Redis key of a concert's cached details in this deployment.
fn cached_key(deps: &imticket::app::Deps, concert: &str) -> String {
    deps.keys.cache(&imticket::infra::redis::keys::CacheEntry::concert(
        concert.parse().unwrap(),
    ))
}

async fn title(app: &TestApp, concert: &str) -> String {
    let details = expect_status(app.get(&format!("/api/v1/concerts/{concert}")).await, StatusCode::OK).await;
    details["title"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn concert_details_are_kept_in_the_process_and_invalidations_reach_it_through_redis() {
    // A near TTL far beyond the test's deadlines: only an invalidation can refresh the copy.
    let mut app = spawn_app_with(|env| {
        env.insert("IMTICKET_CACHE_NEAR_TTL_MS".into(), "60000".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;

    // Once the API follows the invalidation channel, a read keeps a copy in the process: a
    // change the API was not told about (database and Redis entry) stays invisible.
    let mut round = 0;
    eventually("a copy kept in the process", Duration::from_secs(10), || {
        round += 1;
        let (app, concert) = (&app, &concert);
        async move {
            let before = title(app, concert).await;
            change_title_behind_the_apis_back(app, concert, &format!("Changed {round}")).await;
            title(app, concert).await == before
        }
    })
    .await;
    let kept = title(&app, &concert).await;
    change_title_behind_the_apis_back(&app, &concert, "Renamed").await;
    assert_eq!(title(&app, &concert).await, kept);

    // Another process (its own Deps, no near cache) reports a change: the API's copy goes.
    let other = imticket::root::deps(config_from(&app.env)).unwrap();
    imticket::app::catalog::seat_map::seats_changed(&other, schedule.parse().unwrap(), concert.parse().unwrap(), &[])
        .await;
    eventually("the invalidation reached the API", Duration::from_secs(10), || async {
        title(&app, &concert).await == "Renamed"
    })
    .await;

    // Without the channel (Redis gone) the copy is dropped and nothing is kept: reads go to
    // PostgreSQL and see the latest title.
    assert_eq!(title(&app, &concert).await, "Renamed");
    sqlx::query("UPDATE concerts SET title = 'After the outage' WHERE id = $1::uuid")
        .bind(&concert)
        .execute(&app.db)
        .await
        .unwrap();
    app.redis.kill();
    eventually(
        "the copy is dropped with the channel",
        Duration::from_secs(10),
        || async { title(&app, &concert).await == "After the outage" },
    )
    .await;
}

#[tokio::test]
async fn changes_invalidate_the_cached_views() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let path = format!("/api/v1/concerts/{concert}");
    let first = expect_status(app.get(&path).await, StatusCode::OK).await;
    assert_eq!(first["schedules"].as_array().unwrap().len(), 1);
    let seats_path = format!("/api/v1/schedules/{schedule}/seats");
    assert!(
        expect_status(app.get(&seats_path).await, StatusCode::OK).await["seats"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A new schedule shows at once, not after the 5-minute TTL.
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();
    expect_status(
        app.post_json_authed(&format!("{path}/schedules"), &admin, &json!({"starts_at": starts_at}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        expect_status(app.get(&path).await, StatusCode::OK).await["schedules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Finished seat creation refreshes both the seat map and the counts.
    app.request_seats(&admin, &schedule, "stream", layout()).await;
    app.run_seat_worker().await;
    assert_eq!(
        expect_status(app.get(&seats_path).await, StatusCode::OK).await["seats"]
            .as_array()
            .unwrap()
            .len(),
        250
    );
    let details = expect_status(app.get(&path).await, StatusCode::OK).await;
    let counted = details["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == schedule.as_str())
        .unwrap()
        .clone();
    assert_eq!(counted["available_seats"], 250);

    // The one function every later seat change calls, from another process (its own layouts).
    let balcony: Vec<uuid::Uuid> =
        sqlx::query_scalar("UPDATE seats SET status = 'sold' WHERE section = 'Balcony' RETURNING id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    imticket::app::catalog::seat_map::seats_changed(
        &deps,
        schedule.parse().unwrap(),
        concert.parse().unwrap(),
        &[imticket::app::catalog::seat_map::SeatChange::sold(&balcony)],
    )
    .await;
    let sold = expect_status(app.get(&format!("{seats_path}?status=sold")).await, StatusCode::OK).await;
    assert_eq!(sold["seats"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn the_api_warms_the_cache_for_schedules_of_the_coming_week() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (soon, soon_schedule) = app.concert_with_schedule(&admin, 3).await;
    let (later, _) = app.concert_with_schedule(&admin, 30).await;
    // A second API instance starts and warms up.
    let second = imticket::startup::Application::build(config_from(&app.env))
        .await
        .unwrap();
    let deps = second.deps().clone();
    let mut conn = deps.redis.connection().await.unwrap();
    let exists = |key: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
                == 1
        }
    };
    eventually(
        "the week's concert and seat map are cached",
        Duration::from_secs(20),
        || {
            let (a, b) = (
                exists(cached_key(&deps, &soon)),
                exists(deps.keys.seat_states(soon_schedule.parse().unwrap())),
            );
            async move { a.await && b.await }
        },
    )
    .await;
    assert!(
        !exists(cached_key(&deps, &later)).await,
        "later schedules are not warmed"
    );
    let _: () = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map(|_: String| ())
        .unwrap();
}

#[tokio::test]
async fn a_read_that_loaded_before_a_change_does_not_put_the_old_details_back_in_the_cache() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let (concert_id, schedule_id) = (concert.parse().unwrap(), schedule.parse().unwrap());

    // A cache miss whose database read happens before a change, and whose store into Redis
    // happens after the change invalidated the entry: the order that used to leave the old
    // details in Redis for the whole TTL.
    let answered = deps
        .cache
        .get_or_load(
            "concert",
            &format!("concert:{concert}"),
            imticket::app::catalog::concerts::CONCERT_TTL,
            || async {
                let read_before_the_change = json!({ "id": concert, "title": "Before" }).to_string();
                sqlx::query("UPDATE concerts SET title = 'After' WHERE id = $1::uuid")
                    .bind(&concert)
                    .execute(&app.db)
                    .await
                    .unwrap();
                imticket::app::catalog::seat_map::seats_changed(&deps, schedule_id, concert_id, &[]).await;
                Ok::<_, imticket::app::AppError>(read_before_the_change.into_bytes().into())
            },
        )
        .await
        .unwrap();
    // The racing request answers with what it read, as any request that began before a change.
    assert_eq!(serde_json::from_slice::<Value>(&answered).unwrap()["title"], "Before");
    // But it did not store it: the API loads again and sees the change.
    assert_eq!(title(&app, &concert).await, "After");
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    let cached: Option<String> = redis::cmd("GET")
        .arg(cached_key(&deps, &concert))
        .query_async(&mut deps.redis.connection().await.unwrap())
        .await
        .unwrap();
    assert!(
        cached.is_some_and(|body| body.contains("\"After\"")),
        "the fresh details are cached"
    );
}
