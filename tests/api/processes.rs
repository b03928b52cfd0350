//! The real binaries: configuration errors, graceful shutdown, logs free of secrets, and the
//! admin CLI.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::servers::{self, Redis};

const API: &str = env!("CARGO_BIN_EXE_imticket-api");
const WORKER: &str = env!("CARGO_BIN_EXE_imticket-worker");
const ADMIN: &str = env!("CARGO_BIN_EXE_imticket-admin");

fn run_to_end(binary: &str, args: &[&str], env: &HashMap<String, String>) -> Output {
    binary_command(binary, env)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn configuration_errors_stop_the_process_with_one_line_naming_the_variable() {
    let redis = Redis::start();
    let env = test_env(&redis).await;
    let cases: [(&str, Option<&str>); 6] = [
        ("IMTICKET_HOLD_TTL_SECONDS", Some("five minutes")),
        ("IMTICKET_MAX_SEATS_PER_RESERVATION", Some("-1")),
        ("IMTICKET_HTTP_ADDR", Some("not-an-address")),
        ("DATABASE_URL", None),
        ("DATABASE_URL", Some("not a url")),
        ("JWT_SECRET", None),
    ];
    for (var, value) in cases {
        let mut broken = env.clone();
        match value {
            Some(v) => broken.insert(var.into(), v.into()),
            None => broken.remove(var),
        };
        for binary in [API, WORKER] {
            if var == "JWT_SECRET" && binary == WORKER {
                continue; // a worker signs nothing (see `one_host_runs_any_number_of_processes`)
            }
            let output = run_to_end(binary, &["all"][..usize::from(binary == WORKER)], &broken);
            assert_eq!(output.status.code(), Some(2), "{binary} with bad {var}");
            let lines = stderr_lines(&output);
            assert_eq!(lines.len(), 1, "one line: {lines:?}");
            assert!(lines[0].contains(var), "{:?} should name {var}", lines[0]);
        }
    }
}

/// An unknown role is refused before anything starts.
#[tokio::test]
async fn an_unknown_worker_role_is_refused() {
    let redis = Redis::start();
    let env = test_env(&redis).await;
    let output = run_to_end(WORKER, &["no-such-role"], &env);
    assert_eq!(output.status.code(), Some(2), "clap rejects unknown roles");
}

/// A misspelt variable must not pass silently: the process starts (with the default) and
/// says, once, that nothing reads it and which variable was probably meant.
#[tokio::test]
async fn a_variable_nothing_reads_is_warned_about_at_start() {
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    env.insert("IMTICKET_HOLD_TTL_SECOND".into(), "5".into());
    env.insert("IMTICKET_DATA_DIR".into(), "/elsewhere".into());
    let log_path = redis.dir().join("api-typo.log");
    let (_api, _port) = spawn_listening(binary_command(API, &env), &log_path);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("nothing reads it")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("IMTICKET_HOLD_TTL_SECOND")
            && warnings[0].contains("did you mean IMTICKET_HOLD_TTL_SECONDS"),
        "{}",
        warnings[0]
    );
}

/// SIGTERM while a request is in flight: the server stops accepting new connections, the
/// in-flight request completes, and the process exits 0.
#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish_and_exits_zero() {
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    env.insert("RUST_LOG".into(), "info,actix_server=debug".into());
    let log_path = redis.dir().join("api.log");
    let (mut api, port) = spawn_listening(binary_command(API, &env), &log_path);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // A sign-up sent with `Expect: 100-continue`: the server's `100 Continue` proves it has
    // parsed the request and waits for the body, so the request is in flight for certain.
    let body = r#"{"email": "late@example.com", "password": "correct-horse", "name": "Late"}"#;
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        conn,
        "POST /api/v1/auth/signup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen)
        .to_ascii_lowercase()
        .contains("100 continue")
    {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before 100 Continue");
        seen.extend_from_slice(&buf[..n]);
    }

    signal(&api, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server kept accepting connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        api.try_wait().unwrap().is_none(),
        "the process must wait for the in-flight request; log:\n{}",
        log()
    );

    conn.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "response {response:?}; process: {:?}; log:\n{}",
        api.try_wait(),
        log()
    );
    assert!(response.contains("late@example.com"), "{response}");

    let status = wait_exit(&mut api, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let db = crate::servers::direct_pool(&env["DATABASE_URL"]).await;
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'late@example.com'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn the_worker_serves_metrics_and_exits_zero_on_sigterm_and_sigint() {
    let redis = Redis::start();
    let env = test_env(&redis).await;
    for signal_name in ["TERM", "INT"] {
        let mut cmd = binary_command(WORKER, &env);
        cmd.arg("all");
        let (mut worker, port) = spawn_listening(cmd, &redis.dir().join(format!("worker-{signal_name}.log")));
        let metrics = reqwest::get(format!("http://127.0.0.1:{port}/health/live"))
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
        signal(&worker, signal_name);
        assert_eq!(
            wait_exit(&mut worker, Duration::from_secs(30)).code(),
            Some(0),
            "SIG{signal_name}"
        );
    }
}

/// No password, token or secret reaches a log line, even at debug level.
#[tokio::test]
async fn logs_never_contain_passwords_tokens_or_secrets() {
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    env.insert("RUST_LOG".into(), "debug".into());
    let log_path = redis.dir().join("api.log");
    let (mut api, port) = spawn_listening(binary_command(API, &env), &log_path);

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let password = "sup3r-s3cret-passw0rd";
    let signup = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&serde_json::json!({"email": "quiet@example.com", "password": password, "name": "Q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let token = login_token(&client, &base, "quiet@example.com", password).await;
    assert_eq!(
        client
            .get(format!("{base}/api/v1/users/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let wrong = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "quiet@example.com", "password": "wr0ng-passw0rd-guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let forged = client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth("forged.token-value.xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    signal(&api, "TERM");
    assert_eq!(wait_exit(&mut api, Duration::from_secs(30)).code(), Some(0));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("request finished"),
        "the test must see real log output: {logs}"
    );
    for secret in [
        password,
        "wr0ng-passw0rd-guess",
        &token,
        "forged.token-value",
        &env["JWT_SECRET"],
        ADMIN_PASSWORD,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs: {secret}");
    }
}

#[tokio::test]
async fn admin_migrate_applies_pending_migrations_once() {
    let url = servers::fresh_database().await;
    let env = HashMap::from([
        ("DATABASE_URL".to_owned(), url.clone()),
        ("IMTICKET_DB_POOLER".to_owned(), servers::pooler_setting().to_owned()),
    ]);
    let first = run_to_end(ADMIN, &["migrate"], &env);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let total = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        format!("migrations: {total} applied now, {total} in total")
    );
    let second = run_to_end(ADMIN, &["migrate"], &env);
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        format!("migrations: 0 applied now, {total} in total")
    );
    let db = crate::servers::direct_pool(&url).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, 0);

    let missing = run_to_end(ADMIN, &["migrate"], &HashMap::new());
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("DATABASE_URL"));
}

#[tokio::test]
async fn admin_seed_creates_consistent_demo_data() {
    let url = servers::fresh_database().await;
    let secret = format!("seed-test-secret-{}", uuid::Uuid::new_v4());
    let env = HashMap::from([
        ("DATABASE_URL".to_owned(), url.clone()),
        ("IMTICKET_DB_POOLER".to_owned(), servers::pooler_setting().to_owned()),
        ("JWT_SECRET".to_owned(), secret.clone()),
    ]);
    let scratch = tempfile::tempdir().unwrap();
    let tokens_out = scratch.path().join("fans.json");
    let args = [
        "seed",
        "--tokens-out",
        tokens_out.to_str().unwrap(),
        "--concerts",
        "2",
        "--schedules-per-concert",
        "2",
        "--seats-per-schedule",
        "1234",
        "--users",
        "3",
        "--points-per-user",
        "500",
        "--json",
    ];
    let output = run_to_end(ADMIN, &args, &env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // Two concerts as asked, and the demo arena's concert with one schedule made from its plan.
    let arena = imticket::domain::seat_plan::arena(24, 30, 16, 100_000).unwrap();
    let arena_seats = arena.for_sale() as i64;
    assert_eq!(
        (
            report["concerts"].as_i64(),
            report["schedules"].as_i64(),
            report["seats"].as_i64()
        ),
        (Some(3), Some(5), Some(4 * 1234 + arena_seats))
    );

    let db = crate::servers::direct_pool(&url).await;
    let seats: i64 = sqlx::query_scalar("SELECT count(*) FROM seats")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(seats, 4 * 1234 + arena_seats);
    let mut inventory: Vec<(i32, i32)> = sqlx::query_as("SELECT total_seats, available_seats FROM schedule_inventory")
        .fetch_all(&db)
        .await
        .unwrap();
    inventory.sort_unstable();
    let mut expected = vec![(1234, 1234); 4];
    expected.push((arena_seats as i32, arena_seats as i32));
    expected.sort_unstable();
    assert_eq!(inventory, expected);
    let (places, in_use): (i32, bool) =
        sqlx::query_as("SELECT seats, used_at IS NOT NULL FROM hall_plans WHERE hall_id = $1::uuid AND version = $2")
            .bind(report["venue"]["hall_id"].as_str().unwrap())
            .bind(report["venue"]["plan_version"].as_i64().unwrap() as i32)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((places as usize, in_use), (arena.seats().len(), true));
    // I3: every balance equals its ledger.
    let wallets: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT w.balance, COALESCE((SELECT sum(amount) FROM point_transactions t WHERE t.user_id = w.user_id), 0)::bigint FROM wallets w",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(wallets, vec![(500, 500); 3]);

    // The seeded accounts work.
    let redis = Redis::start();
    let mut app_env = test_env(&redis).await;
    app_env.insert("DATABASE_URL".into(), url);
    let app = imticket::startup::Application::build(config_from(&app_env))
        .await
        .unwrap();
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE email LIKE 'fan1-%'")
        .fetch_one(&db)
        .await
        .unwrap();
    let token = imticket::app::auth::login(app.deps(), &email, &"seeded-password".to_owned().into()).await;
    assert!(token.is_ok());

    // --tokens-out: every seeded user with a token the deployment's key verifies.
    let fans: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&tokens_out).unwrap()).unwrap();
    assert_eq!(fans.len(), 3);
    let tokens = imticket::app::tokens::TokenService::new(&secret.into(), std::time::Duration::from_secs(60));
    for fan in &fans {
        let principal = tokens.verify(fan["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(principal.user_id.to_string(), fan["user_id"].as_str().unwrap());
        let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid AND email = $2)")
            .bind(fan["user_id"].as_str().unwrap())
            .bind(fan["email"].as_str().unwrap())
            .fetch_one(&db)
            .await
            .unwrap();
        assert!(known, "{fan}");
    }
}
