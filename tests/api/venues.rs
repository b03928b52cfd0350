//! Venues, halls and seat plan versions: import with every bad seat named and nothing stored,
//! export in both shapes, immutability of a used version under concurrent edits, schedules
//! made from a plan through the seat-creation stream (a 50,000-seat one with its worker
//! killed), and the pictures.

use std::time::Duration;

use futures_util::future::join_all;
use imticket::domain::seat_plan::{SeatPlan, arena};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::holds::{fans, hold};

const WORKER: &str = env!("CARGO_BIN_EXE_imticket-worker");

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// A venue with one hall; returns the hall's id.
async fn hall(app: &TestApp, admin: &str) -> String {
    let venue = expect_status(
        app.post_json_authed(
            "/api/v1/venues",
            admin,
            &json!({"name": "Riverside Arena", "address": "1 River Road", "time_zone": "Europe/Berlin"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let hall = expect_status(
        app.post_json_authed(
            &format!("/api/v1/venues/{}/halls", venue["id"].as_str().unwrap()),
            admin,
            &json!({"name": "Main hall"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    hall["id"].as_str().unwrap().to_owned()
}

fn document(plan: &SeatPlan) -> Value {
    serde_json::to_value(plan.to_document()).unwrap()
}

async fn upload_csv(
    app: &TestApp,
    admin: &str,
    path: &str,
    method: reqwest::Method,
    csv: Vec<u8>,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
}

async fn import(app: &TestApp, admin: &str, hall: &str, plan: &SeatPlan) -> Value {
    let response = send(
        app,
        reqwest::Method::POST,
        &format!("/api/v1/halls/{hall}/plans"),
        admin,
        Some(&document(plan)),
    )
    .await;
    expect_status(response, StatusCode::CREATED).await
}

/// A schedule of `concert` made from the hall's plan version 1, A 300, B 200, C 100 points.
async fn schedule_from_version_1(app: &TestApp, admin: &str, concert: &str, hall: &str) -> Value {
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let body =
        json!({"starts_at": starts_at, "hall_plan_id": hall, "version": 1, "prices": {"A": 300, "B": 200, "C": 100}});
    let response = app
        .post_json_authed(&format!("/api/v1/concerts/{concert}/schedules"), admin, &body)
        .await;
    expect_status(response, StatusCode::CREATED).await
}

async fn plan_rows(app: &TestApp) -> (i64, i64) {
    (app.count("hall_plans").await, app.count("plan_seats").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_is_imported_exported_and_drawn_and_every_bad_seat_is_named() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let hall = hall(&app, &admin).await;
    let plans = format!("/api/v1/halls/{hall}/plans");

    // Every bad line named, nothing stored.
    let bad = "section,row,number,x,y,category,accessible,companion,for_sale\n\
        101,A,1,0,0,A,,,\n\
        101,A,1,10,0,A,,,\n\
        101,A,2,0,0,A,,,\n\
        101,A,x,20,0,A,,,\n\
        101,A,4,30,0,Z,,,\n\
        101,A,5,40,0,A,,true,\n";
    let response = upload_csv(
        &app,
        &admin,
        &format!("{plans}?categories=A,B"),
        reqwest::Method::POST,
        bad.into(),
    )
    .await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_plan").await;
    let named: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["at"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let at: Vec<&str> = named.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(at, ["line 5", "line 3", "line 4", "line 6", "line 7"], "{named:?}");
    assert!(named[0].1.contains("number: \"x\""), "{named:?}");
    assert!(
        named[1].1.contains("duplicate seat 101/A/1 (also at line 2)"),
        "{named:?}"
    );
    assert!(named[2].1.contains("same position (0, 0) as line 2"), "{named:?}");
    assert!(named[3].1.contains("\"Z\" is not a category"), "{named:?}");
    assert!(
        named[4].1.contains("companion seat with no accessible place"),
        "{named:?}"
    );
    assert_eq!(problem["error_count"], 5);
    assert_eq!(plan_rows(&app).await, (0, 0), "nothing stored");
    // U+0000, which PostgreSQL cannot store, is a rule of the plan too (schemathesis found it
    // answered 400 where the document promised 422).
    let nul = "section,row,number,x,y,category\n101,A,1,0,0,A\n101,A\u{0},2,10,0,A\n";
    let response = upload_csv(&app, &admin, &plans, reqwest::Method::POST, nul.into()).await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_plan").await;
    assert_eq!(problem["errors"][0]["at"], "line 3", "{problem}");
    assert_eq!(plan_rows(&app).await, (0, 0), "nothing stored");
    let response = app
        .client
        .post(app.url(&plans))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"categories": ["A"], "seats": [{"section": "1", "row": "A", "number": "one", "x": 0, "y": 0, "category": "A"}]}"#)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert!(
        problem["detail"].as_str().unwrap().starts_with("seats[0].number"),
        "{problem}"
    );

    // A good plan: version 1, exported as it was imported, in both shapes.
    let plan = arena(8, 12, 10, 100_000).unwrap();
    let first = import(&app, &admin, &hall, &plan).await;
    assert_eq!(first["version"], 1);
    assert_eq!(first["seats"], plan.seats().len());
    assert_eq!(first["for_sale"], plan.for_sale());
    assert_eq!(first["in_use"], false);
    let exported = expect_status(app.get(&format!("{plans}/1")).await, StatusCode::OK).await;
    assert_eq!(exported, document(&plan));
    let csv = app.get(&format!("{plans}/1?format=csv")).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.bytes().await.unwrap();
    assert_eq!(SeatPlan::from_csv(&csv, None).unwrap(), plan);
    // The CSV back in is the same plan: version 2 with the same digest.
    let second = expect_status(
        upload_csv(&app, &admin, &plans, reqwest::Method::POST, csv.to_vec()).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (second["version"].clone(), second["digest"].clone()),
        (json!(2), first["digest"].clone())
    );

    // The picture: one stroke a place plus one a ringed (accessible) place, a legend line a
    // category, a 304 for the same version.
    let response = app.get(&format!("{plans}/1.svg")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let tag = response.headers()["etag"].to_str().unwrap().to_owned();
    let svg = response.text().await.unwrap();
    let accessible = plan.seats().iter().filter(|s| s.accessible).count();
    assert!(accessible > 0);
    assert_eq!(svg.matches("h0").count(), plan.seats().len() + accessible);
    for category in ["A", "B", "C"] {
        let seats = plan
            .seats()
            .iter()
            .filter(|s| s.for_sale && s.category == category)
            .count();
        assert!(svg.contains(&format!(">{category}: {seats} seats<")), "{category}");
    }
    let never = plan.seats().len() - plan.for_sale();
    assert!(svg.contains(&format!(">never for sale: {never}<")));
    let again = app
        .client
        .get(app.url(&format!("{plans}/1.svg")))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    expect_problem(
        app.get(&format!("{plans}/9.svg")).await,
        StatusCode::NOT_FOUND,
        "plan_not_found",
    )
    .await;

    // Reads are public; writes are an admin's, and a fan's large body is refused unread.
    let fan = app.new_user().await;
    let response = send(&app, reqwest::Method::POST, &plans, &fan.token, Some(&document(&plan))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "over 64 KiB from a fan");
    let small = arena(1, 1, 4, 100).unwrap();
    let response = send(&app, reqwest::Method::POST, &plans, &fan.token, Some(&document(&small))).await;
    expect_problem(response, StatusCode::FORBIDDEN, "admin_required").await;
    assert_eq!(app.count("hall_plans").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venues_and_halls_refuse_bad_input_and_in_use_plans_are_kept() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (body, field) in [
        (json!({"name": "", "time_zone": "UTC"}), "name"),
        (json!({"name": "Hall", "time_zone": "Berlin"}), "time_zone"),
        (
            json!({"name": "Hall", "time_zone": "UTC", "address": "x".repeat(501)}),
            "address",
        ),
    ] {
        let problem = expect_problem(
            app.post_json_authed("/api/v1/venues", &admin, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{problem}");
    }
    assert_eq!(app.count("venues").await, 0);
    let hall = hall(&app, &admin).await;
    let details = expect_status(app.get(&format!("/api/v1/halls/{hall}")).await, StatusCode::OK).await;
    let venue = details["venue_id"].as_str().unwrap().to_owned();
    let response = app
        .post_json_authed(
            &format!("/api/v1/venues/{venue}/halls"),
            &admin,
            &json!({"name": "Main hall"}),
        )
        .await;
    expect_problem(response, StatusCode::CONFLICT, "hall_exists").await;
    let response = app
        .post_json_authed(
            &format!("/api/v1/venues/{}/halls", Uuid::now_v7()),
            &admin,
            &json!({"name": "X"}),
        )
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "venue_not_found").await;

    let plan = arena(4, 6, 8, 1000).unwrap();
    import(&app, &admin, &hall, &plan).await;
    let (concert, _) = app.concert_with_schedule(&admin, 30).await;
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let schedules = format!("/api/v1/concerts/{concert}/schedules");
    for (body, detail) in [
        (
            json!({"starts_at": starts_at, "hall_plan_id": hall, "version": 1}),
            "give all three",
        ),
        (
            json!({"starts_at": starts_at, "hall_plan_id": hall, "version": 7, "prices": {"A": 1}}),
            "no such hall plan version",
        ),
        (
            json!({"starts_at": starts_at, "hall_plan_id": hall, "version": 1, "prices": {"A": 10, "B": 5}}),
            "prices: no price for the categories C",
        ),
        (
            json!({"starts_at": starts_at, "hall_plan_id": hall, "version": 1, "prices": {"A": 10, "B": 5, "C": 1, "D": 1}}),
            "prices.D: not a category",
        ),
    ] {
        let problem = expect_problem(
            app.post_json_authed(&schedules, &admin, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{problem}");
    }
    let (schedules_before, jobs_before) = (app.count("schedules").await, app.count("jobs").await);
    assert_eq!(
        (schedules_before, jobs_before),
        (1, 0),
        "refused schedules left nothing"
    );
    let made = expect_status(
        app.post_json_authed(
            &schedules,
            &admin,
            &json!({"starts_at": starts_at, "hall_plan_id": hall, "version": 1, "prices": {"A": 300, "B": 200, "C": 100}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(made["seat_job"]["status"], "pending");
    for path in [
        format!("/api/v1/halls/{hall}"),
        format!("/api/v1/venues/{venue}"),
        format!("/api/v1/halls/{hall}/plans/1"),
    ] {
        expect_problem(
            send(&app, reqwest::Method::DELETE, &path, &admin, None).await,
            StatusCode::CONFLICT,
            "plan_in_use",
        )
        .await;
    }
    let response = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/v1/halls/{hall}/plans/1"),
        &admin,
        Some(&document(&plan)),
    )
    .await;
    expect_problem(response, StatusCode::CONFLICT, "plan_in_use").await;
    let listed = expect_status(app.get(&format!("/api/v1/halls/{hall}/plans")).await, StatusCode::OK).await;
    assert_eq!(listed[0]["in_use"], true);
}

/// Twenty replacements of version 1, a schedule made from it and twenty-one new versions, all
/// at once: the schedule's seats are those of the version as it was when the schedule was
/// made, nothing replaces it after, and the new versions are numbered 2 to 22.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_version_never_changes_under_concurrent_edits() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let hall = hall(&app, &admin).await;
    let variants: Vec<SeatPlan> = (0..21)
        .map(|i| arena(4, 4 + i % 5, 6 + i / 5, 10_000).unwrap())
        .collect();
    import(&app, &admin, &hall, &variants[0]).await;
    let (concert, _) = app.concert_with_schedule(&admin, 30).await;
    let version_1 = format!("/api/v1/halls/{hall}/plans/1");
    let replacements = variants[1..].iter().map(|plan| {
        let (app, admin, path, body) = (&app, &admin, version_1.clone(), document(plan));
        async move {
            send(app, reqwest::Method::PUT, &path, admin, Some(&body))
                .await
                .status()
        }
    });
    let schedule = async {
        let starts_at = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
        let body =
            json!({"starts_at": starts_at, "hall_plan_id": hall, "version": 1, "prices": {"A": 3, "B": 2, "C": 1}});
        let made = expect_status(
            app.post_json_authed(&format!("/api/v1/concerts/{concert}/schedules"), &admin, &body)
                .await,
            StatusCode::CREATED,
        )
        .await;
        made["id"].as_str().unwrap().to_owned()
    };
    let new_versions = variants.iter().map(|plan| {
        let (app, admin, hall) = (&app, &admin, &hall);
        async move { import(app, admin, hall, plan).await["version"].as_i64().unwrap() }
    });
    let (statuses, schedule, mut versions) = tokio::join!(join_all(replacements), schedule, join_all(new_versions));
    versions.sort_unstable();
    assert_eq!(versions, (2..=variants.len() as i64 + 1).collect::<Vec<i64>>());
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let replaced_before = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    eprintln!("evidence: {replaced_before} of 20 replacements went in before the schedule took version 1");

    // After: the version is in use and refuses every further edit.
    let stored = expect_status(app.get(&version_1).await, StatusCode::OK).await;
    let response = send(
        &app,
        reqwest::Method::PUT,
        &version_1,
        &admin,
        Some(&document(&variants[3])),
    )
    .await;
    expect_problem(response, StatusCode::CONFLICT, "plan_in_use").await;
    assert_eq!(expect_status(app.get(&version_1).await, StatusCode::OK).await, stored);
    // The schedule's seats are exactly the stored version's places for sale.
    app.run_seat_worker().await;
    let stored_plan: SeatPlan = SeatPlan::from_json(serde_json::from_value(stored).unwrap()).unwrap();
    let seats: i64 = sqlx::query_scalar("SELECT count(*) FROM seats WHERE schedule_id = $1::uuid")
        .bind(&schedule)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(seats, stored_plan.for_sale() as i64);
}

/// A 50,000-place plan becomes a schedule's seats through the stream; its worker is killed
/// mid-job and a second one finishes: every place for sale is a seat once, at its category's
/// price, and the places never for sale are none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_from_a_fifty_thousand_seat_plan_survives_a_killed_worker() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_STREAM_CLAIM_IDLE_MS".into(), "500".into());
    })
    .await;
    let admin = app.admin_token().await;
    let hall = hall(&app, &admin).await;
    let plan = arena(32, 50, 20, 50_000).unwrap();
    let started = std::time::Instant::now();
    import(&app, &admin, &hall, &plan).await;
    eprintln!(
        "evidence: a {}-place plan imported in {:?}",
        plan.seats().len(),
        started.elapsed()
    );
    let (concert, _) = app.concert_with_schedule(&admin, 30).await;
    let made = schedule_from_version_1(&app, &admin, &concert, &hall).await;
    let schedule = made["id"].as_str().unwrap().to_owned();
    let job_id = made["seat_job"]["job_id"].as_str().unwrap().to_owned();
    let worker = |log: &str| {
        let mut cmd = binary_command(WORKER, &app.env);
        cmd.arg("seat-creation");
        spawn_listening(cmd, &app.redis.dir().join(log)).0
    };
    let first = worker("worker-1.log");
    eventually("the first worker is under way", Duration::from_secs(60), || async {
        app.job(&job_id).await["done"].as_i64().unwrap() > 0
    })
    .await;
    signal(&first, "KILL");
    drop(first);
    let at_kill = app.job(&job_id).await;
    assert_eq!(at_kill["status"], "running", "killed mid-job: {at_kill}");
    let _survivor = worker("worker-2.log");
    eventually("the survivor finishes the job", Duration::from_secs(180), || async {
        app.job(&job_id).await["status"] == "done"
    })
    .await;
    let (seats, missing, priced_wrong, never_for_sale): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM seats WHERE schedule_id = $1::uuid),
                (SELECT count(*) FROM plan_seats p WHERE p.hall_id = $2::uuid AND p.for_sale AND NOT EXISTS
                    (SELECT 1 FROM seats s WHERE s.schedule_id = $1::uuid AND s.section = p.section
                       AND s.row_number = p.row_number AND s.seat_number = p.seat_number)),
                (SELECT count(*) FROM seats s JOIN plan_seats p ON p.hall_id = $2::uuid AND s.section = p.section
                    AND s.row_number = p.row_number AND s.seat_number = p.seat_number
                  WHERE s.schedule_id = $1::uuid
                    AND s.price <> CASE p.category WHEN 'A' THEN 300 WHEN 'B' THEN 200 ELSE 100 END),
                (SELECT count(*) FROM seats s JOIN plan_seats p ON p.hall_id = $2::uuid AND s.section = p.section
                    AND s.row_number = p.row_number AND s.seat_number = p.seat_number
                  WHERE s.schedule_id = $1::uuid AND NOT p.for_sale)",
    )
    .bind(&schedule)
    .bind(&hall)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        seats,
        plan.for_sale() as i64,
        "every place for sale once (the unique key forbids twice)"
    );
    assert_eq!((missing, priced_wrong, never_for_sale), (0, 0, 0));
    eprintln!(
        "evidence: killed at {}/{}, finished by the survivor: {seats} seats",
        at_kill["done"], at_kill["total"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedules_picture_shows_its_seats_states() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1000000".into());
        env.insert("IMTICKET_QUEUE_PROMOTE_PER_SECOND".into(), "1000000".into());
    })
    .await;
    let admin = app.admin_token().await;
    let hall = hall(&app, &admin).await;
    let plan = arena(4, 6, 8, 1000).unwrap();
    import(&app, &admin, &hall, &plan).await;
    let (concert, by_hand) = app.concert_with_schedule(&admin, 30).await;
    app.add_seats(
        &admin,
        &by_hand,
        json!([{"name": "Floor", "rows": 3, "seats_per_row": 4, "price": 50}]),
    )
    .await;
    let made = schedule_from_version_1(&app, &admin, &concert, &hall).await;
    let schedule = made["id"].as_str().unwrap().to_owned();
    app.run_seat_worker().await;
    let seats: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM seats WHERE schedule_id = $1::uuid ORDER BY id LIMIT 3")
        .bind(&schedule)
        .fetch_all(&app.db)
        .await
        .unwrap();
    let fan = fans(&app, &concert, 1).await.remove(0);
    let (status, body) = hold(&app, &fan, &schedule, &seats).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let path = format!("/api/v1/schedules/{schedule}/seats.svg");
    let response = app.get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tag = response.headers()["etag"].to_str().unwrap().to_owned();
    let svg = response.text().await.unwrap();
    let for_sale = plan.for_sale();
    let accessible = plan.seats().iter().filter(|s| s.accessible).count();
    assert_eq!(svg.matches("h0").count(), plan.seats().len() + accessible);
    assert!(svg.contains(&format!(">available: {}<", for_sale - 3)), "{svg:.300}");
    assert!(svg.contains(">held: 3<") && svg.contains(">sold: 0<"));
    assert!(svg.contains(&format!(">never for sale: {}<", plan.seats().len() - for_sale)));
    assert!(svg.contains(">A: 300 points, "), "categories and prices in the legend");
    let again = app
        .client
        .get(app.url(&path))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "same states, same picture");

    // A schedule made by hand is drawn as a grid of its sections.
    let response = app.get(&format!("/api/v1/schedules/{by_hand}/seats.svg")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let svg = response.text().await.unwrap();
    assert_eq!(svg.matches("h0").count(), 12);
    assert!(svg.contains(">available: 12<") && svg.contains(">Floor: 50 points, 12 seats<"));
    expect_problem(
        app.get(&format!("/api/v1/schedules/{}/seats.svg", Uuid::now_v7()))
            .await,
        StatusCode::NOT_FOUND,
        "schedule_not_found",
    )
    .await;
}

/// The demo arena's plan picture opened in a real browser (headless Chromium, from Debian's
/// packages; scripts/test.sh installs it): it renders to a screenshot of the plan, which is
/// kept in the test's target directory (docs/venues/arena.png is one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_picture_renders_in_headless_chromium() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let hall = hall(&app, &admin).await;
    let plan = arena(24, 30, 16, 100_000).unwrap();
    import(&app, &admin, &hall, &plan).await;
    let url = app.url(&format!("/api/v1/halls/{hall}/plans/1.svg"));
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let shot = dir.join("arena.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1480",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .expect("chromium (apt-get install chromium; scripts/test.sh installs it)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // A blank 1200×1290 page compresses to a few kilobytes; thousands of coloured dots do not.
    assert!(png.len() > 40_000, "the plan was drawn: {} bytes", png.len());
    eprintln!("evidence: screenshot {} ({} bytes)", shot.display(), png.len());
}
