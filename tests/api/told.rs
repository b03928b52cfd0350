//! Issue 21's "done when", in one on-sale with every role it involves running as it would:
//! a fan who has to wait sees its turn come over SSE without polling, is told its turn, its
//! hold and its ticket by webhook (signatures checked by the Standard Webhooks reference
//! library) and by mail (a local SMTP server, decoded by Python's `email`), and afterwards the
//! statistics and the settlement equal the wallet ledger. Rate limits stay on.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::email::{SmtpSink, mails};
use crate::helpers::*;
use crate::holds::{Fan, charge, fans, hold, pay, sale};
use crate::servers::free_port;
use crate::sse::{Events, join, stream_of};
use crate::statistics::{ledger, settled};
use crate::webhooks::{Receiver, register, verified_type, workers};
use imticket::worker::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fan_is_told_everything_by_every_channel_and_the_books_equal_the_ledger() {
    let smtp = free_port();
    let folder = tempfile::tempdir().unwrap();
    let _sink = SmtpSink::start(smtp, folder.path());
    let (app, concert, schedule, seats) = sale(|env| {
        // Two may book at once; the third fan waits for a slot.
        env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "2".into());
        env.insert("IMTICKET_QUEUE_PROMOTE_PER_SECOND".into(), "100".into());
        env.insert("IMTICKET_SMTP_URL".into(), format!("smtp://127.0.0.1:{smtp}"));
        env.insert("IMTICKET_WEBHOOK_ALLOW_PRIVATE".into(), "true".into());
        // As deployed: a fan's few requests are never limited.
        env.insert("IMTICKET_RATE_LIMITS".into(), "on".into());
    })
    .await;
    let admin = app.admin_token().await;
    let hooks = Receiver::default();
    let endpoint = register(&app, &admin, &hooks.start(), json!(["*"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let _workers = workers(
        &app,
        vec![
            Role::Payment,
            Role::OutboxRelay,
            Role::QueuePromoter,
            Role::Notifications,
            Role::Statistics,
        ],
    );

    let mut ahead = fans(&app, &concert, 2).await;
    // The fan this test follows: signed up, joined, and waiting behind the two.
    let fan = app.new_user().await;
    let joined = join(&app, &fan.token, &concert).await;
    assert_eq!(
        (joined["status"].as_str(), joined["position"].as_u64()),
        (Some("waiting"), Some(1)),
        "{joined}"
    );
    let queue = joined["queue_token"].as_str().unwrap().to_owned();
    let mut events = Events::open(stream_of(&app, &queue)).await;
    let (_, first) = events.event(Duration::from_secs(10)).await;
    assert_eq!(first["status"], "waiting", "{first}");

    // The first fan ahead buys and leaves its slot: the promoter admits ours, pushed over SSE.
    let first_ahead: Fan = ahead.remove(0);
    charge(&app, &first_ahead, Some("c"), json!(500)).await;
    let (status, held) = hold(&app, &first_ahead, &schedule, &seats[..1]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let (status, _) = pay(&app, &first_ahead, held["id"].as_str().unwrap(), "p").await;
    assert_eq!(status, StatusCode::CREATED);
    let admitted = loop {
        let (_, event) = events.event(Duration::from_secs(30)).await;
        if event["status"] != "waiting" {
            break event;
        }
    };
    assert_eq!(admitted["status"], "active", "{admitted}");

    // Our fan books: two seats, paid.
    let ours = Fan {
        id: fan.id.parse().unwrap(),
        access: fan.token.clone(),
        queue,
    };
    charge(&app, &ours, Some("c"), json!(500)).await;
    let (status, held) = hold(&app, &ours, &schedule, &seats[1..3]).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let (status, _) = pay(&app, &ours, held["id"].as_str().unwrap(), "p").await;
    assert_eq!(status, StatusCode::CREATED);

    // Webhooks: the turn, the hold and the ticket, each once, each verified independently.
    let of_ours = || {
        hooks
            .got()
            .into_iter()
            .filter(|g| g.body.contains(&fan.id))
            .collect::<Vec<_>>()
    };
    eventually("the fan's three webhooks", Duration::from_secs(60), || async {
        of_ours().len() >= 3
    })
    .await;
    let mut types: Vec<String> = of_ours().iter().map(|g| verified_type(&secret, g)).collect();
    types.sort();
    assert_eq!(
        types,
        vec!["queue.admitted", "reservation.confirmed", "reservation.created"]
    );

    // Mail: the same three notices at the account's address.
    let address: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1::uuid")
        .bind(&fan.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let subjects = || {
        let mut s: Vec<String> = mails(folder.path())
            .iter()
            .filter(|m| m["envelope_to"][0] == address.as_str())
            .map(|m| m["subject"].as_str().unwrap().split(':').next().unwrap().to_owned())
            .collect();
        s.sort();
        s
    };
    eventually("the fan's three mails", Duration::from_secs(60), || async {
        subjects().len() >= 3
    })
    .await;
    assert_eq!(subjects(), vec!["It's your turn", "Your seats are held", "Your ticket"]);

    // The books: settlement equals the ledger row for row, and the report counts both sales.
    eventually("settlement equal to the ledger", Duration::from_secs(60), || async {
        let ledger = ledger(&app).await;
        !ledger.is_empty() && ledger.iter().map(|l| l.2).sum::<i64>() == 2 && settled(&app).await == ledger
    })
    .await;
    assert_eq!(ledger(&app).await.iter().map(|l| l.3).sum::<i64>(), 300);
    eventually("the concert's report", Duration::from_secs(60), || async {
        let report = expect_status(
            app.get_authed(&format!("/api/v1/admin/reports/concerts/{concert}"), &admin)
                .await,
            StatusCode::OK,
        )
        .await;
        report["funnel"]["paid"] == 2 && report["schedules"][0]["revenue_points"] == 300
    })
    .await;
}
