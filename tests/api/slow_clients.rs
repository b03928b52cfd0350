//! Slow and greedy clients, and overload: trickling heads and bodies are cut off while everyone
//! else is served; past the in-flight limit requests are refused early (503 `overloaded`,
//! `Retry-After`) instead of queueing into dependency timeouts.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends `head` and then one more byte every 200 ms (a header or body that never ends) until
/// the server closes the connection; returns how long that took and what it answered.
async fn trickle(port: u16, head: &'static str, drip: &'static [u8]) -> (Duration, String) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    for byte in drip.iter().cycle() {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a trickling connection was kept open"
        );
    }
    (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickling_clients_are_cut_off_while_everyone_else_is_served() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_HTTP_HEADER_TIMEOUT_MS".into(), "1500".into());
        env.insert("IMTICKET_HTTP_BODY_TIMEOUT_MS".into(), "1500".into());
    })
    .await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let user = app.new_user().await;

    // 300 heads that never end, 100 bodies that never end.
    let heads = (0..300).map(|_| {
        tokio::spawn(trickle(
            port,
            "GET /api/v1/concerts HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            b"abcdefgh",
        ))
    });
    let bodies = (0..100).map(|_| {
        tokio::spawn(trickle(
            port,
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"email\": \"",
            b"aaaaaaaa",
        ))
    });
    let heads: Vec<_> = heads.collect();
    let bodies: Vec<_> = bodies.collect();

    // Meanwhile an honest client is answered, and quickly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let response = app.me(&user.token).await;
        assert_eq!(response.status(), StatusCode::OK);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "an honest request took {slowest:?}"
    );

    for head in join_all(heads).await {
        let (took, answer) = head.unwrap();
        assert!(
            took < Duration::from_secs(5),
            "a trickling head was cut off after {took:?}"
        );
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    for body in join_all(bodies).await {
        let (took, answer) = body.unwrap();
        assert!(
            took < Duration::from_secs(5),
            "a trickling body was cut off after {took:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("request_timeout") && answer.contains("application/problem+json"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_head_too_large_is_refused_with_431() {
    let app = spawn_app().await;
    let huge = "a".repeat(200 * 1024);
    let response = app
        .client
        .get(app.url("/api/v1/concerts"))
        .header("x-huge", huge)
        .send()
        .await;
    // The server answers 431 and closes; a client still sending may see the reset instead.
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    let mut many = app.client.get(app.url("/api/v1/concerts"));
    for n in 0..120 {
        many = many.header(format!("x-h{n}"), "1");
    }
    assert_eq!(
        many.send().await.unwrap().status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // And the server is fine.
    assert_eq!(app.get("/api/v1/concerts").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_in_flight_limit_requests_are_refused_early_with_retry_after() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_HTTP_MAX_IN_FLIGHT".into(), "4".into());
        env.insert("IMTICKET_HTTP_QUEUE_TIMEOUT_MS".into(), "300".into());
        env.insert("IMTICKET_REDIS_TIMEOUT_MS".into(), "5000".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 30).await;
    let path = format!("/api/v1/concerts/{concert}");
    // Redis stops answering for two seconds: whatever is in flight waits for it.
    let mut redis = redis::Client::open(app.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    let started = Instant::now();
    let answers = join_all((0..60).map(|_| async {
        let response = app.get(&path).await;
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        (
            status,
            retry_after,
            body["code"].as_str().map(str::to_owned),
            started.elapsed(),
        )
    }));
    // An overloaded instance still says how it is.
    let live = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let response = app.get("/health/live").await;
        (response.status(), started.elapsed())
    };
    let (answers, (live_status, live_took)) = tokio::join!(answers, live);
    assert_eq!(live_status, StatusCode::OK);
    assert!(
        live_took < Duration::from_millis(500),
        "/health/live took {live_took:?}"
    );

    let shed: Vec<_> = answers
        .iter()
        .filter(|a| a.0 == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    let served: Vec<_> = answers.iter().filter(|a| a.0 == StatusCode::OK).collect();
    assert_eq!(shed.len() + served.len(), 60, "{answers:?}");
    assert!(served.len() >= 4, "the requests in flight were served: {answers:?}");
    assert!(shed.len() >= 40, "most were shed: {answers:?}");
    for (_, retry_after, code, took) in shed {
        assert_eq!(code.as_deref(), Some("overloaded"));
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(
            *took < Duration::from_millis(1500),
            "shed early, not at a timeout: {took:?}"
        );
    }
}

/// The waiting room's requests have turns of their own: with every other turn held by holds
/// waiting for PostgreSQL (a table lock here, a full pool on the night), a fan's poll is
/// answered at once, while one more hold is refused early (503 `overloaded`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fans_poll_never_waits_behind_bookings_holding_every_turn() {
    use crate::holds::{fans, hold, sale};
    let (app, concert, schedule, seats) = sale(|env| {
        env.insert("IMTICKET_HTTP_MAX_IN_FLIGHT".into(), "4".into());
        env.insert("IMTICKET_HTTP_QUEUE_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let fans = fans(&app, &concert, 6).await;
    // Every seat update waits for this transaction.
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE seats IN EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let blocked = join_all((0..4).map(|i| hold(&app, &fans[i], &schedule, &seats[i..=i])));
    let meanwhile = async {
        eventually("four holds wait for the lock", Duration::from_secs(20), || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&app.db)
            .await
            .unwrap()
                == 4
        })
        .await;
        let started = Instant::now();
        let poll = app
            .client
            .get(app.url("/api/v1/queue/status"))
            .header("x-queue-token", &fans[4].queue)
            .send()
            .await
            .unwrap();
        let poll_took = started.elapsed();
        let poll_status = poll.status();
        let poll_body: serde_json::Value = poll.json().await.unwrap();
        let fifth = app
            .client
            .post(app.url("/api/v1/reservations"))
            .bearer_auth(&fans[5].access)
            .header("x-queue-token", &fans[5].queue)
            .json(&serde_json::json!({"schedule_id": schedule, "seat_ids": [seats[5]]}))
            .send()
            .await
            .unwrap();
        let fifth_status = fifth.status();
        let fifth_body: serde_json::Value = fifth.json().await.unwrap();
        blocker.commit().await.unwrap();
        (poll_status, poll_body, poll_took, fifth_status, fifth_body)
    };
    let (held, (poll_status, poll_body, poll_took, fifth_status, fifth_body)) = tokio::join!(blocked, meanwhile);
    assert_eq!(poll_status, StatusCode::OK, "{poll_body}");
    assert_eq!(poll_body["status"], "active", "{poll_body}");
    assert!(
        poll_took < Duration::from_millis(250),
        "the poll waited {poll_took:?}: behind the holds' turns"
    );
    assert_eq!(fifth_status, StatusCode::SERVICE_UNAVAILABLE, "{fifth_body}");
    assert_eq!(fifth_body["code"], "overloaded");
    for (status, body) in &held {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE status = 'held'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(live, 4, "the refused hold changed nothing");
}
