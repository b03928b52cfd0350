//! Rate limits, with the limits on: shared by API instances through Redis, per account for
//! failed logins (also while Redis is down), per IP with `X-Forwarded-For` believed only from
//! a trusted proxy, the IETF headers, and honest fans never limited.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::holds::{charge, fans, hold, pay, sale};

fn limits_on(env: &mut std::collections::HashMap<String, String>) {
    env.insert("IMTICKET_RATE_LIMITS".into(), "on".into());
    // Every request of a test comes from 127.0.0.1.
    env.insert("IMTICKET_RATE_LIMIT_IP_ALL".into(), "off".into());
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// 200 concurrent charges by one user, sent half to each of two API instances: the limit is
/// one limit, not two, and every refused charge changed nothing.
#[tokio::test]
async fn two_instances_enforce_one_user_limit_under_real_concurrency() {
    let (app, concert, _, _) = sale(|env| {
        limits_on(env);
        env.insert("IMTICKET_RATE_LIMIT_USER_WRITES".into(), "20/60".into());
    })
    .await;
    // The join made by `fans` is the first of the user's writes.
    let fan = fans(&app, &concert, 1).await.remove(0);
    let (second, _guard) = app.another_instance().await;
    let sends = (0..200).map(|i| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        let (client, access) = (app.client.clone(), fan.access.clone());
        async move {
            let response = client
                .post(format!("{base}/api/v1/users/me/points/charge"))
                .bearer_auth(&access)
                .header("idempotency-key", format!("charge-{i}"))
                .json(&json!({"amount": 1}))
                .send()
                .await
                .unwrap();
            let retry_after = header(&response, "retry-after").map(str::to_owned);
            (response.status(), retry_after)
        }
    });
    let answers = join_all(sends).await;
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (status, _) in &answers {
        *by_status.entry(status.as_u16()).or_default() += 1;
    }
    assert_eq!(
        by_status,
        BTreeMap::from([(200, 19), (429, 181)]),
        "20 writes per 60 s, the join included"
    );
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
            .all(|(_, retry)| retry
                .as_deref()
                .and_then(|r| r.parse::<u64>().ok())
                .is_some_and(|r| r >= 1)),
        "every 429 says when to come back"
    );
    let balance: i64 = sqlx::query_scalar("SELECT balance FROM wallets WHERE user_id = $1")
        .bind(fan.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(balance, 19, "only the allowed charges took effect");
    // Another user is not affected by this one's limit.
    let other = fans(&app, &concert, 1).await.remove(0);
    let (status, _) = charge(&app, &other, Some("k"), json!(5)).await;
    assert_eq!(status, StatusCode::OK);
}

/// Ten failed logins for one account within 15 minutes: the eleventh attempt is refused even
/// with the right password, from any address; another account is not affected. Redis down:
/// the count goes on in the process (logins never become unlimited).
#[tokio::test]
async fn failed_logins_lock_an_account_for_a_while_also_without_redis() {
    let mut app = spawn_app_with(|env| {
        limits_on(env);
        env.insert("IMTICKET_RATE_LIMIT_LOGIN_ACCOUNT".into(), "3/900".into());
    })
    .await;
    for email in ["victim@example.com", "bystander@example.com"] {
        assert_eq!(
            app.signup(email, "correct-horse", "V").await.status(),
            StatusCode::CREATED
        );
    }
    let ok = app.login("victim@example.com", "correct-horse").await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        header(&ok, "ratelimit-policy"),
        Some("\"login_ip\";q=30;w=60, \"login_account\";q=3;w=900"),
        "a limited route says its policies on success too"
    );
    assert!(header(&ok, "ratelimit").is_some_and(|v| v.starts_with("\"login_ip\";r=")));
    for _ in 0..3 {
        assert_eq!(
            app.login("victim@example.com", "wrong-guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = app.login("Victim@Example.com", "correct-horse").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&locked, "retry-after").is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    let problem: Value = locked.json().await.unwrap();
    assert_eq!(
        (problem["code"].as_str(), problem["policy"].as_str()),
        (Some("rate_limited"), Some("login_account"))
    );
    assert_eq!(
        app.login("bystander@example.com", "correct-horse").await.status(),
        StatusCode::OK
    );

    // Without Redis each instance counts by itself: still limited, never open.
    app.redis.stop();
    for _ in 0..3 {
        assert_eq!(
            app.login("bystander@example.com", "wrong-guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login("bystander@example.com", "correct-horse").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rate_limited_total{policy=\"login_account\"}")),
        "{metrics}"
    );
}

/// The per-IP limit counts the socket's peer; a made-up `X-Forwarded-For` from anyone but a
/// trusted proxy changes nothing. Behind a trusted proxy each forwarded client counts alone.
#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    async fn statuses(app: &TestApp) -> Vec<u16> {
        let mut out = Vec::new();
        for i in 0..8 {
            let response = app
                .client
                .get(app.url("/api/v1/concerts"))
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .send()
                .await
                .unwrap();
            out.push(response.status().as_u16());
        }
        out
    }
    let direct = spawn_app_with(|env| {
        env.insert("IMTICKET_RATE_LIMITS".into(), "on".into());
        env.insert("IMTICKET_RATE_LIMIT_IP_ALL".into(), "5/60".into());
    })
    .await;
    assert_eq!(statuses(&direct).await, [200, 200, 200, 200, 200, 429, 429, 429]);
    let health = direct.get("/health/live").await;
    assert_eq!(health.status(), StatusCode::OK, "health checks are never limited");

    let proxied = spawn_app_with(|env| {
        env.insert("IMTICKET_RATE_LIMITS".into(), "on".into());
        env.insert("IMTICKET_RATE_LIMIT_IP_ALL".into(), "5/60".into());
        env.insert("IMTICKET_TRUSTED_PROXIES".into(), "127.0.0.1/32".into());
    })
    .await;
    assert_eq!(statuses(&proxied).await, [200; 8], "eight clients, one request each");
}

/// An on-sale with the per-user limits on: every fan joins, polls as told, holds, tops up and
/// pays, all at once; nobody is limited.
#[tokio::test]
async fn honest_fans_are_never_limited() {
    let (app, concert, schedule, seats) = sale(limits_on).await;
    let crowd = fans(&app, &concert, 60).await;
    let journeys = crowd.iter().zip(&seats).map(|(fan, seat)| {
        let (app, schedule) = (&app, schedule.clone());
        async move {
            let mut statuses = Vec::new();
            let status = app
                .client
                .get(app.url("/api/v1/queue/status"))
                .header("x-queue-token", &fan.queue)
                .send()
                .await
                .unwrap();
            statuses.push(status.status());
            let (held, body) = hold(app, fan, &schedule, &[*seat]).await;
            statuses.push(held);
            let (charged, _) = charge(app, fan, Some(&Uuid::now_v7().to_string()), json!(1000)).await;
            statuses.push(charged);
            let reservation = body["id"].as_str().unwrap_or_default().to_owned();
            let (paid, _) = pay(app, fan, &reservation, "pay").await;
            statuses.push(paid);
            statuses
        }
    });
    let all: Vec<StatusCode> = join_all(journeys).await.into_iter().flatten().collect();
    assert_eq!(all.len(), 240);
    assert!(!all.contains(&StatusCode::TOO_MANY_REQUESTS), "{all:?}");
    assert!(
        all.iter().all(|s| s.is_success()),
        "every step of every fan succeeded: {all:?}"
    );
}
