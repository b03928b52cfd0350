//! The problem+json shape of 400, 404 and 405, and request ids.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = spawn_app().await;
    expect_problem(
        app.get("/api/v1/no-such-thing").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_problem(app.get("/").await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(
        app.post_raw("/api/v2/auth/login", "application/json", "{}").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn wrong_methods_are_405_problems() {
    let app = spawn_app().await;
    expect_problem(
        app.get("/api/v1/auth/signup").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let delete = app.client.delete(app.url("/api/v1/users/me")).send().await.unwrap();
    expect_problem(delete, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    expect_problem(
        app.post_raw("/health/live", "application/json", "{}").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn bad_requests_are_400_problems() {
    let app = spawn_app().await;
    let problem = expect_problem(
        app.post_raw("/api/v1/auth/login", "application/json", "[1, 2").await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_eq!(
        problem.as_object().unwrap().len(),
        5,
        "type, title, status, detail, code: {problem}"
    );
    assert_eq!(problem["title"], "Bad Request");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_a_sane_caller_id() {
    let app = spawn_app().await;
    let generated = app.get("/health/live").await;
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

    let kept = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-abc.123");
    let replaced = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id with spaces");
    let on_error = app.get("/nope").await;
    assert!(on_error.headers().contains_key("x-request-id"));
}

/// The methods a 405 response's `Allow` header lists, in order.
fn allowed(response: &reqwest::Response) -> Vec<String> {
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
    let allow = allow.unwrap_or_else(|| panic!("405 without Allow: {:?}", response.headers()));
    allow.split(',').map(|m| m.trim().to_owned()).collect()
}

/// A 405 says what the resource does serve (RFC 9110 §15.5.6).
#[tokio::test]
async fn wrong_methods_list_the_allowed_ones() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    for (method, path, allow) in [
        (
            reqwest::Method::DELETE,
            "/api/v1/concerts".to_owned(),
            vec!["GET", "POST"],
        ),
        (reqwest::Method::GET, "/api/v1/auth/signup".to_owned(), vec!["POST"]),
        (
            reqwest::Method::GET,
            format!("/api/v1/concerts/{id}/schedules"),
            vec!["POST"],
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/schedules/{id}/seats"),
            vec!["GET", "POST"],
        ),
        (reqwest::Method::POST, format!("/api/v1/jobs/{id}"), vec!["GET"]),
        (reqwest::Method::POST, "/health/live".to_owned(), vec!["GET"]),
        (reqwest::Method::PATCH, "/openapi.json".to_owned(), vec!["GET"]),
    ] {
        let response = app.client.request(method.clone(), app.url(&path)).send().await.unwrap();
        assert_eq!(allowed(&response), allow, "{method} {path}");
        let problem = expect_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(&allow.join(", ")),
            "{method} {path}: {problem}"
        );
    }
}

/// A query parameter that does not parse is named, with the same code as before.
#[tokio::test]
async fn bad_query_parameters_are_named() {
    let app = spawn_app().await;
    for (query, detail) in [
        ("page=abc", "page: invalid digit found in string"),
        ("page=1&size=2.5", "size: invalid digit found in string"),
        (
            "size=99999999999999999999",
            "size: number too large to fit in target type",
        ),
    ] {
        let problem = expect_problem(
            app.get(&format!("/api/v1/concerts?{query}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
        assert_eq!(problem["detail"], detail, "{query}");
    }
    // Values that parse but break a rule stay 422 `invalid_field`.
    let problem = expect_problem(
        app.get("/api/v1/concerts?page=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().starts_with("page: "), "{problem}");
}

/// A malformed path segment is named, and the parser's internals stay out of the detail.
#[tokio::test]
async fn bad_path_segments_are_named_without_parser_internals() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/concerts/not-a-uuid",
        "/api/v1/jobs/123",
        "/api/v1/schedules/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz/seats",
    ] {
        let problem = expect_problem(app.get(path).await, StatusCode::BAD_REQUEST, "invalid_path").await;
        assert_eq!(problem["detail"], "id: must be a UUID", "{path}");
    }

    let admin = app.admin_token().await;
    let schedules = app.count("schedules").await;
    let problem = expect_problem(
        app.post_json_authed(
            "/api/v1/concerts/42/schedules",
            &admin,
            &json!({"starts_at": "2030-01-01T20:00:00Z"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    assert_eq!(problem["detail"], "id: must be a UUID");
    assert_eq!(app.count("schedules").await, schedules, "nothing is created");
}

/// JSON body errors lead with the field's path; field errors carry no "at line … column …".
#[tokio::test]
async fn body_errors_lead_with_the_field_path() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, schedule) = app.concert_with_schedule(&admin, 30).await;
    let (concerts, jobs) = (app.count("concerts").await, app.count("jobs").await);

    let missing = expect_problem(
        app.post_json_authed("/api/v1/concerts", &admin, &json!({"description": "no title"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(missing["detail"], "title: is required");
    let missing = expect_problem(
        app.post_json(
            "/api/v1/auth/signup",
            &json!({"email": "a@b.example", "password": "long-enough"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(missing["detail"], "name: is required");

    let seats = format!("/api/v1/schedules/{schedule}/seats");
    for (sections, detail) in [
        (
            json!([{"name": "A", "rows": 1, "seats_per_row": 1, "price": "x"}]),
            r#"sections[0].price: invalid type: string "x", expected a whole number from 1 to 10000000"#,
        ),
        (
            json!([{"name": "A", "rows": 1, "seats_per_row": 1}]),
            "sections[0].price: is required",
        ),
    ] {
        let problem = expect_problem(
            app.post_json_authed(&seats, &admin, &json!({"sections": sections}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(problem["detail"], detail);
    }
    let unknown = expect_problem(
        app.post_json_authed("/api/v1/concerts", &admin, &json!({"title": "T", "venue": "X"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    let detail = unknown["detail"].as_str().unwrap();
    assert!(detail.starts_with("venue: unknown field"), "{detail}");
    assert!(!detail.contains("line"), "{detail}");

    // Syntax errors keep their position: it is all a client has to go on.
    let syntax = expect_problem(
        app.client
            .post(app.url("/api/v1/concerts"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(r#"{"title": "T",,}"#)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert!(syntax["detail"].as_str().unwrap().contains("line 1 column"), "{syntax}");

    assert_eq!(
        (app.count("concerts").await, app.count("jobs").await),
        (concerts, jobs),
        "nothing is created"
    );
}

/// A section's rule violation names the section's field once (not `sections: sections[0]…`).
#[tokio::test]
async fn section_errors_name_the_field_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, schedule) = app.concert_with_schedule(&admin, 30).await;
    let seats = format!("/api/v1/schedules/{schedule}/seats");
    let section = |name: &str, rows: i64| json!({"name": name, "rows": rows, "seats_per_row": 2, "price": 10});
    for (sections, detail) in [
        (
            json!([section("A", 0)]),
            "sections[0].rows: must be a positive whole number",
        ),
        (
            json!([section("A", 1), section("A", 1)]),
            r#"sections[1].name: duplicate section name "A""#,
        ),
        (json!([]), "sections: must contain at least one section"),
    ] {
        let problem = expect_problem(
            app.post_json_authed(&seats, &admin, &json!({"sections": sections}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(problem["detail"], detail);
    }
    assert_eq!(app.count("jobs").await, 0, "nothing is created");
}
