//! Security: forged, confused and expired tokens; queue tokens that are not the caller's active
//! entry; a user's token on the admin operations; one user reaching for another's reservation
//! or `Idempotency-Key`; hostile strings stored and returned verbatim; the security headers on
//! every kind of answer; and logs free of credentials at debug level.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::holds::{Fan, charge, fans, hold, pay, sale};

// ---------------------------------------------------------------------------------------------
// Hand-made tokens

/// base64url without padding (RFC 7515 §2), for the parts of hand-made tokens.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A JWT with any header and claims. `signed`: the HMAC of that algorithm under that key over
/// the first two parts, whatever the header says; `None`: no signature at all (`alg: none`).
fn jwt(header: &Value, claims: &Value, signed: Option<(&str, Algorithm)>) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match signed {
        Some((key, alg)) => {
            jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(key.as_bytes()), alg).unwrap()
        }
        None => String::new(),
    };
    format!("{message}.{signature}")
}

fn hs256_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of an access token the server would issue.
fn access_claims(sub: &str, role: &str) -> Value {
    let now = now();
    json!({"sub": sub, "role": role, "iat": now, "exp": now + 600, "iss": "imticket"})
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn without(mut claims: Value, claim: &str) -> Value {
    claims.as_object_mut().unwrap().remove(claim);
    claims
}

const OTHER_KEY: &str = "another-secret-that-is-long-enough-0123456789";

/// Asserts 401 `invalid_token` problem+json with `WWW-Authenticate: Bearer error="invalid_token"`.
async fn expect_invalid_token(response: reqwest::Response, why: &str) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {text}");
    assert_eq!(challenge.as_deref(), Some(r#"Bearer error="invalid_token""#), "{why}");
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["code"], "invalid_token", "{why}: {problem}");
    assert_eq!(problem["type"], "urn:imticket:problem:invalid_token", "{why}");
}

async fn send_authorization(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    authorization: HeaderValue,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .header("authorization", authorization)
        .json(&json!({"title": "Forged"}))
        .send()
        .await
        .unwrap()
}

/// Every way of making an access token the server did not issue is 401 `invalid_token`, both
/// where any user may go (`/users/me`) and on an admin write (the crafted tokens claim the
/// admin role): nothing is written. The same construction, signed as the server signs, is
/// accepted, so each refusal is the server's and not a broken test token.
#[tokio::test]
async fn access_tokens_the_server_did_not_issue_are_401_invalid_token() {
    let app = spawn_app().await;
    let secret = app.env["JWT_SECRET"].clone();
    let admin_id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(ADMIN_EMAIL)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let admin_id = admin_id.to_string();
    let user = app.new_user().await;
    let admin = access_claims(&admin_id, "admin");

    // Controls: hand-made as below, signed HS256 with the deployment's key.
    let genuine = jwt(&hs256_header(), &admin, Some((&secret, Algorithm::HS256)));
    expect_status(app.me(&genuine).await, StatusCode::OK).await;
    let created = expect_status(
        app.post_json_authed("/api/v1/concerts", &genuine, &json!({"title": "Control"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let concert = created["id"].as_str().unwrap().to_owned();
    // The documented 30 s of clock skew: just expired, or issued a moment "later", still passes.
    let skewed = jwt(
        &hs256_header(),
        &with(admin.clone(), json!({"iat": now() - 600, "exp": now() - 10})),
        Some((&secret, Algorithm::HS256)),
    );
    expect_status(app.me(&skewed).await, StatusCode::OK).await;
    let early = jwt(
        &hs256_header(),
        &with(admin.clone(), json!({"iat": now() + 10})),
        Some((&secret, Algorithm::HS256)),
    );
    expect_status(app.me(&early).await, StatusCode::OK).await;

    let joined = expect_status(
        app.post_json_authed(&format!("/api/v1/concerts/{concert}/queue"), &user.token, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let queue_token = joined["queue_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = user.token.split('.').collect();
    let right = Some((secret.as_str(), Algorithm::HS256));

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none, unsigned",
            jwt(&json!({"alg": "none", "typ": "JWT"}), &admin, None),
        ),
        ("alg None, unsigned", jwt(&json!({"alg": "None"}), &admin, None)),
        ("alg NONE, unsigned", jwt(&json!({"alg": "NONE"}), &admin, None)),
        (
            "alg none with a valid HS256 signature",
            jwt(&json!({"alg": "none"}), &admin, right),
        ),
        ("no alg, HS256 signature", jwt(&json!({"typ": "JWT"}), &admin, right)),
        ("alg hs256 (wrong case)", jwt(&json!({"alg": "hs256"}), &admin, right)),
        (
            "HS384 with the deployment's key",
            jwt(&json!({"alg": "HS384"}), &admin, Some((&secret, Algorithm::HS384))),
        ),
        (
            "HS512 with the deployment's key",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS512),
                &admin,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap(),
        ),
        (
            "labelled RS256, HMAC-signed with the key",
            jwt(&json!({"alg": "RS256"}), &admin, right),
        ),
        (
            "labelled ES256, HMAC-signed with the key",
            jwt(&json!({"alg": "ES256"}), &admin, right),
        ),
        (
            "signed with another key",
            jwt(&hs256_header(), &admin, Some((OTHER_KEY, Algorithm::HS256))),
        ),
        (
            "signed with an empty key",
            jwt(&hs256_header(), &admin, Some(("", Algorithm::HS256))),
        ),
        (
            "expired beyond the leeway",
            jwt(
                &hs256_header(),
                &with(admin.clone(), json!({"iat": now() - 3600, "exp": now() - 90})),
                right,
            ),
        ),
        (
            "not valid before an hour from now (nbf)",
            jwt(
                &hs256_header(),
                &with(admin.clone(), json!({"nbf": now() + 3600})),
                right,
            ),
        ),
        (
            "issued an hour from now (iat)",
            jwt(
                &hs256_header(),
                &with(admin.clone(), json!({"iat": now() + 3600, "exp": now() + 7200})),
                right,
            ),
        ),
        ("no exp", jwt(&hs256_header(), &without(admin.clone(), "exp"), right)),
        ("no iat", jwt(&hs256_header(), &without(admin.clone(), "iat"), right)),
        ("no sub", jwt(&hs256_header(), &without(admin.clone(), "sub"), right)),
        ("no iss", jwt(&hs256_header(), &without(admin.clone(), "iss"), right)),
        ("no role", jwt(&hs256_header(), &without(admin.clone(), "role"), right)),
        (
            "exp as a string",
            jwt(
                &hs256_header(),
                &with(admin.clone(), json!({"exp": "99999999999"})),
                right,
            ),
        ),
        (
            "another issuer",
            jwt(
                &hs256_header(),
                &with(admin.clone(), json!({"iss": "someone-else"})),
                right,
            ),
        ),
        (
            "the issuer in capitals",
            jwt(&hs256_header(), &with(admin.clone(), json!({"iss": "IMTICKET"})), right),
        ),
        (
            "an audience (the queue's)",
            jwt(&hs256_header(), &with(admin.clone(), json!({"aud": "queue"})), right),
        ),
        (
            "an audience (any)",
            jwt(&hs256_header(), &with(admin.clone(), json!({"aud": "imticket"})), right),
        ),
        (
            "an unknown role",
            jwt(
                &hs256_header(),
                &with(admin.clone(), json!({"role": "superuser"})),
                right,
            ),
        ),
        (
            "a subject that is no UUID",
            jwt(&hs256_header(), &with(admin.clone(), json!({"sub": "admin"})), right),
        ),
        (
            "a user's token with its payload edited to admin",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(access_claims(&user.id, "admin").to_string().as_bytes()),
                parts[2]
            ),
        ),
        (
            "a user's token without its signature",
            format!("{}.{}.", parts[0], parts[1]),
        ),
        ("a queue token", queue_token.clone()),
        ("garbage", "garbage".to_owned()),
        ("three empty parts", "..".to_owned()),
        ("three dots of base64", "a.b.c".to_owned()),
        ("8 KiB of letters", "a".repeat(8192)),
    ];
    for (why, token) in &cases {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        expect_invalid_token(
            send_authorization(&app, reqwest::Method::GET, "/api/v1/users/me", value.clone()).await,
            why,
        )
        .await;
        expect_invalid_token(
            send_authorization(&app, reqwest::Method::POST, "/api/v1/concerts", value).await,
            why,
        )
        .await;
    }
    // An Authorization header that is not text, and schemes other than Bearer.
    for (why, value) in [
        (
            "bytes that are no UTF-8",
            HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
        ),
        ("Basic", HeaderValue::from_static("Basic YWRtaW46YWRtaW4=")),
        (
            "Token scheme",
            HeaderValue::from_str(&format!("Token {genuine}")).unwrap(),
        ),
        ("no scheme", HeaderValue::from_str(&genuine).unwrap()),
        ("Bearer with nothing", HeaderValue::from_static("Bearer ")),
    ] {
        expect_invalid_token(
            send_authorization(&app, reqwest::Method::POST, "/api/v1/concerts", value).await,
            why,
        )
        .await;
    }

    assert_eq!(app.count("concerts").await, 1, "only the control concert exists");
    // The genuine tokens still work afterwards.
    expect_status(app.me(&user.token).await, StatusCode::OK).await;
}

// ---------------------------------------------------------------------------------------------
// Queue tokens

/// The claims of a queue token the server issued, read back with the deployment's key.
fn queue_claims(app: &TestApp, token: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["queue"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(app.env["JWT_SECRET"].as_bytes()),
        &validation,
    )
    .unwrap()
    .claims
}

async fn queue_status_of(app: &TestApp, queue_token: &str) -> Value {
    let response = app
        .client
        .get(app.url("/api/v1/queue/status"))
        .header("x-queue-token", queue_token)
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::OK).await
}

/// Asserts the status and code (and the Bearer challenge on a 401); `what` says which case.
async fn expect_refused(response: reqwest::Response, status: StatusCode, code: &str, what: &str) {
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(
            response.headers().get("www-authenticate").map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{what}"
        );
    }
    let actual = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!((actual, body["code"].as_str()), (status, Some(code)), "{what}: {body}");
    assert_eq!(content_type.unwrap(), "application/problem+json", "{what}");
}

/// What a case says: which token it is, the `X-Queue-Token` sent (none: no header), the
/// problem code expected.
type QueueCase = (&'static str, Option<String>, &'static str);

/// The booking gate on the real endpoints: a queue token that is forged, re-signed, expired,
/// not a queue token or missing is 401; a genuine one that is another user's or another
/// concert's is 403 `queue_not_active`. None of them holds, cancels or pays anything, and the
/// owner's entry survives attempts to leave the line with them.
#[tokio::test]
async fn booking_refuses_queue_tokens_that_are_forged_foreign_or_no_queue_tokens() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let secret = app.env["JWT_SECRET"].clone();
    let admin = app.admin_token().await;
    let (other_concert, _) = app.concert_with_schedule(&admin, 30).await;
    let mut two = fans(&app, &concert, 2).await;
    let (owner, stranger) = (two.remove(0), two.remove(0));
    let elsewhere = expect_status(
        app.post_json_authed(
            &format!("/api/v1/concerts/{other_concert}/queue"),
            &owner.access,
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(elsewhere["status"], "active");
    let elsewhere = elsewhere["queue_token"].as_str().unwrap().to_owned();
    let real = queue_claims(&app, &owner.queue);
    assert_eq!(real["sub"], owner.id.to_string());
    let right = Some((secret.as_str(), Algorithm::HS256));

    let unauthorized: Vec<QueueCase> = vec![
        ("no queue token", None, "missing_queue_token"),
        (
            "the owner's claims signed with another key",
            Some(jwt(&hs256_header(), &real, Some((OTHER_KEY, Algorithm::HS256)))),
            "invalid_queue_token",
        ),
        (
            "alg none",
            Some(jwt(&json!({"alg": "none", "typ": "JWT"}), &real, None)),
            "invalid_queue_token",
        ),
        (
            "HS512 with the deployment's key",
            Some(jwt(&json!({"alg": "HS512"}), &real, Some((&secret, Algorithm::HS512)))),
            "invalid_queue_token",
        ),
        (
            "expired",
            Some(jwt(
                &hs256_header(),
                &with(real.clone(), json!({"iat": now() - 90_000, "exp": now() - 3600})),
                right,
            )),
            "invalid_queue_token",
        ),
        (
            "not valid before an hour from now (nbf)",
            Some(jwt(
                &hs256_header(),
                &with(real.clone(), json!({"nbf": now() + 3600})),
                right,
            )),
            "invalid_queue_token",
        ),
        (
            "no audience",
            Some(jwt(&hs256_header(), &without(real.clone(), "aud"), right)),
            "invalid_queue_token",
        ),
        (
            "another audience",
            Some(jwt(
                &hs256_header(),
                &with(real.clone(), json!({"aud": "access"})),
                right,
            )),
            "invalid_queue_token",
        ),
        (
            "the owner's payload with the concert edited",
            Some({
                let parts: Vec<&str> = owner.queue.split('.').collect();
                let edited = with(real.clone(), json!({"concert": other_concert}));
                format!("{}.{}.{}", parts[0], b64(edited.to_string().as_bytes()), parts[2])
            }),
            "invalid_queue_token",
        ),
        (
            "the owner's access token",
            Some(owner.access.clone()),
            "invalid_queue_token",
        ),
        ("garbage", Some("garbage".to_owned()), "invalid_queue_token"),
    ];
    let forbidden: Vec<QueueCase> = vec![
        (
            "the owner's active token for another concert",
            Some(elsewhere.clone()),
            "queue_not_active",
        ),
        (
            "another fan's active token for this concert",
            Some(stranger.queue.clone()),
            "queue_not_active",
        ),
        (
            "a genuine signature over an entry that does not exist",
            Some(jwt(
                &hs256_header(),
                &with(real.clone(), json!({"jti": Uuid::now_v7()})),
                right,
            )),
            "queue_not_active",
        ),
    ];
    let cases: Vec<(StatusCode, &QueueCase)> = unauthorized
        .iter()
        .map(|c| (StatusCode::UNAUTHORIZED, c))
        .chain(forbidden.iter().map(|c| (StatusCode::FORBIDDEN, c)))
        .collect();

    let with_queue = |request: reqwest::RequestBuilder, token: &Option<String>| match token {
        Some(t) => request.header("x-queue-token", t),
        None => request,
    };
    for (status, (why, token, code)) in &cases {
        let response = with_queue(
            app.client
                .post(app.url("/api/v1/reservations"))
                .bearer_auth(&owner.access)
                .json(&json!({"schedule_id": schedule, "seat_ids": [seats[0]]})),
            token,
        )
        .send()
        .await
        .unwrap();
        expect_refused(response, *status, code, &format!("hold, {why}")).await;
    }
    assert_eq!(app.count("reservations").await, 0, "nothing was held");
    assert_eq!(app.count("idempotency_keys").await, 0);

    // A real hold, then cancelling and paying it with each bad token.
    assert_eq!(
        charge(&app, &owner, Some("points"), json!(1000)).await,
        (StatusCode::OK, json!({"balance": 1000}))
    );
    // The owner's claims re-signed as the server signs them pass: the refusals above were the
    // server's, not broken test tokens.
    let resigned = Fan {
        id: owner.id,
        access: owner.access.clone(),
        queue: jwt(&hs256_header(), &real, right),
    };
    let (status, held) = hold(&app, &resigned, &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let reservation = held["id"].as_str().unwrap().to_owned();
    for (n, (status, (why, token, code))) in cases.iter().enumerate() {
        let cancel = with_queue(
            app.client
                .delete(app.url(&format!("/api/v1/reservations/{reservation}")))
                .bearer_auth(&owner.access),
            token,
        )
        .send()
        .await
        .unwrap();
        expect_refused(cancel, *status, code, &format!("cancel, {why}")).await;
        let pay = with_queue(
            app.client
                .post(app.url(&format!("/api/v1/reservations/{reservation}/payments")))
                .bearer_auth(&owner.access)
                .header("idempotency-key", format!("pay-{n}")),
            token,
        )
        .send()
        .await
        .unwrap();
        expect_refused(pay, *status, code, &format!("pay, {why}")).await;
    }
    // Leaving the line needs the entry's own queue token.
    for (why, token, code) in &unauthorized {
        let leave = with_queue(app.client.delete(app.url("/api/v1/queue")), token)
            .send()
            .await
            .unwrap();
        expect_refused(leave, StatusCode::UNAUTHORIZED, code, &format!("leave, {why}")).await;
        let status = with_queue(app.client.get(app.url("/api/v1/queue/status")), token)
            .send()
            .await
            .unwrap();
        expect_refused(status, StatusCode::UNAUTHORIZED, code, &format!("status, {why}")).await;
    }

    let (state, payments, balance): (String, i64, i64) = sqlx::query_as(
        "SELECT r.status, (SELECT count(*) FROM payments), (SELECT balance FROM wallets WHERE user_id = r.user_id)
         FROM reservations r WHERE r.id = $1::uuid",
    )
    .bind(&reservation)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((state.as_str(), payments, balance), ("held", 0, 1000));
    assert_eq!(app.count("reservations").await, 1);
    assert_eq!(queue_status_of(&app, &owner.queue).await["status"], "active");
    assert_eq!(queue_status_of(&app, &stranger.queue).await["status"], "active");
}

// ---------------------------------------------------------------------------------------------
// Admin operations

/// What the admin operations could have written.
async fn catalog_counts(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in ["concerts", "schedules", "seats", "jobs", "outbox", "users"] {
        counts.push((table, app.count(table).await));
    }
    counts
}

/// A user's token on each admin operation is 403 `admin_required`, before the body is looked
/// at, and writes nothing. The admin operations are exactly the ones the OpenAPI document lists
/// that answer `admin_required` to a user: a new admin route cannot be missed here. Sign-up
/// cannot grant a role either.
#[tokio::test]
async fn a_users_token_on_every_admin_operation_is_403_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let user = app.new_user().await;
    let before = catalog_counts(&app).await;
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let sections = json!({"sections": [{"name": "Stolen", "rows": 2, "seats_per_row": 2, "price": 1}]});

    let operations = [
        (
            "/api/v1/concerts".to_owned(),
            json!({"title": "Mine now", "description": "x"}),
        ),
        (
            format!("/api/v1/concerts/{concert}/schedules"),
            json!({"starts_at": starts_at}),
        ),
        (format!("/api/v1/schedules/{schedule}/seats"), sections.clone()),
        (
            format!("/api/v1/schedules/{schedule}/seats?mode=inline"),
            sections.clone(),
        ),
        (format!("/api/v1/schedules/{schedule}/seats?mode=stream"), sections),
    ];
    for (path, body) in &operations {
        expect_problem(
            app.post_json_authed(path, &user.token, body).await,
            StatusCode::FORBIDDEN,
            "admin_required",
        )
        .await;
        // A body the operation would refuse: still 403, the role is checked first.
        for bad in [json!({}), json!({"title": 5, "extra": true})] {
            expect_problem(
                app.post_json_authed(path, &user.token, &bad).await,
                StatusCode::FORBIDDEN,
                "admin_required",
            )
            .await;
        }
        let not_json = app
            .client
            .post(app.url(path))
            .bearer_auth(&user.token)
            .header("content-type", "text/plain")
            .body("title=x")
            .send()
            .await
            .unwrap();
        expect_problem(not_json, StatusCode::FORBIDDEN, "admin_required").await;
    }
    // Asking for admin at sign-up is an unknown field.
    let escalated = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"email": "climber@example.com", "password": "correct-horse-battery", "name": "C", "role": "admin"}),
        )
        .await;
    let problem = expect_problem(escalated, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert!(problem["detail"].as_str().unwrap().starts_with("role:"), "{problem}");
    let me = expect_status(app.me(&user.token).await, StatusCode::OK).await;
    assert_eq!(me["role"], "user");

    // Every documented operation, called with the user's token.
    let doc = expect_status(app.get("/openapi.json").await, StatusCode::OK).await;
    let mut refused = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let concrete = if path.starts_with("/api/v1/concerts/") {
            path.replace("{id}", &concert)
        } else if path.starts_with("/api/v1/schedules/") {
            path.replace("{id}", &schedule)
        } else {
            path.replace("{id}", &Uuid::now_v7().to_string())
        };
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = app
                .client
                .request(method.clone(), app.url(&concrete))
                .bearer_auth(&user.token);
            if method != reqwest::Method::GET {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if body["code"] == "admin_required" {
                refused.push(format!("{method} {path}"));
            }
        }
    }
    refused.sort();
    assert_eq!(
        refused,
        [
            "DELETE /api/v1/admin/webhooks/{id}",
            "DELETE /api/v1/halls/{id}",
            "DELETE /api/v1/halls/{id}/plans/{version}",
            "DELETE /api/v1/venues/{id}",
            "GET /api/v1/admin/reports/concerts/{id}",
            "GET /api/v1/admin/reports/settlement",
            "GET /api/v1/admin/webhooks",
            "GET /api/v1/admin/webhooks/{id}",
            "GET /api/v1/admin/webhooks/{id}/deliveries",
            "POST /api/v1/admin/concerts/{id}/queue/pause",
            "POST /api/v1/admin/concerts/{id}/queue/resume",
            "POST /api/v1/admin/webhooks",
            "POST /api/v1/admin/webhooks/{id}/rotate-secret",
            "POST /api/v1/concerts",
            "POST /api/v1/concerts/{id}/schedules",
            "POST /api/v1/halls/{id}/plans",
            "POST /api/v1/schedules/{id}/seats",
            "POST /api/v1/venues",
            "POST /api/v1/venues/{id}/halls",
            "PUT /api/v1/halls/{id}",
            "PUT /api/v1/halls/{id}/plans/{version}",
            "PUT /api/v1/venues/{id}",
        ],
        "the operations that need an admin"
    );
    assert_eq!(catalog_counts(&app).await, before, "nothing was written");
}

// ---------------------------------------------------------------------------------------------
// One user and another's

async fn balance(app: &TestApp, fan: &Fan) -> i64 {
    sqlx::query_scalar("SELECT COALESCE((SELECT balance FROM wallets WHERE user_id = $1), 0)")
        .bind(fan.id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// B reading, cancelling or paying A's reservation is 404 `reservation_not_found`, the same as
/// for one that does not exist, and changes nothing: the hold stays, no payment, no debit, no
/// stored answer; B's list does not show it.
#[tokio::test]
async fn another_users_reservation_is_not_found_and_untouched() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let mut two = fans(&app, &concert, 2).await;
    let (a, b) = (two.remove(0), two.remove(0));
    for (fan, key) in [(&a, "a-points"), (&b, "b-points")] {
        assert_eq!(
            charge(&app, fan, Some(key), json!(1000)).await,
            (StatusCode::OK, json!({"balance": 1000}))
        );
    }
    let (status, held) = hold(&app, &a, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let reservation = held["id"].as_str().unwrap().to_owned();
    let unknown = Uuid::now_v7().to_string();

    for id in [&reservation, &unknown] {
        expect_problem(
            app.get_authed(&format!("/api/v1/reservations/{id}"), &b.access).await,
            StatusCode::NOT_FOUND,
            "reservation_not_found",
        )
        .await;
        let cancel = app
            .client
            .delete(app.url(&format!("/api/v1/reservations/{id}")))
            .bearer_auth(&b.access)
            .header("x-queue-token", &b.queue)
            .send()
            .await
            .unwrap();
        expect_problem(cancel, StatusCode::NOT_FOUND, "reservation_not_found").await;
        let (status, body) = pay(&app, &b, id, "b-pays").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("reservation_not_found")),
            "{body}"
        );
    }
    let mine = expect_status(
        app.get_authed("/api/v1/users/me/reservations", &b.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine["total"], 0, "{mine}");

    let (state, seats_held): (String, i64) = sqlx::query_as(
        "SELECT r.status, (SELECT count(*) FROM seats s WHERE s.id = ANY($2) AND s.status = 'held')
         FROM reservations r WHERE r.id = $1::uuid",
    )
    .bind(&reservation)
    .bind(&seats[..2])
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((state.as_str(), seats_held), ("held", 2));
    assert_eq!(app.count("payments").await, 0);
    assert_eq!((balance(&app, &a).await, balance(&app, &b).await), (1000, 1000));
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND scope <> 'points.charge'")
            .bind(b.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, 0, "a refused request stores no answer");
    // A still has it, as it was.
    let own = expect_status(
        app.get_authed(&format!("/api/v1/reservations/{reservation}"), &a.access)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(own["status"], "held");
}

async fn hold_keyed(app: &TestApp, fan: &Fan, schedule: &str, seats: &[Uuid], key: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/reservations"))
        .bearer_auth(&fan.access)
        .header("x-queue-token", &fan.queue)
        .header("idempotency-key", key)
        .json(&json!({"schedule_id": schedule, "seat_ids": seats}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Keys are scoped per user: B sending the key A used (on charges, holds and payments) is B's
/// own first request, processed for B, never answered with A's stored answer nor refused as a
/// reuse; each request A's record would have answered differently, so a leak would show.
#[tokio::test]
async fn another_users_idempotency_key_is_a_fresh_request_of_ones_own() {
    let (app, concert, schedule, seats) = sale(|_| {}).await;
    let mut two = fans(&app, &concert, 2).await;
    let (a, b) = (two.remove(0), two.remove(0));

    // Charges: A's stored answer is {"balance": 500}.
    assert_eq!(
        charge(&app, &a, Some("shared-charge"), json!(500)).await,
        (StatusCode::OK, json!({"balance": 500}))
    );
    assert_eq!(
        charge(&app, &b, Some("b-first"), json!(100)).await,
        (StatusCode::OK, json!({"balance": 100}))
    );
    assert_eq!(
        charge(&app, &b, Some("shared-charge"), json!(500)).await,
        (StatusCode::OK, json!({"balance": 600})),
        "B's own charge, not A's answer"
    );
    let (status, body) = charge(&app, &b, Some("shared-charge"), json!(700)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused")),
        "the key is B's now, with B's request"
    );
    assert_eq!(
        charge(&app, &a, Some("shared-charge"), json!(500)).await,
        (StatusCode::OK, json!({"balance": 500})),
        "A's replay is A's"
    );
    assert_eq!((balance(&app, &a).await, balance(&app, &b).await), (500, 600));

    // Holds: A's stored answer is a 201 with A's reservation.
    let (status, a_held) = hold_keyed(&app, &a, &schedule, &seats[..1], "shared-hold").await;
    assert_eq!(status, StatusCode::CREATED, "{a_held}");
    let (status, body) = hold_keyed(&app, &b, &schedule, &seats[..1], "shared-hold").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("seat_unavailable")),
        "B's own attempt at A's seat: {body}"
    );
    let (status, b_held) = hold_keyed(&app, &b, &schedule, &seats[1..2], "shared-hold").await;
    assert_eq!(status, StatusCode::CREATED, "{b_held}");
    assert_ne!(a_held["id"], b_held["id"]);
    assert_eq!(b_held["seat_ids"], json!([seats[1]]));
    let (a_res, b_res) = (
        a_held["id"].as_str().unwrap().to_owned(),
        b_held["id"].as_str().unwrap().to_owned(),
    );

    // Payments: A's stored answer is A's payment of A's reservation.
    let (status, a_paid) = pay(&app, &a, &a_res, "shared-pay").await;
    assert_eq!(status, StatusCode::CREATED, "{a_paid}");
    assert_eq!(a_paid["balance"], 400);
    let (status, body) = pay(&app, &b, &a_res, "shared-pay").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("reservation_not_found")),
        "B replaying A's key on A's reservation: {body}"
    );
    let (status, b_paid) = pay(&app, &b, &b_res, "shared-pay").await;
    assert_eq!(status, StatusCode::CREATED, "{b_paid}");
    assert_eq!(
        (b_paid["reservation_id"].as_str(), b_paid["balance"].as_i64()),
        (Some(b_res.as_str()), Some(500))
    );
    assert_ne!(a_paid["payment_id"], b_paid["payment_id"]);

    let payments: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT user_id, reservation_id FROM payments ORDER BY created_at")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        payments,
        vec![(a.id, a_res.parse().unwrap()), (b.id, b_res.parse().unwrap())]
    );
    assert_eq!((balance(&app, &a).await, balance(&app, &b).await), (400, 500));
    let records: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT user_id, scope FROM idempotency_keys WHERE idempotency_key LIKE 'shared-%' ORDER BY scope, user_id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let mut expected = Vec::new();
    for scope in ["points.charge", "reservation.hold", "reservation.pay"] {
        let mut users = [a.id, b.id];
        users.sort();
        expected.extend(users.map(|u| (u, scope.to_owned())));
    }
    assert_eq!(records, expected, "one record per user and endpoint");
}

// ---------------------------------------------------------------------------------------------
// Hostile strings

/// SQL, markup, template and lookup injections, format strings, and Unicode that tends to
/// break naive handling (emoji with joiners, right-to-left text and overrides, combining marks,
/// invisible characters, astral planes). None has surrounding whitespace (names are trimmed).
const HOSTILE: &[&str] = &[
    "'; DROP TABLE users; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "Robert'); DROP TABLE concerts;--",
    "1; SELECT pg_sleep(10)",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "%s%n%x %d",
    "\\'; \\\" \\\\ \\u0000",
    "🎸🔥 Aurora 👨‍👩‍👧‍👦",
    "مرحبا بالعالم",
    "שלום עולם",
    "\u{202E}evil\u{202C}.exe",
    "e\u{301}\u{200B}\u{FEFF}x",
    "𝕏 ∑ 漢字 ﷽",
];

/// Every hostile string is stored as sent in each text field and comes back verbatim from
/// every read (the catalog's cached bodies included), the tables stay intact, and hostile
/// strings in paths, queries, log-ins and Idempotency-Keys are plain values. A NUL, which
/// PostgreSQL text cannot hold, is a 422 naming the field in every text field, not a 500.
#[tokio::test]
async fn hostile_strings_are_stored_and_returned_verbatim() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let password = "correct-horse-battery";

    // Accounts: the name as it is; the address's local part as it is (lower case, no spaces,
    // as addresses are kept).
    for (n, hostile) in HOSTILE.iter().enumerate() {
        let local: String = hostile.to_lowercase().chars().filter(|c| !c.is_whitespace()).collect();
        let email = format!("{local}.{n}@example.com");
        let created = expect_status(app.signup(&email, password, hostile).await, StatusCode::CREATED).await;
        assert_eq!(
            (created["email"].as_str(), created["name"].as_str()),
            (Some(email.as_str()), Some(*hostile))
        );
        let token = app.token(&email, password).await;
        let me = expect_status(app.me(&token).await, StatusCode::OK).await;
        assert_eq!(
            (me["email"].as_str(), me["name"].as_str()),
            (Some(email.as_str()), Some(*hostile))
        );
        let stored: (String, String) = sqlx::query_as("SELECT email, name FROM users WHERE id = $1::uuid")
            .bind(created["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, (email.clone(), (*hostile).to_owned()));
    }

    // Concerts: the title and a multi-line description.
    let mut concerts = Vec::new();
    for hostile in HOSTILE {
        let description = format!("{hostile}\n\t{hostile}");
        let created = expect_status(
            app.post_json_authed(
                "/api/v1/concerts",
                &admin,
                &json!({"title": hostile, "description": description}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            (created["title"].as_str(), created["description"].as_str()),
            (Some(*hostile), Some(description.as_str()))
        );
        let id = created["id"].as_str().unwrap().to_owned();
        for _ in 0..2 {
            // Loaded from PostgreSQL, then served from the cache.
            let details = expect_status(app.get(&format!("/api/v1/concerts/{id}")).await, StatusCode::OK).await;
            assert_eq!(
                (details["title"].as_str(), details["description"].as_str()),
                (Some(*hostile), Some(description.as_str()))
            );
        }
        concerts.push((id, (*hostile).to_owned(), description));
    }
    let listed = expect_status(app.get("/api/v1/concerts?size=100").await, StatusCode::OK).await;
    for (id, title, description) in &concerts {
        let item = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .unwrap();
        assert_eq!(
            (item["title"].as_str(), item["description"].as_str()),
            (Some(title.as_str()), Some(description.as_str()))
        );
        let stored: (String, String) = sqlx::query_as("SELECT title, description FROM concerts WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, (title.clone(), description.clone()));
    }

    // Section names, one section per string.
    let (_, schedule) = app.concert_with_schedule(&admin, 30).await;
    let sections: Vec<Value> = HOSTILE
        .iter()
        .map(|name| json!({"name": name, "rows": 1, "seats_per_row": 1, "price": 1}))
        .collect();
    app.add_seats(&admin, &schedule, json!(sections)).await;
    let map = expect_status(
        app.get(&format!("/api/v1/schedules/{schedule}/seats")).await,
        StatusCode::OK,
    )
    .await;
    let mut served: Vec<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["section"].as_str().unwrap().to_owned())
        .collect();
    let mut sent: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    served.sort();
    sent.sort();
    assert_eq!(served, sent);
    let mut stored: Vec<String> = sqlx::query_scalar("SELECT section FROM seats WHERE schedule_id = $1::uuid")
        .bind(&schedule)
        .fetch_all(&app.db)
        .await
        .unwrap();
    stored.sort();
    assert_eq!(stored, sent);

    // In a path, a query, a log-in and an Idempotency-Key: values, nothing more.
    expect_problem(
        app.get("/api/v1/concerts/1'%20OR%20'1'='1").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    expect_problem(
        app.get("/api/v1/concerts?page=1%20OR%201=1").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_problem(
        app.get(&format!(
            "/api/v1/schedules/{schedule}/seats?status=available'%20OR%20'1'='1"
        ))
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    for (email, password) in [
        ("' OR '1'='1' --", "' OR '1'='1"),
        ("admin@imticket.test'--", "x' OR 'x'='x"),
        (ADMIN_EMAIL, "' OR 1=1 --"),
    ] {
        expect_problem(
            app.login(email, password).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    let fan = app.new_user().await;
    let key = "';DROP-TABLE-idempotency_keys;--\"<script>";
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url("/api/v1/users/me/points/charge"))
            .bearer_auth(&fan.token)
            .header("idempotency-key", key)
            .json(&json!({"amount": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(expect_status(response, StatusCode::OK).await, json!({"balance": 5}));
    }
    let keys: Vec<String> = sqlx::query_scalar("SELECT idempotency_key FROM idempotency_keys")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(keys, [key]);

    // A NUL in any text field.
    let before = (
        app.count("users").await,
        app.count("concerts").await,
        app.count("seats").await,
    );
    let nul_cases = [
        (
            "/api/v1/auth/signup",
            json!({"email": "nul@example.com", "password": password, "name": "a\u{0}b"}),
            "name",
        ),
        (
            "/api/v1/auth/signup",
            json!({"email": "n\u{0}ul@example.com", "password": password, "name": "N"}),
            "email",
        ),
        ("/api/v1/concerts", json!({"title": "a\u{0}b"}), "title"),
        (
            "/api/v1/concerts",
            json!({"title": "T", "description": "a\u{0}b"}),
            "description",
        ),
    ];
    for (path, body, field) in nul_cases {
        let problem = expect_problem(
            app.post_json_authed(path, &admin, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with(&format!("{field}:")),
            "{problem}"
        );
    }
    let problem = expect_problem(
        app.post_json_authed(
            &format!("/api/v1/schedules/{schedule}/seats?mode=inline"),
            &admin,
            &json!({"sections": [{"name": "a\u{0}b", "rows": 1, "seats_per_row": 1, "price": 1}]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("name"), "{problem}");
    assert_eq!(
        (
            app.count("users").await,
            app.count("concerts").await,
            app.count("seats").await
        ),
        before
    );

    // The tables are all there, with what was written.
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest(ARRAY['users', 'concerts', 'schedules', 'seats', 'wallets',
           'idempotency_keys', 'reservations', 'payments']) AS t(name) WHERE to_regclass(t.name) IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(tables, 8);
    assert_eq!(app.count("users").await, 1 + HOSTILE.len() as i64 + 1);
    assert_eq!(app.count("concerts").await, HOSTILE.len() as i64 + 1);
}

// ---------------------------------------------------------------------------------------------
// Security headers

fn assert_secure(response: &reqwest::Response, what: &str) {
    let headers = response.headers();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        let all: Vec<&str> = headers.get_all(name).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(all, [value], "{what} ({}): {name}", response.status());
    }
}

/// Each kind of answer carries the security headers: successes (200, 201, 202, 204, a stored
/// idempotent answer), problems from handlers, extractors, the admission layer and the rate
/// limiter, unknown routes and methods, and the operational routes.
#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let mut app = spawn_app_with(|env| {
        env.insert("IMTICKET_RATE_LIMITS".into(), "on".into());
        env.insert("IMTICKET_RATE_LIMIT_SIGNUP_IP".into(), "3/600".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, schedule) = app.concert_with_schedule(&admin, 30).await;
    let user = app.new_user().await;
    let client = &app.client;
    let url = |path: &str| app.url(path);
    let check = |response: reqwest::Response, expected: StatusCode, what: &str| {
        assert_eq!(response.status(), expected, "{what}");
        assert_secure(&response, what);
    };

    check(app.get("/api/v1/concerts").await, StatusCode::OK, "a list");
    check(
        app.get(&format!("/api/v1/concerts/{concert}")).await,
        StatusCode::OK,
        "cached details",
    );
    check(app.me(&user.token).await, StatusCode::OK, "/users/me");
    check(
        app.signup("headers@example.com", "correct-horse-battery", "H").await,
        StatusCode::CREATED,
        "sign-up",
    );
    let job = app
        .post_json_authed(
            &format!("/api/v1/schedules/{schedule}/seats"),
            &admin,
            &json!({"sections": [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1}]}),
        )
        .await;
    check(job, StatusCode::ACCEPTED, "seat creation accepted");
    let joined = app
        .post_json_authed(&format!("/api/v1/concerts/{concert}/queue"), &user.token, &json!({}))
        .await;
    assert_secure(&joined, "joining the line");
    let joined: Value = joined.json().await.unwrap();
    let queue_token = joined["queue_token"].as_str().unwrap().to_owned();
    let left = client
        .delete(url("/api/v1/queue"))
        .header("x-queue-token", &queue_token)
        .send()
        .await
        .unwrap();
    check(left, StatusCode::NO_CONTENT, "leaving the line");
    for what in ["a charge", "its stored answer"] {
        let charged = client
            .post(url("/api/v1/users/me/points/charge"))
            .bearer_auth(&user.token)
            .header("idempotency-key", "headers-charge")
            .json(&json!({"amount": 5}))
            .send()
            .await
            .unwrap();
        check(charged, StatusCode::OK, what);
    }

    check(
        app.post_raw("/api/v1/auth/login", "application/json", "[1, 2").await,
        StatusCode::BAD_REQUEST,
        "malformed JSON",
    );
    check(
        app.post_raw("/api/v1/auth/login", "text/plain", "x").await,
        StatusCode::BAD_REQUEST,
        "wrong content type",
    );
    check(
        app.post_raw("/api/v1/auth/login", "application/json", vec![b' '; 70 * 1024])
            .await,
        StatusCode::BAD_REQUEST,
        "a body refused by the admission layer",
    );
    check(
        app.get("/api/v1/concerts/not-a-uuid").await,
        StatusCode::BAD_REQUEST,
        "a bad path",
    );
    check(app.get("/api/v1/users/me").await, StatusCode::UNAUTHORIZED, "no token");
    check(app.me("forged").await, StatusCode::UNAUTHORIZED, "a forged token");
    check(
        app.post_json_authed("/api/v1/concerts", &user.token, &json!({"title": "x"}))
            .await,
        StatusCode::FORBIDDEN,
        "admin required",
    );
    check(
        app.get(&format!("/api/v1/concerts/{}", Uuid::now_v7())).await,
        StatusCode::NOT_FOUND,
        "no such concert",
    );
    check(
        app.get("/api/v1/no-such-route").await,
        StatusCode::NOT_FOUND,
        "an unknown route",
    );
    check(
        app.get("/outside/the/api").await,
        StatusCode::NOT_FOUND,
        "outside /api/v1",
    );
    check(
        app.get("/api/v1/auth/signup").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "a wrong method",
    );
    check(
        app.signup("headers@example.com", "correct-horse-battery", "H").await,
        StatusCode::CONFLICT,
        "a taken address",
    );
    check(
        app.post_json_authed("/api/v1/concerts", &admin, &json!({"title": ""}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an invalid field",
    );
    check(
        app.signup("third@example.com", "correct-horse-battery", "H").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate limited",
    );
    check(app.get("/health/live").await, StatusCode::OK, "/health/live");
    check(app.get("/health/ready").await, StatusCode::OK, "/health/ready");
    check(app.get("/metrics").await, StatusCode::OK, "/metrics");
    check(app.get("/openapi.json").await, StatusCode::OK, "/openapi.json");
    app.redis.stop();
    let not_ready = app.get("/health/ready").await;
    assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_secure(&not_ready, "/health/ready while Redis is down");
}

// ---------------------------------------------------------------------------------------------
// Logs

/// At `RUST_LOG=debug` with JSON logs, no credential reaches a log line: passwords (a sign-up's,
/// a successful and two failed log-ins', the bootstrap admin's), access tokens (issued, and
/// rejected ones sent in `Authorization`: forged, and genuine but expired), queue tokens
/// (genuine and forged), the JWT secret and the password in `DATABASE_URL`. Each token is also
/// looked for by its payload and signature parts, so a truncated token would be caught too.
///
/// `Idempotency-Key` values are not credentials (a key is scoped to its user, so knowing
/// another's gets nothing: `another_users_idempotency_key_is_a_fresh_request_of_ones_own`),
/// and the code treats them as data: `payments.idempotency_key` keeps them and a failed
/// lock names the key in its error context. They may be logged, and are not looked for here.
#[tokio::test]
async fn logs_at_debug_never_contain_credentials_or_secrets() {
    let redis = crate::servers::Redis::start();
    let mut env = test_env(&redis).await;
    // The test cluster trusts local connections, so a password in the URL is sent nowhere but
    // is in the configuration, where a careless log line could print it.
    let db_password = format!("db-pw-{}", Uuid::new_v4().simple());
    let url = env["DATABASE_URL"].replacen("postgres@", &format!("postgres:{db_password}@"), 1);
    assert!(url.contains(&db_password));
    env.insert("DATABASE_URL".into(), url);
    env.insert("RUST_LOG".into(), "debug".into());
    let log_path = redis.dir().join("api-debug.log");
    let (mut api, port) = spawn_listening(binary_command(env!("CARGO_BIN_EXE_imticket-api"), &env), &log_path);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let post = |path: &str| client.post(format!("{base}{path}"));
    let get = |path: &str| client.get(format!("{base}{path}"));

    let password = format!("pw-signup-{}", Uuid::new_v4().simple());
    let wrong_password = format!("pw-wrong-{}", Uuid::new_v4().simple());
    let unknown_password = format!("pw-unknown-{}", Uuid::new_v4().simple());
    let signup = post("/api/v1/auth/signup")
        .json(&json!({"email": "quiet@example.com", "password": password, "name": "Q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    let token = login_token(&client, &base, "quiet@example.com", &password).await;
    let admin = login_token(&client, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for (email, attempt) in [
        ("quiet@example.com", &wrong_password),
        ("nobody@example.com", &unknown_password),
    ] {
        let failed = post("/api/v1/auth/login")
            .json(&json!({"email": email, "password": attempt}))
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        get("/api/v1/users/me")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let secret = env["JWT_SECRET"].clone();
    let user_id = {
        let me: Value = get("/api/v1/users/me")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["id"].as_str().unwrap().to_owned()
    };
    let expired = jwt(
        &hs256_header(),
        &with(
            access_claims(&user_id, "user"),
            json!({"iat": now() - 7200, "exp": now() - 3600}),
        ),
        Some((&secret, Algorithm::HS256)),
    );
    let forged = jwt(
        &hs256_header(),
        &access_claims(&user_id, "admin"),
        Some((OTHER_KEY, Algorithm::HS256)),
    );
    for rejected in [&expired, &forged] {
        let response = get("/api/v1/users/me").bearer_auth(rejected).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    let concert: Value = post("/api/v1/concerts")
        .bearer_auth(&admin)
        .json(&json!({"title": "Quiet night"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let concert = concert["id"].as_str().unwrap().to_owned();
    let joined: Value = post(&format!("/api/v1/concerts/{concert}/queue"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let queue = joined["queue_token"].as_str().unwrap().to_owned();
    let status = get("/api/v1/queue/status")
        .header("x-queue-token", &queue)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    // A booking that gets past the gate and fails on its body, and one refused at the gate.
    let hold = post("/api/v1/reservations")
        .bearer_auth(&token)
        .header("x-queue-token", &queue)
        .json(&json!({"schedule_id": Uuid::now_v7(), "seat_ids": []}))
        .send()
        .await
        .unwrap();
    assert!(hold.status().is_client_error(), "{}", hold.status());
    let forged_queue = {
        let parts: Vec<&str> = queue.split('.').collect();
        let sig = jsonwebtoken::crypto::sign(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &EncodingKey::from_secret(OTHER_KEY.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{}.{}.{sig}", parts[0], parts[1])
    };
    let refused = get("/api/v1/queue/status")
        .header("x-queue-token", &forged_queue)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let charged = post("/api/v1/users/me/points/charge")
        .bearer_auth(&token)
        .header("idempotency-key", "logged-or-not")
        .json(&json!({"amount": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(charged.status(), StatusCode::OK);

    signal(&api, "TERM");
    assert_eq!(wait_exit(&mut api, Duration::from_secs(30)).code(), Some(0));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.lines().filter(|l| l.contains("request finished")).count() >= 12,
        "the test must see the requests' log lines: {logs}"
    );
    assert!(
        logs.lines().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "the test must see debug output"
    );
    let mut secrets: Vec<(&str, String)> = vec![
        ("the sign-up password", password.clone()),
        ("a failed log-in's password", wrong_password.clone()),
        ("an unknown address's password", unknown_password.clone()),
        ("the bootstrap admin's password", ADMIN_PASSWORD.to_owned()),
        ("the JWT secret", secret.clone()),
        ("the database password", db_password.clone()),
    ];
    for (what, t) in [
        ("the access token", &token),
        ("the admin's access token", &admin),
        ("a rejected expired token", &expired),
        ("a rejected forged token", &forged),
        ("the queue token", &queue),
        ("a forged queue token", &forged_queue),
    ] {
        let parts: Vec<&str> = t.split('.').collect();
        secrets.push((what, t.clone()));
        secrets.push((what, parts[1].to_owned()));
        secrets.push((what, parts[2].to_owned()));
    }
    for (what, secret) in &secrets {
        let line = logs.lines().find(|l| l.contains(secret.as_str()));
        assert!(line.is_none(), "{what} reached the logs: {}", line.unwrap_or_default());
    }
}
