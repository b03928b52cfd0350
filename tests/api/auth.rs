//! Sign-up, log-in and `/users/me`, including every kind of bad input and bad token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn signup_creates_an_account_and_an_empty_wallet() {
    let app = spawn_app().await;
    let body = expect_status(
        app.signup("  Ada@Example.COM ", "correct-horse", " Ada ").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["name"], "Ada");
    let id: uuid::Uuid = body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 3, "exactly id, email, name: {body}");

    let (role, balance): (String, i64) =
        sqlx::query_as("SELECT u.role, w.balance FROM users u JOIN wallets w ON w.user_id = u.id WHERE u.id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((role.as_str(), balance), ("user", 0));
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$"),
        "passwords are stored as argon2id hashes"
    );
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    expect_status(
        app.signup("fan@example.com", "correct-horse", "Fan").await,
        StatusCode::CREATED,
    )
    .await;
    expect_problem(
        app.signup("FAN@example.com", "other-password", "Other").await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    assert_eq!(app.count("users WHERE email = 'fan@example.com'").await, 1);
}

#[tokio::test]
async fn concurrent_signups_with_one_address_create_one_account() {
    let app = spawn_app().await;
    let attempts = (0..20).map(|_| app.signup("race@example.com", "correct-horse", "Racer"));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::CREATED).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_eq!(app.count("users WHERE email = 'race@example.com'").await, 1);
    assert_eq!(
        app.count("wallets w JOIN users u ON u.id = w.user_id WHERE u.email = 'race@example.com'")
            .await,
        1
    );
}

#[tokio::test]
async fn invalid_signups_are_rejected_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let users_before = app.count("users").await;
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": "long-enough", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "long-enough", "name": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": "long-enough"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "name",
        ),
        (
            json!({"password": "long-enough", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "email",
        ),
        (
            json!({"email": 42, "password": "long-enough", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": ["x"], "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "long-enough", "name": "A", "role": "admin"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "role",
        ),
        (
            json!(["not", "an", "object"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "object",
        ),
    ];
    for (body, status, code, field) in cases {
        let problem = expect_problem(app.post_json("/api/v1/auth/signup", &body).await, status, code).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(field),
            "detail {detail:?} should name `{field}` for {body}"
        );
    }
    assert_eq!(app.count("users").await, users_before);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_bad_requests() {
    let app = spawn_app().await;
    let users_before = app.count("users").await;
    expect_problem(
        app.post_raw("/api/v1/auth/signup", "application/json", "{\"email\": ")
            .await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    expect_problem(
        app.post_raw("/api/v1/auth/signup", "application/json", "").await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    expect_problem(
        app.post_raw(
            "/api/v1/auth/signup",
            "text/plain",
            r#"{"email":"a@example.com","password":"long-enough","name":"A"}"#,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unsupported_media_type",
    )
    .await;

    // 70 KiB: a valid JSON document, just too large.
    let huge =
        json!({"email": "big@example.com", "password": "long-enough", "name": "x".repeat(70 * 1024)}).to_string();
    let problem = expect_problem(
        app.post_raw("/api/v1/auth/signup", "application/json", huge.clone())
            .await,
        StatusCode::BAD_REQUEST,
        "body_too_large",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("65536"));
    // The same without a Content-Length (chunked) is refused while reading.
    let stream = futures_util::stream::iter(
        huge.into_bytes()
            .chunks(4096)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let chunked = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    expect_problem(chunked, StatusCode::BAD_REQUEST, "body_too_large").await;
    assert_eq!(app.count("users").await, users_before);
}

#[tokio::test]
async fn login_issues_a_bearer_token_that_identifies_the_user() {
    let app = spawn_app().await;
    let created = expect_status(
        app.signup("ada@example.com", "correct-horse", "Ada").await,
        StatusCode::CREATED,
    )
    .await;
    let login = expect_status(app.login("ADA@example.com", "correct-horse").await, StatusCode::OK).await;
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 3600);
    let token = login["access_token"].as_str().unwrap();

    let me = expect_status(app.me(token).await, StatusCode::OK).await;
    assert_eq!(
        me,
        json!({"id": created["id"], "email": "ada@example.com", "name": "Ada", "role": "user"})
    );
    // The scheme is case-insensitive (RFC 9110 §11.1).
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn wrong_credentials_are_401_without_saying_which_part_was_wrong() {
    let app = spawn_app().await;
    app.new_user().await;
    expect_status(
        app.signup("ada@example.com", "correct-horse", "Ada").await,
        StatusCode::CREATED,
    )
    .await;
    let wrong_password = app.login("ada@example.com", "wrong-horse").await;
    assert_eq!(wrong_password.headers()["www-authenticate"], "Bearer");
    let a = expect_problem(wrong_password, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let b = expect_problem(
        app.login("nobody@example.com", "correct-horse").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let c = expect_problem(
        app.login("not an email", "correct-horse").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(a, b);
    assert_eq!(b, c);
    expect_problem(
        app.post_json("/api/v1/auth/login", &json!({"email": "ada@example.com"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn the_bootstrap_admin_exists_and_is_an_admin() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let me = expect_status(app.me(&token).await, StatusCode::OK).await;
    assert_eq!(me["role"], "admin");
    assert_eq!(me["email"], ADMIN_EMAIL);
}

#[tokio::test]
async fn bootstrap_promotes_an_existing_account_and_keeps_its_password() {
    let redis = crate::servers::Redis::start();
    let mut env = test_env(&redis).await;
    // First start: no bootstrap admin; the address signs up as an ordinary user.
    env.remove("IMTICKET_BOOTSTRAP_ADMIN_EMAIL");
    let first = imticket::startup::Application::build(config_from(&env)).await.unwrap();
    let deps = first.deps().clone();
    imticket::app::auth::signup(
        &deps,
        imticket::app::auth::Signup {
            email: "boss@example.com".into(),
            password: "boss-password".to_owned().into(),
            name: "Boss".into(),
        },
    )
    .await
    .unwrap();
    drop(first);
    // Restart with the bootstrap variables naming that address (twice: start-up is idempotent).
    env.insert("IMTICKET_BOOTSTRAP_ADMIN_EMAIL".into(), "boss@example.com".into());
    for _ in 0..2 {
        imticket::startup::Application::build(config_from(&env)).await.unwrap();
    }
    let db = crate::servers::direct_pool(&env["DATABASE_URL"]).await;
    let (role, count): (String, i64) =
        sqlx::query_as("SELECT max(role), count(*) FROM users WHERE email = 'boss@example.com'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((role.as_str(), count), ("admin", 1));
    let token = imticket::app::auth::login(&deps, "boss@example.com", &"boss-password".to_owned().into()).await;
    assert!(token.is_ok(), "the existing password still works");
}

mod tokens {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn b64(bytes: &[u8]) -> String {
        // base64url without padding, enough for hand-made tokens.
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

    fn claims(sub: &str, role: &str, iat: i64, exp: i64) -> Value {
        json!({"sub": sub, "role": role, "iat": iat, "exp": exp, "iss": "imticket"})
    }

    async fn assert_rejected(app: &TestApp, token: &str, why: &str) {
        let response = app.me(token).await;
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let problem = expect_status(response, StatusCode::UNAUTHORIZED).await;
        assert!(
            challenge.is_some_and(|c| c.starts_with("Bearer")),
            "{why}: 401 must carry WWW-Authenticate: Bearer"
        );
        assert_eq!(problem["status"], 401, "{why}");
    }

    #[tokio::test]
    async fn missing_malformed_forged_expired_and_unsigned_tokens_are_401() {
        let app = spawn_app().await;
        let user = app.new_user().await;
        let secret = app.env["JWT_SECRET"].clone();
        let now = chrono::Utc::now().timestamp();
        let sign = |value: &Value, key: &str| {
            encode(&Header::default(), value, &EncodingKey::from_secret(key.as_bytes())).unwrap()
        };

        let missing = app.get("/api/v1/users/me").await;
        assert_eq!(missing.headers()["www-authenticate"], "Bearer");
        expect_problem(missing, StatusCode::UNAUTHORIZED, "missing_token").await;
        let basic = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("authorization", "Basic Zm9vOmJhcg==")
            .send()
            .await
            .unwrap();
        expect_problem(basic, StatusCode::UNAUTHORIZED, "invalid_token").await;

        assert_rejected(&app, "not-a-jwt", "garbage").await;
        assert_rejected(
            &app,
            &sign(
                &claims(&user.id, "user", now, now + 600),
                "some-other-secret-of-enough-length",
            ),
            "wrong secret",
        )
        .await;
        assert_rejected(
            &app,
            &sign(&claims(&user.id, "user", now - 7200, now - 3600), &secret),
            "expired",
        )
        .await;
        assert_rejected(
            &app,
            &sign(&claims(&user.id, "user", now + 3600, now + 7200), &secret),
            "issued in the future",
        )
        .await;
        assert_rejected(
            &app,
            &sign(
                &json!({"sub": user.id, "role": "user", "iat": now, "exp": now + 600, "iss": "someone-else"}),
                &secret,
            ),
            "wrong issuer",
        )
        .await;
        assert_rejected(
            &app,
            &sign(
                &json!({"sub": user.id, "role": "user", "exp": now + 600, "iss": "imticket"}),
                &secret,
            ),
            "no iat",
        )
        .await;
        assert_rejected(
            &app,
            &sign(&claims(&user.id, "superuser", now, now + 600), &secret),
            "unknown role",
        )
        .await;
        assert_rejected(
            &app,
            &sign(&claims("not-a-uuid", "user", now, now + 600), &secret),
            "bad subject",
        )
        .await;

        // alg: none, with the claims of a real user and an admin role.
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64(claims(&user.id, "admin", now, now + 600).to_string().as_bytes());
        assert_rejected(&app, &format!("{header}.{payload}."), "alg none").await;
        // HS512 with the right secret: the algorithm is pinned to HS256.
        let hs512 = encode(
            &Header::new(jsonwebtoken::Algorithm::HS512),
            &claims(&user.id, "user", now, now + 600),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        assert_rejected(&app, &hs512, "other algorithm").await;
        // A real token whose payload was edited to claim admin keeps its old signature.
        let parts: Vec<&str> = user.token.split('.').collect();
        let forged_payload = b64(claims(&user.id, "admin", now, now + 600).to_string().as_bytes());
        assert_rejected(
            &app,
            &format!("{}.{forged_payload}.{}", parts[0], parts[2]),
            "edited payload",
        )
        .await;

        // And the genuine token still works.
        expect_status(app.me(&user.token).await, StatusCode::OK).await;
        // A valid token of an account that no longer exists.
        let ghost = sign(
            &claims(&uuid::Uuid::now_v7().to_string(), "user", now, now + 600),
            &secret,
        );
        expect_problem(app.me(&ghost).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
}
