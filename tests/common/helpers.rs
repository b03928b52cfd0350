//! `spawn_app()` and typed helpers, so tests read like the user stories they check.

use std::collections::HashMap;

use imticket::config::Config;
use imticket::startup::Application;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::servers::{self, Redis};

pub const ADMIN_EMAIL: &str = "admin@imticket.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// A pool on the test's own database, for checking what the API did: straight at
    /// PostgreSQL even when the API goes through PgBouncer.
    pub db: PgPool,
    pub redis: Redis,
    pub env: HashMap<String, String>,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The environment a test deployment runs with: a fresh database, the test's own Redis,
/// a random JWT secret, free ports, and a bootstrap admin.
pub async fn test_env(redis: &Redis) -> HashMap<String, String> {
    let database_url = servers::fresh_database().await;
    let mut env = HashMap::from([
        ("IMTICKET_ENV".into(), "production".into()),
        ("DATABASE_URL".into(), database_url),
        // `transaction` when the tests go through PgBouncer (IMTICKET_TEST_PGBOUNCER=1).
        ("IMTICKET_DB_POOLER".into(), servers::pooler_setting().into()),
        ("JWT_SECRET".into(), format!("test-secret-{}", uuid::Uuid::new_v4())),
        ("IMTICKET_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("IMTICKET_WORKER_METRICS_ADDR".into(), "127.0.0.1:0".into()),
        // One "listening" line per process (the API's HTTP port); the processes tests turn it on.
        ("IMTICKET_API_METRICS_ADDR".into(), "off".into()),
        ("IMTICKET_REDIS_TIMEOUT_MS".into(), "500".into()),
        // Off unless a test turns it on: invalidations reach a near cache asynchronously, and
        // most tests read right after a change made by another component.
        ("IMTICKET_CACHE_NEAR_TTL_MS".into(), "0".into()),
        ("IMTICKET_BOOTSTRAP_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()),
        ("IMTICKET_BOOTSTRAP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        // Tests send far more than a person would from one address; the rate-limit tests
        // turn the limits on.
        ("IMTICKET_RATE_LIMITS".into(), "off".into()),
        // The concurrency tests count what hundreds of simultaneous requests did; on a loaded
        // machine a 2 s wait for a turn would shed some of them. The overload tests set their own.
        ("IMTICKET_HTTP_QUEUE_TIMEOUT_MS".into(), "30000".into()),
        // No balancer to wait for: a SIGTERMed binary stops at once. The draining tests set it.
        ("IMTICKET_HTTP_DRAIN_SECONDS".into(), "0".into()),
    ]);
    env.extend(redis.env());
    env
}

pub fn config_from(env: &HashMap<String, String>) -> Config {
    Config::from_lookup(|name| env.get(name).cloned()).unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to change the environment first.
pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        imticket::telemetry::install("test", imticket::config::LogFormat::Text);
    }
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    customize(&mut env);
    let app = Application::build(config_from(&env)).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = servers::direct_pool(&env["DATABASE_URL"]).await;
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        redis,
        env,
        shutdown,
    }
}

/// A signed-up, logged-in user.
pub struct TestUser {
    pub id: String,
    pub token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Another API instance of this deployment (same database, Redis and settings, its own
    /// port), running until the guard is dropped. Returns its base URL.
    pub async fn another_instance(&self) -> (String, tokio_util::sync::DropGuard) {
        let app = Application::build(config_from(&self.env)).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run_until_stopped(shutdown.clone()));
        (address, shutdown.drop_guard())
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    /// A POST with an arbitrary body and content type, for malformed-input tests.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn signup(&self, email: &str, password: &str, name: &str) -> Response {
        self.post_json(
            "/api/v1/auth/signup",
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json("/api/v1/auth/login", &json!({"email": email, "password": password}))
            .await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get_authed("/api/v1/users/me", token).await
    }

    /// Signs up a new user with a unique address and logs in.
    pub async fn new_user(&self) -> TestUser {
        let email = format!("fan-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct-horse-battery".to_owned();
        let created: Value = expect_status(self.signup(&email, &password, "Fan").await, StatusCode::CREATED).await;
        let token = self.token(&email, &password).await;
        TestUser {
            id: created["id"].as_str().unwrap().to_owned(),
            token,
        }
    }

    pub async fn token(&self, email: &str, password: &str) -> String {
        let body: Value = expect_status(self.login(email, password).await, StatusCode::OK).await;
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn post_json_authed(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a concert and a schedule starting in `days` days; returns their ids.
    pub async fn concert_with_schedule(&self, admin: &str, days: i64) -> (String, String) {
        let concert = expect_status(
            self.post_json_authed(
                "/api/v1/concerts",
                admin,
                &json!({"title": "Aurora Live", "description": "Stadium tour"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let id = concert["id"].as_str().unwrap().to_owned();
        let starts_at = (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
        let schedule = expect_status(
            self.post_json_authed(
                &format!("/api/v1/concerts/{id}/schedules"),
                admin,
                &json!({"starts_at": starts_at}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        (id, schedule["id"].as_str().unwrap().to_owned())
    }

    /// Requests seats for a schedule; returns the job id.
    pub async fn request_seats(&self, admin: &str, schedule: &str, mode: &str, sections: Value) -> String {
        let response = self
            .post_json_authed(
                &format!("/api/v1/schedules/{schedule}/seats?mode={mode}"),
                admin,
                &json!({"sections": sections}),
            )
            .await;
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = expect_status(response, StatusCode::ACCEPTED).await;
        let job = body["job_id"].as_str().unwrap().to_owned();
        assert_eq!(location, Some(format!("/api/v1/jobs/{job}")));
        assert_eq!(body["status"], "pending");
        job
    }

    /// Creates seats inline (`?mode=inline`) and waits until the job is done.
    pub async fn add_seats(&self, admin: &str, schedule: &str, sections: Value) {
        let job = self.request_seats(admin, schedule, "inline", sections).await;
        eventually("the seats exist", std::time::Duration::from_secs(30), || async {
            self.job(&job).await["status"] == "done"
        })
        .await;
    }

    pub async fn job(&self, id: &str) -> Value {
        expect_status(self.get(&format!("/api/v1/jobs/{id}")).await, StatusCode::OK).await
    }

    /// Runs the seat-creation role in this process until its stream is drained.
    pub async fn run_seat_worker(&self) {
        self.drain_role(
            imticket::events::Stream::SeatCreation,
            imticket::worker::handlers::SeatCreationHandler::new,
        )
        .await;
    }

    /// Runs one stream's role (its handler made from this deployment's dependencies) in this
    /// process until the stream is drained.
    pub async fn drain_role<H: imticket::stream::Handler>(
        &self,
        stream: imticket::events::Stream,
        handler: impl FnOnce(imticket::app::Deps) -> H,
    ) {
        let deps = imticket::root::deps(config_from(&self.env)).unwrap();
        let streams = imticket::root::stream_runtime(&deps);
        let mut settings = streams.settings().clone();
        settings.block = std::time::Duration::from_millis(20);
        let streams = streams.with_settings(settings);
        for subscription in imticket::stream::Subscription::each_partition(&deps.keys, stream, handler(deps.clone())) {
            let mut consumer = streams.consumer(subscription);
            while !consumer.process_batch().await.unwrap().is_idle() {}
        }
    }

    /// Waits (up to 20 s) until every committed outbox row is on its stream: the API hands its
    /// events to a batching publisher that XADDs them a moment after the answer.
    pub async fn every_event_published(&self) {
        eventually(
            "every outbox event is on its stream",
            std::time::Duration::from_secs(20),
            || async {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    .fetch_one(&self.db)
                    .await
                    .unwrap()
                    == 0
            },
        )
        .await;
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

/// Asserts the status (showing the body when it differs) and returns the JSON body.
/// A response the server shed (503 `overloaded`) as `Err(its Retry-After)`, for clients that
/// send again as they are told; any other response as it is.
pub async fn shed(response: Response) -> Result<Response, std::time::Duration> {
    let overloaded = response.status() == StatusCode::SERVICE_UNAVAILABLE
        && response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/problem+json");
    if !overloaded {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let problem: Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(problem["code"], "overloaded", "unexpected {status}: {body}");
    Err(std::time::Duration::from_secs(
        retry_after.expect("a shed request says when to retry"),
    ))
}

pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Asserts an RFC 9457 problem response with the given status and code; returns it.
pub async fn expect_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let problem = expect_status(response, status).await;
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{problem}");
    assert_eq!(problem["code"], code, "{problem}");
    assert_eq!(problem["status"], status.as_u16(), "{problem}");
    assert_eq!(problem["type"], format!("urn:imticket:problem:{code}"), "{problem}");
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()), "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
    problem
}

/// Polls `check` until it returns true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, timeout: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sends a signal (`TERM`, `INT`, `KILL`) to a child process.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {}", child.id());
}

/// Waits for a child to exit; kills it and fails the test after `timeout`.
pub fn wait_exit(child: &mut std::process::Child, timeout: std::time::Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts `cmd` (a binary whose listen address variable the caller set to `127.0.0.1:0`) with
/// JSON logs to `log_path`, and returns it with the port it bound, read from its "listening"
/// log line. Picking a "free" port beforehand would race with other tests running in parallel.
pub fn spawn_listening(mut cmd: std::process::Command, log_path: &std::path::Path) -> (KillOnDrop, u16) {
    let log = std::fs::File::create(log_path).unwrap();
    let child = cmd
        .env("IMTICKET_LOG_FORMAT", "json")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log_path).unwrap_or_default();
        let port = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|line| {
                let fields = &line["fields"];
                let listening = fields["message"].as_str().is_some_and(|m| m.contains("listening"));
                let addr: std::net::SocketAddr = fields["addr"].as_str()?.parse().ok()?;
                listening.then_some(addr.port())
            });
        if let Some(port) = port {
            return (child, port);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the process exited ({status}) before listening:\n{text}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the process did not start listening:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A child process killed (and reaped) when dropped, so a failing test never leaves a
/// process of ours running.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A command for one of our binaries with exactly `env` (plus PATH) as its environment.
pub fn binary_command(binary: &str, env: &HashMap<String, String>) -> std::process::Command {
    let mut cmd = std::process::Command::new(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env);
    cmd
}

/// Logs in against an API at `base` (a spawned binary) and returns the access token.
pub async fn login_token(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let body: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Starts counting this test database's statements (`pg_stat_statements`, which the harness's
/// PostgreSQL preloads).
pub async fn count_statements(db: &PgPool) {
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(db)
        .await
        .unwrap();
}

/// How many times this test database ran a top-level statement whose text is `LIKE pattern`.
pub async fn statement_calls(db: &PgPool, pattern: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query LIKE $1",
    )
    .bind(pattern)
    .fetch_one(db)
    .await
    .unwrap()
}
