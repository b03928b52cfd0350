//! `GET /queue/events`: a fan's queue entry pushed over Server-Sent Events as the line moves,
//! resumed with `Last-Event-ID`, opened from a browser with the short-lived query token, and
//! hundreds of streams held by one process.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::holds::fans;

/// An open event stream, read chunk by chunk.
pub(crate) struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Send>>,
    buffer: String,
}

/// One message of the stream: an event (`id`, JSON `data`) or a comment.
#[derive(Debug)]
enum Message {
    Event { id: String, data: Value },
    Comment(String),
    Retry(u64),
}

impl Events {
    pub(crate) async fn open(request: reqwest::RequestBuilder) -> Self {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next message, or `None` when the server ended the stream. Panics after `within`.
    async fn next(&mut self, within: Duration) -> Option<Message> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let block = block.trim_end();
                if let Some(comment) = block.strip_prefix(':') {
                    return Some(Message::Comment(comment.trim().to_owned()));
                }
                if let Some(ms) = block.strip_prefix("retry: ") {
                    return Some(Message::Retry(ms.parse().unwrap()));
                }
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or_else(|| panic!("no {name} in {block:?}"))
                        .to_owned()
                };
                assert_eq!(field("event: "), "status", "{block}");
                return Some(Message::Event {
                    id: field("id: "),
                    data: serde_json::from_str(&field("data: ")).unwrap(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.next()).await {
                Ok(Some(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
                Ok(None) => return None,
                Err(_) => panic!("no message within {within:?}; have {:?}", self.buffer),
            }
        }
    }

    /// The next event, skipping comments and the retry hint.
    pub(crate) async fn event(&mut self, within: Duration) -> (String, Value) {
        loop {
            match self.next(within).await {
                Some(Message::Event { id, data }) => return (id, data),
                Some(_) => continue,
                None => panic!("the stream ended"),
            }
        }
    }
}

pub(crate) async fn join(app: &TestApp, access: &str, concert: &str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/concerts/{concert}/queue")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::OK).await
}

pub(crate) fn stream_of(app: &TestApp, queue_token: &str) -> reqwest::RequestBuilder {
    app.client
        .get(app.url("/api/v1/queue/events"))
        .header("x-queue-token", queue_token)
}

async fn promote(app: &TestApp) {
    let deps = imticket::root::deps(config_from(&app.env)).unwrap();
    imticket::app::waiting_room::promote_all(&deps, &Default::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fan_sees_its_place_fall_and_its_turn_come_without_polling() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1".into());
        env.insert("IMTICKET_QUEUE_PROMOTE_PER_SECOND".into(), "1000".into());
        env.insert("IMTICKET_SSE_KEEPALIVE_SECONDS".into(), "1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 10).await;
    let mut line = Vec::new();
    for _ in 0..4 {
        let fan = app.new_user().await;
        let joined = join(&app, &fan.token, &concert).await;
        line.push(joined["queue_token"].as_str().unwrap().to_owned());
    }
    let mut events = Events::open(stream_of(&app, &line[3])).await;
    match events.next(Duration::from_secs(5)).await {
        Some(Message::Retry(ms)) => assert!((2_000..5_000).contains(&ms), "{ms}"),
        other => panic!("first the reconnect hint, got {other:?}"),
    }
    let (_, first) = events.event(Duration::from_secs(5)).await;
    assert_eq!(
        (first["status"].as_str(), first["position"].as_u64()),
        (Some("waiting"), Some(3))
    );

    // The fans ahead leave one by one and the promoter admits the next: the stream says so,
    // and only when something changed (keep-alive comments in between).
    let mut seen = vec![3];
    for ahead in &line[..3] {
        let response = app
            .client
            .delete(app.url("/api/v1/queue"))
            .header("x-queue-token", ahead)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        promote(&app).await;
        let (_, now) = events.event(Duration::from_secs(40)).await;
        if now["status"] == "active" {
            seen.push(0);
            assert!(now["active_until"].is_string(), "{now}");
            break;
        }
        assert_eq!(now["status"], "waiting", "{now}");
        seen.push(now["position"].as_u64().unwrap());
    }
    assert_eq!(seen, vec![3, 2, 1, 0], "every place, in order, then the turn");
    // Idle now: the stream stays open with comments only.
    let mut comments = 0;
    while comments < 2 {
        match events.next(Duration::from_secs(10)).await {
            Some(Message::Comment(text)) => {
                assert_eq!(text, "keep-alive");
                comments += 1;
            }
            other => panic!("nothing changed, yet {other:?}"),
        }
    }
}

#[tokio::test]
async fn last_event_id_resumes_and_a_finished_entry_ends_the_stream() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_SSE_KEEPALIVE_SECONDS".into(), "1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 10).await;
    let fan = app.new_user().await;
    let queue = join(&app, &fan.token, &concert).await["queue_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut events = Events::open(stream_of(&app, &queue)).await;
    let (id, state) = events.event(Duration::from_secs(5)).await;
    assert_eq!(state["status"], "active");
    drop(events);
    // Back with the id of the state it has: nothing is sent again, only keep-alives.
    let mut events = Events::open(stream_of(&app, &queue).header("last-event-id", &id)).await;
    let mut messages = Vec::new();
    for _ in 0..3 {
        messages.push(events.next(Duration::from_secs(5)).await.unwrap());
    }
    assert!(
        messages[1..].iter().all(|m| matches!(m, Message::Comment(_))),
        "{messages:?}"
    );
    // With an id of another state, the current one at once.
    let mut events = Events::open(stream_of(&app, &queue).header("last-event-id", "0000000000000000")).await;
    let (again, _) = events.event(Duration::from_secs(5)).await;
    assert_eq!(again, id, "the same state has the same id");
    // The fan gives the slot back: a last event, then the stream ends.
    let response = app
        .client
        .delete(app.url("/api/v1/queue"))
        .header("x-queue-token", &queue)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, last) = events.event(Duration::from_secs(40)).await;
    assert_ne!(last["status"], "active", "{last}");
    loop {
        match events.next(Duration::from_secs(10)).await {
            None => break,
            Some(Message::Comment(_)) => continue,
            Some(other) => panic!("after the last state, {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_browser_opens_the_stream_with_a_short_lived_query_token_and_forged_ones_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 10).await;
    let fan = app.new_user().await;
    let queue = join(&app, &fan.token, &concert).await["queue_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .post(app.url("/api/v1/queue/events/token"))
        .header("x-queue-token", &queue)
        .send()
        .await
        .unwrap();
    let minted = expect_status(response, StatusCode::OK).await;
    assert_eq!(minted["expires_in"], 60);
    let token = minted["token"].as_str().unwrap();
    let mut events = Events::open(app.client.get(app.url(&format!("/api/v1/queue/events?token={token}")))).await;
    let (_, state) = events.event(Duration::from_secs(5)).await;
    assert_eq!(state["status"], "active");
    // Refused: no token, a forged one, the long-lived queue token in the query, and the
    // stream token where a queue token belongs.
    let response = app.get("/api/v1/queue/events").await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "missing_queue_token").await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    for query_token in [forged.as_str(), queue.as_str()] {
        let response = app.get(&format!("/api/v1/queue/events?token={query_token}")).await;
        expect_problem(response, StatusCode::UNAUTHORIZED, "invalid_queue_token").await;
    }
    // A malformed query token is refused even beside a good header, and an empty one too.
    for query_token in ["a%20b", "", "%C3%A9"] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/queue/events?token={query_token}")))
            .header("x-queue-token", &queue)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    let response = app
        .client
        .get(app.url("/api/v1/queue/status"))
        .header("x-queue-token", token)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "invalid_queue_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_streams_on_one_process_and_the_next_one_is_told_to_come_back() {
    let app = spawn_app_with(|env| {
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1000000".into());
        env.insert("IMTICKET_QUEUE_PROMOTE_PER_SECOND".into(), "1000000".into());
        env.insert("IMTICKET_SSE_MAX_STREAMS".into(), "300".into());
        // A client that went away is noticed when the next write fails: a keep-alive.
        env.insert("IMTICKET_SSE_KEEPALIVE_SECONDS".into(), "1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let (concert, _) = app.concert_with_schedule(&admin, 10).await;
    let crowd = fans(&app, &concert, 301).await;
    let app = &app;
    let opened: Vec<Events> = futures_util::stream::iter(&crowd[..300])
        .map(|fan| async move {
            let mut events = Events::open(stream_of(app, &fan.queue)).await;
            let (_, state) = events.event(Duration::from_secs(30)).await;
            assert_eq!(state["status"], "active");
            events
        })
        .buffer_unordered(300)
        .collect()
        .await;
    assert_eq!(opened.len(), 300);
    let response = stream_of(app, &crowd[300].queue).send().await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    expect_problem(response, StatusCode::SERVICE_UNAVAILABLE, "too_many_streams").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("sse_open_streams 300"), "{metrics}");
    // A stream its client closed gives its slot back (at the next keep-alive).
    drop(opened);
    eventually(
        "the closed streams' slots to come back",
        Duration::from_secs(10),
        || async {
            let response = stream_of(app, &crowd[300].queue).send().await.unwrap();
            response.status() == StatusCode::OK
        },
    )
    .await;
}
