//! Several API processes behind a real HAProxy (the project's `scripts/haproxy/` configuration):
//! an API that gets SIGTERM drains — `/health/ready` answers 503 `draining` while it still
//! serves — so the balancer takes it out before it stops, and no request fails; and behind the
//! balancer each fan is rate-limited by their own address.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::haproxy::Haproxy;
use crate::helpers::*;
use crate::servers::Redis;

const API: &str = env!("CARGO_BIN_EXE_imticket-api");

fn local(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// What the clients saw: answers that were what they asked for, and everything else.
#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Seen {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// One client of `clients` concurrent ones, until `stop`: catalog reads, and every fourth
/// request a points charge (a POST with a key) by `fan`.
async fn keep_sending(client: reqwest::Client, lb: String, fan: String, seen: Arc<Seen>, stop: CancellationToken) {
    let mut n = 0u64;
    while !stop.is_cancelled() {
        n += 1;
        let request = if n.is_multiple_of(4) {
            client
                .post(format!("{lb}/api/v1/users/me/points/charge"))
                .bearer_auth(&fan)
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&json!({"amount": 1}))
        } else {
            client.get(format!("{lb}/api/v1/concerts"))
        };
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(_) if status.is_success() => {
                        seen.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(body) => seen.fail(format!("{status} {}", String::from_utf8_lossy(&body))),
                    Err(err) => seen.fail(format!("{status}, then the body failed: {err}")),
                }
            }
            Err(err) => seen.fail(format!("{err:?}")),
        }
    }
}

/// Two real API processes behind HAProxy under 200 concurrent clients; one gets SIGTERM. It
/// answers 503 `draining` on `/health/ready` while it still serves, HAProxy takes it out before
/// it stops accepting, it exits 0, and not one request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigtermed_api_drains_out_of_haproxy_and_no_request_fails() {
    // Longer than the default 5 s: HAProxy's two checks a second take up to 3 s on a loaded
    // machine (docs/RELIABILITY.md), and a test machine runs the other tests beside this one.
    const DRAIN: Duration = Duration::from_secs(8);
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    env.insert("IMTICKET_HTTP_DRAIN_SECONDS".into(), DRAIN.as_secs().to_string());
    env.insert("IMTICKET_TRUSTED_PROXIES".into(), "127.0.0.1/32".into());
    // What is under test is the balancer, not the pool: on a loaded machine the charges of
    // one survivor may queue for a pooled connection longer than the default 5 s.
    env.insert("IMTICKET_DB_ACQUIRE_TIMEOUT_MS".into(), "30000".into());
    let first_log = redis.dir().join("api-1.log");
    let (mut first, first_port) = spawn_listening(binary_command(API, &env), &first_log);
    let (_second, second_port) = spawn_listening(binary_command(API, &env), &redis.dir().join("api-2.log"));
    let lb = Haproxy::start(&[local(first_port), local(second_port)]);
    for server in ["api1", "api2"] {
        lb.wait_for(server, "UP", Duration::from_secs(30)).await;
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Ten fans, so the charges of 200 clients do not all queue on one wallet's row.
    let mut fans = Vec::new();
    for _ in 0..10 {
        let email = format!("fan-{}@example.com", uuid::Uuid::new_v4().simple());
        let signup = client
            .post(lb.url("/api/v1/auth/signup"))
            .json(&json!({"email": email, "password": "correct-horse-battery", "name": "Fan"}))
            .send()
            .await
            .unwrap();
        assert_eq!(signup.status(), StatusCode::CREATED);
        fans.push(login_token(&client, &lb.url(""), &email, "correct-horse-battery").await);
    }

    let seen = Arc::new(Seen::default());
    let stop = CancellationToken::new();
    let clients: Vec<_> = (0..200)
        .map(|n| {
            tokio::spawn(keep_sending(
                client.clone(),
                lb.url(""),
                fans[n % fans.len()].clone(),
                seen.clone(),
                stop.clone(),
            ))
        })
        .collect();
    eventually("the load flows through both APIs", Duration::from_secs(60), || async {
        let served = |s: Option<std::collections::HashMap<String, String>>| {
            s.and_then(|s| s.get("stot")?.parse::<u64>().ok()).unwrap_or(0)
        };
        served(lb.server_stats("api1").await) > 100 && served(lb.server_stats("api2").await) > 100
    })
    .await;

    // SIGTERM the first API; watch its own readiness and HAProxy's view of it until it exits.
    let sigterm = Instant::now();
    signal(&first, "TERM");
    let direct = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (mut draining_seen, mut ready_after_draining, mut out_of_rotation) = (None, false, None);
    let exit = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        assert!(
            sigterm.elapsed() < Duration::from_secs(40),
            "the API did not exit; its log:\n{}",
            std::fs::read_to_string(&first_log).unwrap_or_default()
        );
        if let Ok(response) = direct
            .get(format!("http://{}/health/ready", local(first_port)))
            .send()
            .await
        {
            let status = response.status();
            let problem: serde_json::Value = response.json().await.unwrap_or_default();
            if status == StatusCode::SERVICE_UNAVAILABLE && problem["code"] == "draining" {
                draining_seen.get_or_insert(sigterm.elapsed());
            } else if status == StatusCode::OK && draining_seen.is_some() {
                ready_after_draining = true;
            }
        }
        if out_of_rotation.is_none() && lb.state("api1").await.as_deref() == Some("DOWN") {
            out_of_rotation = Some(sigterm.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let exited = sigterm.elapsed();
    assert_eq!(exit.code(), Some(0), "the drained API exits 0");
    let draining_seen = draining_seen.expect("/health/ready answered 503 draining during the drain");
    assert!(
        !ready_after_draining,
        "once draining, readiness never answers 200 again"
    );
    let out_of_rotation = out_of_rotation.expect("HAProxy took the draining API out");
    assert!(
        out_of_rotation < DRAIN,
        "HAProxy took it out ({out_of_rotation:?} after SIGTERM) before it stopped accepting ({DRAIN:?})"
    );
    assert!(
        exited >= DRAIN,
        "it kept serving for the whole drain: exited after {exited:?}"
    );

    // The load goes on against the survivor; then every answer is counted.
    let at_exit = seen.ok.load(Ordering::Relaxed);
    eventually("the survivor serves on", Duration::from_secs(30), || async {
        seen.ok.load(Ordering::Relaxed) > at_exit + 500
    })
    .await;
    stop.cancel();
    for client in clients {
        client.await.unwrap();
    }
    let failures = seen.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed, the first: {:?} (readiness said draining {draining_seen:?} after \
         SIGTERM, HAProxy had it out after {out_of_rotation:?}, it exited after {exited:?}); HAProxy's log:\n{}",
        failures.len(),
        failures.len() + seen.ok.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)],
        lb.log()
    );
    let drained = lb.server_stats("api1").await.unwrap();
    assert_eq!(drained["hrsp_5xx"], "0", "{drained:?}");
    assert!(draining_seen < exited);
}

/// After SIGTERM the API keeps serving every route, writes included, while `/health/ready`
/// answers 503 `draining`; asked again, it stops without waiting for the rest of the drain.
#[tokio::test]
async fn after_sigterm_readiness_is_503_draining_while_every_other_route_answers() {
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    env.insert("IMTICKET_HTTP_DRAIN_SECONDS".into(), "60".into());
    let log_path = redis.dir().join("api.log");
    let (mut api, port) = spawn_listening(binary_command(API, &env), &log_path);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = || client.get(format!("{base}/health/ready")).send();
    assert_eq!(ready().await.unwrap().status(), StatusCode::OK);

    signal(&api, "TERM");
    eventually("readiness says draining", Duration::from_secs(10), || async {
        ready()
            .await
            .is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    let response = ready().await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("5".to_owned())
    );
    let problem = expect_problem(response, StatusCode::SERVICE_UNAVAILABLE, "draining").await;
    assert!(problem["detail"].as_str().unwrap().contains("stopping"), "{problem}");

    assert_eq!(
        client.get(format!("{base}/health/live")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(format!("{base}/api/v1/concerts"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let signup = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "draining@example.com", "password": "correct-horse", "name": "Late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED, "a write during the drain");
    assert!(api.try_wait().unwrap().is_none(), "still running during the drain");

    // A second SIGTERM cuts the 60 s drain short.
    signal(&api, "TERM");
    assert_eq!(wait_exit(&mut api, Duration::from_secs(20)).code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("draining: /health/ready answers 503"), "{log}");
    assert!(log.contains("drain cut short"), "{log}");
}

/// Ctrl-C (SIGINT) is an operator at a terminal: no drain, the API stops at once (in-flight
/// requests still finish) and exits 0.
#[tokio::test]
async fn sigint_stops_without_draining() {
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    env.insert("IMTICKET_HTTP_DRAIN_SECONDS".into(), "60".into());
    let log_path = redis.dir().join("api.log");
    let (mut api, _port) = spawn_listening(binary_command(API, &env), &log_path);
    signal(&api, "INT");
    assert_eq!(wait_exit(&mut api, Duration::from_secs(20)).code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains("draining:"), "{log}");
    assert!(log.contains("HTTP API stopped"), "{log}");
}

/// Behind HAProxy (trusted: `IMTICKET_TRUSTED_PROXIES` is the address it connects from), the
/// per-IP limit counts each fan's own address, and an `X-Forwarded-For` a fan writes itself
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_each_fan_is_limited_by_their_own_address() {
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    let balancer: IpAddr = [127, 0, 0, 2].into();
    env.insert("IMTICKET_RATE_LIMITS".into(), "on".into());
    env.insert("IMTICKET_RATE_LIMIT_IP_ALL".into(), "3/60".into());
    env.insert("IMTICKET_TRUSTED_PROXIES".into(), format!("{balancer}/32"));
    let (_api, port) = spawn_listening(binary_command(API, &env), &redis.dir().join("api.log"));
    let lb = Haproxy::start_from(&[local(port)], Some(balancer));
    lb.wait_for("api1", "UP", Duration::from_secs(30)).await;

    let fan_at = |last: u8| {
        reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    };
    let (first_fan, second_fan) = (fan_at(3), fan_at(4));
    let concerts = lb.url("/api/v1/concerts");
    for _ in 0..3 {
        assert_eq!(first_fan.get(&concerts).send().await.unwrap().status(), StatusCode::OK);
    }
    expect_problem(
        first_fan.get(&concerts).send().await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let forged = first_fan
        .get(&concerts)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a fan's own X-Forwarded-For is not believed"
    );
    assert_eq!(
        second_fan.get(&concerts).send().await.unwrap().status(),
        StatusCode::OK,
        "another fan behind the same balancer has a limit of their own"
    );
}

/// When no API passes its check (here: Redis is down for all of them), HAProxy does not turn
/// that into an outage of its own: it still forwards, so what works without Redis (catalog
/// reads) keeps working and the rest is refused by the API itself, as problem+json.
#[tokio::test]
async fn with_every_api_unready_haproxy_still_forwards_and_the_api_answers() {
    let mut redis = Redis::start();
    let env = test_env(&redis).await;
    let (_api, port) = spawn_listening(binary_command(API, &env), &redis.dir().join("api.log"));
    let lb = Haproxy::start(&[local(port)]);
    lb.wait_for("api1", "UP", Duration::from_secs(30)).await;

    redis.kill();
    lb.wait_for("api1", "DOWN", Duration::from_secs(30)).await;
    let client = reqwest::Client::new();
    let concerts = client.get(lb.url("/api/v1/concerts")).send().await.unwrap();
    assert_eq!(concerts.status(), StatusCode::OK, "catalog reads work without Redis");
    expect_problem(
        client.get(lb.url("/health/ready")).send().await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
}
