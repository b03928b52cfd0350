//! The dashboard and the alert rules (scripts/observability/) name only metrics the binaries
//! export: a real API and a real worker process (all roles) serve a small sale — seats created
//! by the worker, fans admitted, holds won, lost and refused, a payment refused and one made and
//! confirmed, an idempotent replay and conflict, a hold and an active slot expired, notices
//! failing to reach a webhook endpoint and an SMTP server that are down — and the union of their
//! `/metrics` must contain every series name the dashboard and rules use.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::servers::Redis;

const API: &str = env!("CARGO_BIN_EXE_imticket-api");
const WORKER: &str = env!("CARGO_BIN_EXE_imticket-worker");
const DASHBOARD: &str = include_str!("../../scripts/observability/grafana/dashboards/imticket.json");
const ALERTS: &str = include_str!("../../scripts/observability/alerts.yml");
const FANOUT_DASHBOARD: &str = include_str!("../../scripts/observability/grafana/dashboards/fanout.json");
const FANOUT_ALERTS: &str = include_str!("../../scripts/observability/alerts-fanout.yml");

/// PromQL words that are not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
];

/// The metric names a PromQL expression reads: identifiers left once string literals, label
/// matchers, range selectors and grouping clauses are removed, that are neither a function
/// call nor a keyword.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut cleaned = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            _ => cleaned.push(c),
        }
        if matches!(c, '{' | '}' | '[' | ']' | '"') {
            cleaned.push(' ');
        }
    }
    // `by (a, b)`, `on (instance)`: label names, not metrics.
    let grouping = without_grouping(&cleaned);
    let mut names = BTreeSet::new();
    let chars: Vec<char> = grouping.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let called = next == Some(&'(');
            if !called && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else if chars[i].is_ascii_digit() {
            // A number or a duration (`10m`, `1e3`): skipped whole.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Removes `by (…)`, `without (…)`, `on (…)`, `ignoring (…)` and `group_left/right (…)`.
fn without_grouping(expr: &str) -> String {
    let mut out = expr.to_owned();
    for keyword in ["by", "without", "on", "ignoring", "group_left", "group_right"] {
        while let Some(at) = find_word_then_paren(&out, keyword) {
            let open = out[at..].find('(').map(|p| at + p).unwrap_or(at);
            let close = out[open..].find(')').map(|p| open + p + 1).unwrap_or(out.len());
            out.replace_range(at..close, " ");
        }
    }
    out
}

fn find_word_then_paren(expr: &str, word: &str) -> Option<usize> {
    let bytes = expr.as_bytes();
    let mut from = 0;
    while let Some(p) = expr[from..].find(word) {
        let at = from + p;
        let before_ok = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let rest = expr[at + word.len()..].trim_start();
        if before_ok && rest.starts_with('(') {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn dashboard_and_rule_names() -> BTreeSet<String> {
    let mut exprs: Vec<String> = Vec::new();
    for dashboard in [DASHBOARD, FANOUT_DASHBOARD] {
        let dashboard: Value = serde_json::from_str(dashboard).unwrap();
        exprs.extend(
            dashboard["panels"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
                .map(|t| t["expr"].as_str().unwrap().to_owned()),
        );
    }
    for rules in [ALERTS, FANOUT_ALERTS] {
        exprs.extend(
            rules
                .lines()
                .filter_map(|l| l.trim().strip_prefix("expr:"))
                .map(str::to_owned),
        );
    }
    assert!(exprs.len() > 30, "expressions found: {}", exprs.len());
    exprs.iter().flat_map(|e| metric_names(e)).collect()
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = metric_names(
        r#"sum by (instance) (db_pool_connections{state="busy"}) / on (instance) max by (instance) (db_pool_max_connections) > 0.9"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["db_pool_connections".to_owned(), "db_pool_max_connections".to_owned()])
    );
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m]))) > 3"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["http_request_duration_seconds_bucket".to_owned()])
    );
    let names = metric_names(r#"max(stream_dead_letter_length) - max(stream_dead_letter_length offset 10m) > 0"#);
    assert_eq!(names, BTreeSet::from(["stream_dead_letter_length".to_owned()]));
    let names = metric_names(r#"absent(worker_role_up{role="payment"} == 1)"#);
    assert_eq!(names, BTreeSet::from(["worker_role_up".to_owned()]));
}

/// Series names in a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

struct Site {
    base: String,
    client: reqwest::Client,
}

impl Site {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Value,
    ) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, headers, Some(body)).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None, &[], None).await
    }

    async fn fan(&self, email: &str) -> String {
        let password = "correct-horse-battery";
        let (status, _) = self
            .post(
                "/api/v1/auth/signup",
                None,
                &[],
                json!({"email": email, "password": password, "name": "Fan"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        login_token(&self.client, &self.base, email, password).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exported_by_a_running_system() {
    let wanted = dashboard_and_rule_names();
    let redis = Redis::start();
    let mut env: HashMap<String, String> = test_env(&redis).await;
    // Holds and active slots end 5 s after they start: one of each is left to expire.
    env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "5".into());
    env.insert("IMTICKET_QUEUE_ACTIVE_TTL_SECONDS".into(), "5".into());
    env.insert("IMTICKET_MAX_SEATS_PER_USER".into(), "1".into());
    env.insert("IMTICKET_STREAM_MAINTENANCE_SECONDS".into(), "1".into());
    // The notification channels fail (nothing listens on either port): their metrics appear.
    env.insert("IMTICKET_WEBHOOK_ALLOW_PRIVATE".into(), "true".into());
    env.insert("IMTICKET_SMTP_URL".into(), "smtp://127.0.0.1:9".into());
    let (_api, api_port) = spawn_listening(binary_command(API, &env), &redis.dir().join("api.log"));
    let mut worker_cmd = binary_command(WORKER, &env);
    worker_cmd.arg("all");
    let (_worker, worker_port) = spawn_listening(worker_cmd, &redis.dir().join("worker.log"));
    let site = Site {
        base: format!("http://127.0.0.1:{api_port}"),
        client: reqwest::Client::new(),
    };

    // The catalog: seats created by the worker's seat-creation role.
    let admin = login_token(&site.client, &site.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, concert) = site
        .post("/api/v1/concerts", Some(&admin), &[], json!({"title": "Metrics"}))
        .await;
    let concert = concert["id"].as_str().unwrap().to_owned();
    let (status, hook) = site
        .post(
            "/api/v1/admin/webhooks",
            Some(&admin),
            &[],
            json!({"url": "http://127.0.0.1:9/down", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let starts = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (_, schedule) = site
        .post(
            &format!("/api/v1/concerts/{concert}/schedules"),
            Some(&admin),
            &[],
            json!({"starts_at": starts}),
        )
        .await;
    let schedule = schedule["id"].as_str().unwrap().to_owned();
    let (status, job) = site
        .post(
            &format!("/api/v1/schedules/{schedule}/seats"),
            Some(&admin),
            &[],
            json!({"sections": [{"name": "A", "rows": 1, "seats_per_row": 5, "price": 100}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = job["job_id"].as_str().unwrap().to_owned();
    eventually("the worker creates the seats", Duration::from_secs(30), || async {
        site.get(&format!("/api/v1/jobs/{job}")).await.1["status"] == "done"
    })
    .await;
    for _ in 0..2 {
        assert_eq!(site.get(&format!("/api/v1/concerts/{concert}")).await.0, StatusCode::OK);
    }
    let (_, map) = site.get(&format!("/api/v1/schedules/{schedule}/seats")).await;
    let seats: Vec<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();

    // Two fans in the line; holds won, lost at the gate and refused by the cap.
    let one = site.fan("one@example.com").await;
    let two = site.fan("two@example.com").await;
    let mut queue = Vec::new();
    for token in [&one, &two] {
        let (status, joined) = site
            .post(
                &format!("/api/v1/concerts/{concert}/queue"),
                Some(token),
                &[],
                json!({}),
            )
            .await;
        assert_eq!(
            (status, joined["status"].as_str()),
            (StatusCode::OK, Some("active")),
            "{joined}"
        );
        queue.push(joined["queue_token"].as_str().unwrap().to_owned());
    }
    let hold = |token: &str, queue: &str, seat: &str| {
        let body = json!({"schedule_id": schedule, "seat_ids": [seat]});
        let (token, queue) = (token.to_owned(), queue.to_owned());
        let site = &site;
        async move {
            site.post("/api/v1/reservations", Some(&token), &[("x-queue-token", &queue)], body)
                .await
        }
    };
    let (status, held) = hold(&one, &queue[0], &seats[0]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let reservation = held["id"].as_str().unwrap().to_owned();
    assert_eq!(hold(&two, &queue[1], &seats[0]).await.0, StatusCode::CONFLICT);
    assert_eq!(hold(&one, &queue[0], &seats[1]).await.1["code"], "seat_limit_reached");

    // A payment refused, a charge replayed and one reused with another body, a payment made.
    let pay = |key: &'static str| {
        let path = format!("/api/v1/reservations/{reservation}/payments");
        let (site, one, queue) = (&site, one.clone(), queue[0].clone());
        async move {
            site.post(
                &path,
                Some(&one),
                &[("x-queue-token", &queue), ("idempotency-key", key)],
                json!({}),
            )
            .await
        }
    };
    assert_eq!(pay("pay-1").await.1["code"], "insufficient_points");
    for (amount, expected) in [
        (1000, StatusCode::OK),
        (1000, StatusCode::OK),
        (5, StatusCode::CONFLICT),
    ] {
        let (status, body) = site
            .post(
                "/api/v1/users/me/points/charge",
                Some(&one),
                &[("idempotency-key", "charge-1")],
                json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    let (status, paid) = pay("pay-2").await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");

    // A hold left to expire, released by the expiry roles; fan two's active slot expires too.
    let (status, _) = hold(&two, &queue[1], &seats[2]).await;
    assert_eq!(status, StatusCode::CREATED);

    let scrape = |port: u16| {
        let client = site.client.clone();
        async move {
            let text = client
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            exported(&text)
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut have = scrape(api_port).await;
        have.extend(scrape(worker_port).await);
        let missing: Vec<&String> = wanted.iter().filter(|n| !have.contains(*n)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "named in the dashboard or the alert rules but exported by neither process: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The flow really happened (the names are not there by accident).
    let (_, mine) = site
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/reservations/{reservation}"),
            Some(&one),
            &[],
            None,
        )
        .await;
    assert_eq!(mine["status"], "confirmed", "{mine}");
}
