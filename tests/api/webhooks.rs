//! Webhooks end to end: a fan's admission, hold and ticket reach a local receiver signed per
//! Standard Webhooks (checked by the reference Python library, not by our code), a failing
//! endpoint is retried under the same id, 410 disables an endpoint, and private targets are
//! refused unless allowed.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::holds::{charge, fans, hold, pay, sale};
use imticket::worker::Role;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        &self.headers.iter().find(|(n, _)| n == name).unwrap().1
    }
}

/// A local webhook receiver: records every request and answers the statuses queued in
/// `answers` in turn (then 200).
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    pub(crate) answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    pub(crate) fn start(&self) -> String {
        let me = self.clone();
        let server = HttpServer::new(move || {
            let me = me.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let me = me.clone();
                async move {
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    me.got.lock().unwrap().push(Received {
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let next = {
                        let mut answers = me.answers.lock().unwrap();
                        if answers.is_empty() { 200 } else { answers.remove(0) }
                    };
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(next).unwrap()).finish()
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        format!("http://{addr}/hook")
    }

    pub(crate) fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// The reference library's verdict on one request.
pub(crate) fn verified_type(secret: &str, got: &Received) -> String {
    let headers: serde_json::Map<String, Value> = got.headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    let input = json!({"secret": secret, "headers": headers, "body": got.body}).to_string();
    let mut child = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/verify_webhook.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "the test checks signatures with `pip install standardwebhooks==1.1.0` (scripts/test.sh installs it): {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "signature refused by the reference library: {stdout} {stderr}"
    );
    stdout
}

pub(crate) fn workers(app: &TestApp, roles: Vec<Role>) -> tokio_util::sync::DropGuard {
    let stop = CancellationToken::new();
    tokio::spawn(imticket::worker::run(config_from(&app.env), roles, stop.clone()));
    stop.drop_guard()
}

pub(crate) async fn register(app: &TestApp, admin: &str, url: &str, types: Value) -> Value {
    let response = app
        .post_json_authed(
            "/api/v1/admin/webhooks",
            admin,
            &json!({"url": url, "event_types": types}),
        )
        .await;
    expect_status(response, StatusCode::CREATED).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fans_turn_hold_and_ticket_arrive_signed_and_a_failing_endpoint_gets_them_later() {
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_WEBHOOK_ALLOW_PRIVATE".into(), "true".into());
        env.insert("IMTICKET_WEBHOOK_RETRY_SCHEDULE".into(), "0,1,1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let healthy = Receiver::default();
    let flaky = Receiver::default();
    // The flaky endpoint fails its first two requests (a 500, a 503 with Retry-After).
    flaky.answers.lock().unwrap().extend([500, 503]);
    let everything = register(&app, &admin, &healthy.start(), json!(["*"])).await;
    let tickets = register(&app, &admin, &flaky.start(), json!(["reservation.confirmed"])).await;
    let secret = everything["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = expect_status(app.get_authed("/api/v1/admin/webhooks", &admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains("whsec_"),
        "secrets are shown once: {listed}"
    );

    let _workers = workers(&app, vec![Role::Payment, Role::OutboxRelay, Role::Notifications]);
    let fan = fans(&app, &concert, 1).await.remove(0);
    charge(&app, &fan, Some("c"), json!(500)).await;
    let (status, held) = hold(&app, &fan, &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let (status, _) = pay(&app, &fan, held["id"].as_str().unwrap(), "p").await;
    assert_eq!(status, StatusCode::CREATED);

    eventually("the turn, the hold and the ticket", Duration::from_secs(60), || async {
        healthy.got().len() >= 3
    })
    .await;
    let got = healthy.got();
    let mut types: Vec<String> = got.iter().map(|g| verified_type(&secret, g)).collect();
    types.sort();
    assert_eq!(
        types,
        vec!["queue.admitted", "reservation.confirmed", "reservation.created"]
    );
    let ticket = got.iter().find(|g| g.body.contains("reservation.confirmed")).unwrap();
    let body: Value = serde_json::from_str(&ticket.body).unwrap();
    assert_eq!(body["data"]["reservation_id"], held["id"]);
    assert!(
        body["data"]["ticket_code"].as_str().unwrap().starts_with("TK-"),
        "{body}"
    );
    assert!(ticket.header("webhook-id").starts_with("msg_"));

    // The flaky endpoint: two failures, then the ticket, all under one id, re-signed each time.
    eventually(
        "the flaky endpoint to get the ticket",
        Duration::from_secs(60),
        || async { flaky.got().len() >= 3 },
    )
    .await;
    let tries = flaky.got();
    let ids: Vec<&str> = tries.iter().map(|t| t.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let flaky_secret = tickets["secret"].as_str().unwrap();
    for attempt in &tries {
        assert_eq!(verified_type(flaky_secret, attempt), "reservation.confirmed");
    }
    let id = tickets["id"].as_str().unwrap();
    let log = expect_status(
        app.get_authed(&format!("/api/v1/admin/webhooks/{id}/deliveries"), &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    let delivery = &log["items"][0];
    assert_eq!(
        (delivery["status"].as_str(), delivery["attempts"].as_i64()),
        (Some("delivered"), Some(3)),
        "{log}"
    );
    let codes: Vec<i64> = delivery["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 503, 200]);
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        1,
        "one delivery, whatever the attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_answers_410_is_disabled_and_a_rotated_secret_signs_beside_the_old() {
    let (app, concert, _, _) = sale(|env| {
        env.insert("IMTICKET_WEBHOOK_ALLOW_PRIVATE".into(), "true".into());
        env.insert("IMTICKET_WEBHOOK_RETRY_SCHEDULE".into(), "0,1,1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let gone = Receiver::default();
    gone.answers.lock().unwrap().extend([410, 410]);
    let rotated = Receiver::default();
    let g = register(&app, &admin, &gone.start(), json!(["queue.admitted"])).await;
    let r = register(&app, &admin, &rotated.start(), json!(["queue.admitted"])).await;
    let old = r["secret"].as_str().unwrap().to_owned();
    let new = expect_status(
        app.post_json_authed(
            &format!("/api/v1/admin/webhooks/{}/rotate-secret", r["id"].as_str().unwrap()),
            &admin,
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(old, new);
    let _workers = workers(&app, vec![Role::Notifications]);
    fans(&app, &concert, 2).await;
    eventually(
        "both admissions at the rotated endpoint",
        Duration::from_secs(60),
        || async { rotated.got().len() >= 2 },
    )
    .await;
    for got in rotated.got() {
        // Two signatures while the rotation overlaps: either secret verifies.
        assert_eq!(got.header("webhook-signature").split(' ').count(), 2);
        assert_eq!(verified_type(&old, &got), "queue.admitted");
        assert_eq!(verified_type(&new, &got), "queue.admitted");
    }
    let id = g["id"].as_str().unwrap();
    eventually("the 410 endpoint to be disabled", Duration::from_secs(30), || async {
        let endpoint = expect_status(
            app.get_authed(&format!("/api/v1/admin/webhooks/{id}"), &admin).await,
            StatusCode::OK,
        )
        .await;
        endpoint["disabled_at"].is_string()
    })
    .await;
    // Once disabled it is sent nothing more: a third admission reaches only the other one.
    let asked = gone.got().len();
    fans(&app, &concert, 1).await;
    eventually(
        "the third admission at the rotated endpoint",
        Duration::from_secs(60),
        || async { rotated.got().len() >= 3 },
    )
    .await;
    assert_eq!(gone.got().len(), asked);
    let log = expect_status(
        app.get_authed(&format!("/api/v1/admin/webhooks/{id}/deliveries"), &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        log["items"].as_array().unwrap().iter().all(|d| d["status"] == "failed"),
        "{log}"
    );
}

#[tokio::test]
async fn private_targets_and_unknown_types_are_refused_and_endpoints_are_admin_only() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (url, types) in [
        ("http://127.0.0.1:9/hook", json!(["*"])),
        ("http://169.254.169.254/latest", json!(["*"])),
        ("http://[::1]/hook", json!(["*"])),
        ("ftp://example.com/hook", json!(["*"])),
        ("https://example.com/hook", json!(["payment.refunded"])),
        ("https://example.com/hook", json!([])),
    ] {
        let response = app
            .post_json_authed(
                "/api/v1/admin/webhooks",
                &admin,
                &json!({"url": url, "event_types": types}),
            )
            .await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
    assert_eq!(app.count("webhook_endpoints").await, 0, "nothing was registered");
    let fan = app.new_user().await;
    let response = app.get_authed("/api/v1/admin/webhooks", &fan.token).await;
    expect_problem(response, StatusCode::FORBIDDEN, "admin_required").await;
    let response = app
        .get_authed(&format!("/api/v1/admin/webhooks/{}", uuid::Uuid::now_v7()), &admin)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "webhook_not_found").await;
}

#[tokio::test]
async fn the_operator_cli_adds_lists_rotates_reads_and_removes_an_endpoint() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_WEBHOOK_ALLOW_PRIVATE".into(), "true".into());
    })
    .await;
    let cli = |args: &[&str]| crate::statistics::admin_cli(&app, args);
    let added: Value = serde_json::from_str(&cli(&[
        "--json",
        "webhooks",
        "add",
        "http://127.0.0.1:9/hook",
        "--events",
        "queue.admitted,reservation.expiring",
    ]))
    .unwrap();
    let id = added["endpoint"]["id"].as_str().unwrap().to_owned();
    assert!(added["secret"].as_str().unwrap().starts_with("whsec_"));
    let admin = app.admin_token().await;
    let served = expect_status(
        app.get_authed(&format!("/api/v1/admin/webhooks/{id}"), &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(served["event_types"], json!(["queue.admitted", "reservation.expiring"]));
    let table = cli(&["webhooks", "list"]);
    assert!(
        table.contains(&id) && table.contains("enabled") && !table.contains("whsec_"),
        "{table}"
    );
    let rotated: Value = serde_json::from_str(&cli(&["--json", "webhooks", "rotate-secret", &id])).unwrap();
    assert_ne!(rotated["secret"], added["secret"]);
    let deliveries: Value = serde_json::from_str(&cli(&["--json", "webhooks", "deliveries", &id])).unwrap();
    assert_eq!(deliveries, json!([]));
    // The same checks as the API: an unknown type is refused and nothing is stored.
    let refused = binary_command(env!("CARGO_BIN_EXE_imticket-admin"), &app.env)
        .args([
            "webhooks",
            "add",
            "http://127.0.0.1:9/x",
            "--events",
            "payment.refunded",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("payment.refunded"));
    cli(&["webhooks", "remove", &id]);
    assert_eq!(app.count("webhook_endpoints").await, 0);
}
