//! Tracing across the event backbone: a real API and a real payment worker export their spans
//! over OTLP/HTTP to a receiver this test runs, and a fan's payment request and the worker's
//! confirmation of it are one trace, the handler's span a child of the request's, across the
//! outbox row and the stream entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::holds::{charge, fans, sale};

const API: &str = env!("CARGO_BIN_EXE_imticket-api");
const WORKER: &str = env!("CARGO_BIN_EXE_imticket-worker");

#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    /// The `route` attribute (HTTP server spans).
    route: Option<String>,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

async fn receive(spans: web::Data<Mutex<Vec<Received>>>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            spans.push(Received {
                service: service.clone(),
                name: span.name,
                route: span
                    .attributes
                    .iter()
                    .find(|a| a.key == "route")
                    .and_then(|a| a.value.as_ref())
                    .map(|v| format!("{:?}", v.value)),
                trace_id: span.trace_id,
                span_id: span.span_id,
                parent_span_id: span.parent_span_id,
            });
        }
    }
    HttpResponse::Ok().content_type("application/x-protobuf").finish()
}

/// A local OTLP/HTTP receiver: `POST /v1/traces` with protobuf bodies.
fn otlp_receiver() -> (String, Arc<Mutex<Vec<Received>>>, actix_web::dev::ServerHandle) {
    let data = web::Data::new(Mutex::new(Vec::new()));
    let spans: Spans = data.clone().into_inner();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(16 << 20))
            .route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), spans, handle)
}

#[tokio::test]
async fn a_payment_request_and_its_confirmation_by_the_worker_are_one_trace() {
    let (endpoint, spans, receiver) = otlp_receiver();
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let fan = fans(&app, &concert, 1).await.remove(0);
    assert_eq!(charge(&app, &fan, Some("top-up"), json!(1000)).await.0, StatusCode::OK);

    let mut env: HashMap<String, String> = app.env.clone();
    env.insert("IMTICKET_OTLP_ENDPOINT".into(), endpoint);
    // The SDK's batch processor: export every 100 ms rather than every 5 s.
    env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into());
    let mut api_env = env.clone();
    api_env.insert("OTEL_SERVICE_NAME".into(), "test-api".into());
    let (_api, api_port) = spawn_listening(binary_command(API, &api_env), &app.redis.dir().join("api-traced.log"));
    let mut worker_env = env.clone();
    worker_env.insert("OTEL_SERVICE_NAME".into(), "test-payment-worker".into());
    let mut worker = binary_command(WORKER, &worker_env);
    worker.arg("payment");
    let (_worker, _) = spawn_listening(worker, &app.redis.dir().join("worker-traced.log"));

    let base = format!("http://127.0.0.1:{api_port}");
    let client = reqwest::Client::new();
    let held = client
        .post(format!("{base}/api/v1/reservations"))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .json(&json!({"schedule_id": schedule, "seat_ids": [seats[0]]}))
        .send()
        .await
        .unwrap();
    let held = expect_status(held, StatusCode::CREATED).await;
    let reservation = held["id"].as_str().unwrap().to_owned();
    let paid = client
        .post(format!("{base}/api/v1/reservations/{reservation}/payments"))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .header("idempotency-key", "traced-payment")
        .send()
        .await
        .unwrap();
    expect_status(paid, StatusCode::CREATED).await;

    eventually(
        "the worker confirms the reservation",
        Duration::from_secs(30),
        || async {
            let status: String = sqlx::query_scalar("SELECT status::text FROM reservations WHERE id = $1::uuid")
                .bind(&reservation)
                .fetch_one(&app.db)
                .await
                .unwrap();
            status == "confirmed"
        },
    )
    .await;

    let payment_route = "/api/v1/reservations/{id}/payments";
    let found = || {
        let spans = spans.lock().unwrap().clone();
        let request = spans
            .iter()
            .find(|s| s.name == "http request" && s.route.as_deref().is_some_and(|r| r.contains(payment_route)))?
            .clone();
        let handler = spans
            .iter()
            .find(|s| s.name.starts_with("handle payments") && s.trace_id == request.trace_id)?
            .clone();
        Some((spans, request, handler))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (spans, request, handler) = loop {
        if let Some(found) = found() {
            break found;
        }
        if std::time::Instant::now() > deadline {
            let spans = spans.lock().unwrap();
            let seen: Vec<(&str, &str)> = spans.iter().map(|s| (s.service.as_str(), s.name.as_str())).collect();
            let logs = std::fs::read_to_string(app.redis.dir().join("api-traced.log")).unwrap_or_default()
                + &std::fs::read_to_string(app.redis.dir().join("worker-traced.log")).unwrap_or_default();
            panic!("the request's and the handler's spans did not reach the receiver; it got {seen:?}\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    receiver.stop(false).await;

    assert!(request.service.contains("test-api"), "{request:?}");
    assert!(handler.service.contains("test-payment-worker"), "{handler:?}");
    assert_eq!(request.trace_id.len(), 16);
    assert!(
        request.parent_span_id.is_empty(),
        "the request starts the trace: {request:?}"
    );
    // The handler's parent is a span of the API's (the one the event was written in), which
    // is the request's span or one of its descendants.
    let by_id: HashMap<&[u8], &Received> = spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let parent = by_id
        .get(handler.parent_span_id.as_slice())
        .unwrap_or_else(|| panic!("the handler's parent span was not exported: {handler:?}"));
    assert!(parent.service.contains("test-api"), "{parent:?}");
    let mut at = *parent;
    while at.span_id != request.span_id {
        at = by_id
            .get(at.parent_span_id.as_slice())
            .unwrap_or_else(|| panic!("{at:?} does not descend from the payment request {request:?}"));
    }
    // The worker's statements are in its trace too, under the handler.
    assert!(
        spans
            .iter()
            .any(|s| s.parent_span_id == handler.span_id && s.name == "db statement"),
        "no statement span under the handler"
    );
}

/// Every repository statement is timed by name on `/metrics`; one over
/// `IMTICKET_DB_SLOW_STATEMENT_MS` is logged with its name and never with its parameters (the
/// email a fan signs up with is one of `users.insert_with_wallet`'s).
#[tokio::test]
async fn statements_are_timed_by_name_and_slow_ones_logged_without_their_parameters() {
    let redis = crate::servers::Redis::start();
    let mut env = test_env(&redis).await;
    // Every statement is "slow".
    env.insert("IMTICKET_DB_SLOW_STATEMENT_MS".into(), "1".into());
    let log_path = redis.dir().join("api-statements.log");
    let (_api, port) = spawn_listening(binary_command(API, &env), &log_path);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let email = format!("secret-{}@example.com", uuid::Uuid::new_v4().simple());
    let signed_up = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": email, "password": "correct-horse-battery", "name": "Fan"}))
        .send()
        .await
        .unwrap();
    expect_status(signed_up, StatusCode::CREATED).await;

    eventually(
        "the statements reach /metrics and the log",
        Duration::from_secs(20),
        || async {
            let metrics = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            metrics.contains(r#"db_statement_duration_seconds_count{statement="users.insert_with_wallet"}"#)
                && log.contains("slow database statement")
                && log.contains("users.insert_with_wallet")
        },
    )
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let slow: Vec<&str> = log.lines().filter(|l| l.contains("slow database statement")).collect();
    assert!(
        slow.iter()
            .all(|l| l.contains(r#""statement":""#) && l.contains("elapsed_ms")),
        "{slow:?}"
    );
    assert!(!log.contains(&email), "a parameter reached the log:\n{log}");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(name)),
            "{name} missing from /metrics"
        );
    }
}
