//! The OpenAPI document describes what the server does: where parameters are, how errors are
//! sent, what each operation can answer; and the inputs a fuzzer found the server mishandling
//! (U+0000, which PostgreSQL cannot store; numbers past any range) are refused as api.md says.
//! scripts/fuzz.sh checks the whole document against the running system with schemathesis.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn document(app: &TestApp) -> Value {
    expect_status(app.get("/openapi.json").await, StatusCode::OK).await
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), op));
        }
    }
    out
}

#[tokio::test]
async fn text_with_nul_is_refused_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, schedule) = app.concert_with_schedule(&admin, 30).await;
    let concerts = app.count("concerts").await;
    let cases = [
        (
            "/api/v1/concerts",
            json!({"title": "Night", "description": "before\u{0}after"}),
            "description: must not contain U+0000",
        ),
        (
            "/api/v1/concerts",
            json!({"title": "\u{0}Night"}),
            "title: must not contain U+0000",
        ),
        (
            &format!("/api/v1/schedules/{schedule}/seats") as &str,
            json!({"sections": [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1},
                {"name": "B\u{0}", "rows": 1, "seats_per_row": 1, "price": 1}]}),
            "sections[1].name: must not contain U+0000",
        ),
    ];
    for (path, body, detail) in cases {
        let problem = expect_problem(
            app.post_json_authed(path, &admin, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(problem["detail"], detail, "{path} {body}");
    }
    let problem = expect_problem(
        app.signup("nul@example.com", "pass\u{0}word", "Nul").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(problem["detail"], "password: must not contain U+0000");
    // A query value: the seat map's filter.
    let problem = expect_problem(
        app.get(&format!("/api/v1/schedules/{schedule}/seats?status=held%00"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(problem["detail"], "status: must not contain U+0000");
    // A log-in only compares its text: it fails as any wrong address does (api.md).
    expect_problem(
        app.login("admin\u{0}@imticket.local", "x").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.count("concerts").await, concerts, "nothing is created");
    assert_eq!(app.count("users").await, 1, "only the admin exists");
}

#[tokio::test]
async fn a_number_past_its_range_is_a_field_error_naming_the_range() {
    let app = spawn_app().await;
    let fan = app.new_user().await;
    for amount in ["1e20", "100000000000000000000", "2.5"] {
        let response = app
            .client
            .post(app.url("/api/v1/users/me/points/charge"))
            .bearer_auth(&fan.token)
            .header("idempotency-key", format!("huge-{amount}"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"amount": {amount}}}"#))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
        assert_eq!(
            problem["detail"], "amount: must be a whole number from 1 to 10000000",
            "{amount}"
        );
    }
    let admin = app.admin_token().await;
    let (_, schedule) = app.concert_with_schedule(&admin, 30).await;
    let seats = format!("/api/v1/schedules/{schedule}/seats");
    for (rows, detail) in [
        ("1e20", "sections[0].rows: must be a whole number from 1 to 200000"),
        ("1e12", "sections[0].rows: must be at most 200000"),
    ] {
        let response = app
            .client
            .post(app.url(&seats))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"sections": [{{"name": "A", "rows": {rows}, "seats_per_row": 1, "price": 1}}]}}"#
            ))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
        assert_eq!(problem["detail"], detail, "{rows}");
    }
}

/// `page`, `size`, `status` and `mode` are optional query parameters with the ranges and
/// values the server enforces.
#[tokio::test]
async fn query_parameters_are_optional_and_in_the_query() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let param = |path: &str, method: &str, name: &str| -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has no parameters"))
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
            .clone()
    };
    for (path, method, name) in [
        ("/api/v1/concerts", "get", "page"),
        ("/api/v1/concerts", "get", "size"),
        ("/api/v1/users/me/reservations", "get", "page"),
        ("/api/v1/users/me/reservations", "get", "size"),
        ("/api/v1/schedules/{id}/seats", "get", "status"),
        ("/api/v1/schedules/{id}/seats", "post", "mode"),
    ] {
        let p = param(path, method, name);
        assert_eq!(p["in"], "query", "{method} {path} {name}: {p}");
        assert_ne!(p["required"], true, "{method} {path} {name}: {p}");
    }
    let page = param("/api/v1/concerts", "get", "page");
    assert_eq!(
        (&page["schema"]["minimum"], &page["schema"]["maximum"]),
        (&json!(1), &json!(1_000_000))
    );
    let size = param("/api/v1/concerts", "get", "size");
    assert_eq!(
        (&size["schema"]["minimum"], &size["schema"]["maximum"]),
        (&json!(1), &json!(100))
    );
    let status = param("/api/v1/schedules/{id}/seats", "get", "status");
    assert_eq!(status["schema"]["enum"], json!(["available", "held", "sold"]));
    let mode = param("/api/v1/schedules/{id}/seats", "post", "mode");
    assert_eq!(mode["schema"]["enum"], json!(["stream", "inline"]));
    // Path parameters are the id, and a plan's version beside its hall's id.
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                let name = p["name"].as_str().unwrap();
                assert!(
                    name == "id" || (name == "version" && path.contains("/plans/")),
                    "{method} {path}: {p}"
                );
                assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: {p}");
            }
        }
    }
}

/// Every error an operation can answer is declared as problem+json with the `Problem` schema,
/// and the answers every operation of a kind can get are there: 503 `overloaded` (all but
/// /health/* and /metrics), 429 (every /api/v1 route is under the per-IP limit), 408 and 422
/// with a body, 401 with a token, 400 and 404 with a path id, with their headers.
#[tokio::test]
async fn errors_are_declared_as_problem_json_with_their_headers() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        for (status, response) in responses {
            if status.as_str() >= "400" {
                let content = response["content"].as_object().unwrap();
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
            if status == "429" || status == "503" {
                assert_eq!(
                    response["headers"]["Retry-After"]["required"], true,
                    "{method} {path} {status}"
                );
            }
            if status == "401" {
                assert!(response["headers"]["WWW-Authenticate"].is_object(), "{method} {path}");
            }
        }
        let operational = path.starts_with("/health/") || path == "/metrics";
        assert_eq!(
            has("503"),
            !operational || path == "/health/ready",
            "{method} {path}: 503"
        );
        assert_eq!(has("429"), path.starts_with("/api/v1/"), "{method} {path}: 429");
        if op.get("requestBody").is_some() {
            for status in ["400", "408", "422"] {
                assert!(has(status), "{method} {path}: {status}");
            }
        }
        if op.get("security").is_some() {
            assert!(has("401"), "{method} {path}: 401");
        }
        if path.contains("{id}") {
            assert!(has("400") && has("404"), "{method} {path}: 400 and 404");
        }
        if path.starts_with("/api/v1/") {
            for (status, response) in responses {
                assert!(
                    response["headers"]["RateLimit-Policy"].is_object() && response["headers"]["RateLimit"].is_object(),
                    "{method} {path} {status}: the rate-limit headers"
                );
            }
        }
    }
    let seats = &doc["paths"]["/api/v1/schedules/{id}/seats"]["post"]["responses"]["202"];
    assert!(seats["headers"]["Location"].is_object(), "{seats}");
    // A hold's seats: as many as this deployment allows, each once.
    let seat_ids = &doc["components"]["schemas"]["NewReservation"]["properties"]["seat_ids"];
    assert_eq!(
        (&seat_ids["minItems"], &seat_ids["maxItems"], &seat_ids["uniqueItems"]),
        (&json!(1), &json!(4), &json!(true)),
        "{seat_ids}"
    );
}

/// Links chain what an operation creates to what reads or ends it, by operationId.
#[tokio::test]
async fn links_name_operations_that_exist() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ids: Vec<&str> = operations(&doc)
        .iter()
        .filter_map(|(_, _, op)| op["operationId"].as_str())
        .collect();
    let mut links = 0;
    for (method, path, op) in operations(&doc) {
        for response in op["responses"].as_object().unwrap().values() {
            for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                let target = link["operationId"].as_str().unwrap();
                assert!(ids.contains(&target), "{method} {path} links to {target}");
                links += 1;
            }
        }
    }
    assert!(links >= 10, "{links} links");
    let created = &doc["paths"]["/api/v1/reservations"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        created["CancelReservation"]["parameters"]["path.id"],
        "$response.body#/id"
    );
}
