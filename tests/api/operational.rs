//! Health, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn liveness_and_readiness_answer_200_when_everything_is_up() {
    let app = spawn_app().await;
    assert_eq!(
        expect_status(app.get("/health/live").await, StatusCode::OK).await["status"],
        "ok"
    );
    assert_eq!(
        expect_status(app.get("/health/ready").await, StatusCode::OK).await["status"],
        "ready"
    );
}

#[tokio::test]
async fn readiness_is_503_naming_redis_while_it_is_down_and_recovers() {
    let mut app = spawn_app().await;
    expect_status(app.get("/health/ready").await, StatusCode::OK).await;

    app.redis.kill();
    let response = app.get("/health/ready").await;
    assert!(response.headers().contains_key("retry-after"));
    let problem = expect_problem(response, StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("redis") && !detail.contains("postgres"), "{detail}");
    // Liveness does not depend on Redis.
    expect_status(app.get("/health/live").await, StatusCode::OK).await;

    app.redis.restart();
    eventually(
        "readiness recovers after Redis restarts",
        Duration::from_secs(20),
        || async { app.get("/health/ready").await.status() == StatusCode::OK },
    )
    .await;
}

#[tokio::test]
async fn the_api_starts_while_redis_is_down_and_reports_not_ready() {
    let mut app = spawn_app_with(|_| {}).await;
    app.redis.kill();
    // A second API instance started while Redis is down still serves requests.
    let env = app.env.clone();
    let second = imticket::startup::Application::build(config_from(&env)).await.unwrap();
    let port = second.port();
    let token = tokio_util::sync::CancellationToken::new();
    tokio::spawn(second.run_until_stopped(token.clone()));
    let url = format!("http://127.0.0.1:{port}");
    let ready = app.client.get(format!("{url}/health/ready")).send().await.unwrap();
    expect_problem(ready, StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable").await;
    let login = app
        .client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_status(login, StatusCode::OK).await;
    app.redis.restart();
    eventually("the second instance becomes ready", Duration::from_secs(20), || async {
        app.client
            .get(format!("{url}/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
    })
    .await;
    token.cancel();
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    expect_status(app.me(&user.token).await, StatusCode::OK).await;
    app.get("/api/v1/definitely/not/a/route").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let line = |needle: &str| {
        text.lines()
            .any(|l| l.starts_with("http_requests_total") && l.contains(needle))
    };
    assert!(line(r#"route="/api/v1/users/me""#) && line(r#"status="200""#), "{text}");
    assert!(line(r#"route="/api/v1/auth/signup""#), "{text}");
    assert!(
        line(r#"route="unmatched""#),
        "unknown routes share one label value: {text}"
    );
    assert!(!text.contains("definitely/not"), "raw paths must not become labels");
    assert!(!text.contains(&user.id), "ids must not become labels");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

/// Every operation the OpenAPI document lists is served by the running API (neither the
/// unknown-route 404 nor a 405), so the document cannot describe routes that do not exist.
#[tokio::test]
async fn the_openapi_document_matches_the_routes_served() {
    let app = spawn_app().await;
    let doc = expect_status(app.get("/openapi.json").await, StatusCode::OK).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/users/me",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing from the document");
    }
    for (path, operations) in paths {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            assert!(
                !(status == StatusCode::NOT_FOUND && body["code"] == "not_found"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    // A method the document does not list answers 405, whose `Allow` names exactly the
    // documented ones.
    for (path, operations) in paths {
        let concrete = path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{version}", "1");
        let response = app
            .client
            .request(reqwest::Method::PATCH, app.url(&concrete))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "PATCH {path}");
        let mut allow: Vec<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_lowercase())
            .collect();
        allow.sort();
        let mut documented: Vec<String> = operations.as_object().unwrap().keys().cloned().collect();
        documented.sort();
        assert_eq!(allow, documented, "Allow of {path}");
    }
    // A license, when the document has one, has a name (OpenAPI 3.1: `name` is required).
    if let Some(license) = doc["info"].get("license") {
        assert!(
            license["name"].as_str().is_some_and(|name| !name.trim().is_empty()),
            "{license}"
        );
    }
    // Error responses are documented as problem+json.
    let signup_409 = &doc["paths"]["/api/v1/auth/signup"]["post"]["responses"]["409"];
    assert!(
        signup_409["content"]["application/problem+json"].is_object(),
        "{signup_409}"
    );
}
