//! Bulk seat creation across crashes of real processes (`kill -9`): the stream mode survives
//! them, the inline comparison mode does not.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::servers::Redis;

const API: &str = env!("CARGO_BIN_EXE_imticket-api");
const WORKER: &str = env!("CARGO_BIN_EXE_imticket-worker");

fn spawn_worker(env: &std::collections::HashMap<String, String>, log: &std::path::Path) -> KillOnDrop {
    let mut cmd = binary_command(WORKER, env);
    cmd.arg("seat-creation");
    spawn_listening(cmd, log).0
}

/// 200,000 seats: the largest request, long enough to be caught mid-way.
fn big_layout() -> Value {
    json!([{"name": "Arena", "rows": 400, "seats_per_row": 500, "price": 12000}])
}

async fn job(db: &sqlx::PgPool, id: &str) -> (String, i32, i32) {
    sqlx::query_as("SELECT status, done, total FROM jobs WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn seats_of(db: &sqlx::PgPool, schedule: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM seats WHERE schedule_id = $1::uuid")
        .bind(schedule)
        .fetch_one(db)
        .await
        .unwrap()
}

struct RemoteApi {
    base: String,
    client: reqwest::Client,
}

impl RemoteApi {
    async fn admin_token(&self) -> String {
        login_token(&self.client, &self.base, ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn schedule(&self, token: &str) -> String {
        let concert = self
            .post(token, "/api/v1/concerts", json!({"title": "Crash Test Live"}))
            .await;
        let starts_at = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
        let schedule = self
            .post(
                token,
                &format!("/api/v1/concerts/{}/schedules", concert["id"].as_str().unwrap()),
                json!({"starts_at": starts_at}),
            )
            .await;
        schedule["id"].as_str().unwrap().to_owned()
    }

    async fn request(&self, token: &str, schedule: &str, mode: &str) -> String {
        let accepted = self
            .post(
                token,
                &format!("/api/v1/schedules/{schedule}/seats?mode={mode}"),
                json!({"sections": big_layout()}),
            )
            .await;
        accepted["job_id"].as_str().unwrap().to_owned()
    }
}

/// The comparison of docs/seat-creation.md: kill -9 the API while both kinds of job are in
/// progress. After a restart the inline job stays where it was; the stream job is finished by
/// a worker although the API that accepted it died.
#[tokio::test]
async fn killing_the_api_strands_an_inline_job_but_not_a_stream_job() {
    let redis = Redis::start();
    let env = test_env(&redis).await;
    let db = crate::servers::direct_pool(&env["DATABASE_URL"]).await;
    let (mut api, port) = spawn_listening(binary_command(API, &env), &redis.dir().join("api-1.log"));
    let remote = RemoteApi {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };
    let token = remote.admin_token().await;
    let (inline_schedule, stream_schedule) = (remote.schedule(&token).await, remote.schedule(&token).await);

    let stream_job = remote.request(&token, &stream_schedule, "stream").await;
    let inline_job = remote.request(&token, &inline_schedule, "inline").await;
    eventually("the inline job is under way", Duration::from_secs(60), || async {
        job(&db, &inline_job).await.1 > 0
    })
    .await;
    signal(&api, "KILL");
    api.wait().unwrap();
    let (status, done_at_crash, total) = job(&db, &inline_job).await;
    assert_eq!(status, "running");
    assert!(
        done_at_crash < total,
        "the crash interrupted the inline job ({done_at_crash}/{total})"
    );

    // Restart the API and run a worker: the stream job completes, the inline one never moves.
    let (_api, _) = spawn_listening(binary_command(API, &env), &redis.dir().join("api-2.log"));
    let _worker = spawn_worker(&env, &redis.dir().join("worker.log"));
    eventually(
        "the stream job is completed by the worker",
        Duration::from_secs(180),
        || async { job(&db, &stream_job).await.0 == "done" },
    )
    .await;
    assert_eq!(seats_of(&db, &stream_schedule).await, 200_000);
    assert_eq!(
        job(&db, &inline_job).await,
        ("running".to_owned(), done_at_crash, total),
        "nobody resumes an inline job"
    );
    assert_eq!(
        seats_of(&db, &inline_schedule).await,
        i64::from(done_at_crash),
        "the inline job stopped where it was killed"
    );
    eprintln!(
        "evidence: inline job {done_at_crash}/{total} seats at the kill and after the restart; stream job {}/{total} seats, done, by a worker",
        seats_of(&db, &stream_schedule).await
    );
}

/// A worker dies mid-job; a survivor resumes from the last committed chunk without
/// duplicates.
#[tokio::test]
async fn a_survivor_finishes_a_job_whose_worker_was_killed() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_STREAM_CLAIM_IDLE_MS".into(), "500".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let job_id = app.request_seats(&admin, &schedule, "stream", big_layout()).await;

    let first = spawn_worker(&app.env, &app.redis.dir().join("worker-1.log"));
    eventually("the first worker is under way", Duration::from_secs(60), || async {
        job(&app.db, &job_id).await.1 > 0
    })
    .await;
    signal(&first, "KILL");
    drop(first);
    let (status, done_at_crash, _) = job(&app.db, &job_id).await;
    assert_eq!(status, "running", "killed mid-job");

    let _survivor = spawn_worker(&app.env, &app.redis.dir().join("worker-2.log"));
    eventually("the survivor finishes the job", Duration::from_secs(180), || async {
        job(&app.db, &job_id).await.0 == "done"
    })
    .await;
    let (_, done, total) = job(&app.db, &job_id).await;
    assert_eq!((done, total), (200_000, 200_000));
    assert!(done_at_crash < total);
    assert_eq!(
        seats_of(&app.db, &schedule).await,
        200_000,
        "no seat twice, none missing"
    );
    let (inventory,): (i32,) =
        sqlx::query_as("SELECT total_seats FROM schedule_inventory WHERE schedule_id = $1::uuid")
            .bind(&schedule)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(inventory, 200_000);
    let details = expect_status(app.get(&format!("/api/v1/concerts/{concert}")).await, StatusCode::OK).await;
    assert_eq!(details["schedules"][0]["available_seats"], 200_000);
}
