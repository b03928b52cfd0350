//! Email and reminders end to end, through a local SMTP server (aiosmtpd, started here; mail
//! decoded by Python's own `email` package): a fan is mailed the turn, the hold, the
//! "expires soon" reminder and the ticket, once each; another the expiry; preferences choose
//! notices and channels; a reminder whose hold was paid first is skipped; mail queued while the
//! SMTP server is down is sent when it comes back, once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::holds::{Fan, charge, fans, hold, pay, sale};
use crate::servers::free_port;
use crate::webhooks::{Receiver, register, verified_type, workers};
use imticket::worker::Role;

/// A local SMTP server writing each mail it takes to a folder; stopped on drop.
pub(crate) struct SmtpSink {
    child: Child,
}

impl SmtpSink {
    pub(crate) fn start(port: u16, folder: &Path) -> Self {
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/smtp_sink.py"))
            .arg(port.to_string())
            .arg(folder)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut ready).unwrap();
        if ready.trim() != "ready" {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the SMTP sink did not start (`pip install aiosmtpd==1.4.6`; scripts/test.sh installs it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self { child }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every mail the sink took, in no particular order.
pub(crate) fn mails(folder: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// The subjects mailed to `fan`, sorted.
fn subjects_of(folder: &Path, fan: &Fan) -> Vec<String> {
    let address = format!("fan-{}@example.com", fan.id);
    let mut subjects: Vec<String> = mails(folder)
        .iter()
        .filter(|m| m["envelope_to"][0] == address.as_str())
        .map(|m| m["subject"].as_str().unwrap().split(':').next().unwrap().to_owned())
        .collect();
    subjects.sort();
    subjects
}

fn mail_env(env: &mut HashMap<String, String>, port: u16) {
    env.insert("IMTICKET_SMTP_URL".into(), format!("smtp://127.0.0.1:{port}"));
    env.insert("IMTICKET_WEBHOOK_ALLOW_PRIVATE".into(), "true".into());
}

async fn set_preferences(app: &TestApp, fan: &Fan, prefs: Value) {
    let response = app
        .client
        .put(app.url("/api/v1/users/me/notifications"))
        .bearer_auth(&fan.access)
        .json(&prefs)
        .send()
        .await
        .unwrap();
    let answered = expect_status(response, StatusCode::OK).await;
    assert_eq!(answered, prefs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fans_are_mailed_and_hooked_the_turn_hold_reminder_ticket_and_expiry_as_they_chose() {
    let port = free_port();
    let folder = tempfile::tempdir().unwrap();
    let _sink = SmtpSink::start(port, folder.path());
    let (app, concert, schedule, seats) = sale(|env| {
        mail_env(env, port);
        // A hold lasts 20 s and its reminder goes 14 s before the end: 6 s after the hold.
        env.insert("IMTICKET_HOLD_TTL_SECONDS".into(), "20".into());
        env.insert("IMTICKET_NOTIFY_HOLD_REMINDER_SECONDS".into(), "14".into());
    })
    .await;
    let admin = app.admin_token().await;
    let hooks = Receiver::default();
    let endpoint = register(&app, &admin, &hooks.start(), json!(["*"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let mut fans = fans(&app, &concert, 3).await;
    let (payer, quiet, lapsed) = (fans.remove(0), fans.remove(0), fans.remove(0));
    // Chosen before the notifications group reads the admissions (its worker starts below).
    let defaults = expect_status(
        app.get_authed("/api/v1/users/me/notifications", &quiet.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(defaults, json!({"email": true, "webhook": true, "muted": []}));
    set_preferences(&app, &quiet, json!({"email": false, "webhook": true, "muted": []})).await;
    set_preferences(
        &app,
        &lapsed,
        json!({"email": true, "webhook": false, "muted": ["reservation.expiring"]}),
    )
    .await;
    let _workers = workers(
        &app,
        vec![
            Role::Payment,
            Role::Expiry,
            Role::ExpiryScheduler,
            Role::OutboxRelay,
            Role::Notifications,
        ],
    );
    for fan in [&payer, &quiet] {
        charge(&app, fan, Some("c"), json!(500)).await;
    }
    let (status, payer_hold) = hold(&app, &payer, &schedule, &seats[..2]).await;
    assert_eq!(status, StatusCode::CREATED, "{payer_hold}");
    let (status, quiet_hold) = hold(&app, &quiet, &schedule, &seats[2..3]).await;
    assert_eq!(status, StatusCode::CREATED, "{quiet_hold}");
    let (status, lapsed_hold) = hold(&app, &lapsed, &schedule, &seats[3..4]).await;
    assert_eq!(status, StatusCode::CREATED, "{lapsed_hold}");
    // The quiet fan pays at once: the reminder scheduled for them is skipped.
    let (status, _) = pay(&app, &quiet, quiet_hold["id"].as_str().unwrap(), "p").await;
    assert_eq!(status, StatusCode::CREATED);

    let dir = folder.path();
    // Both channels' reminders are out before the payer pays: one sent after the payment
    // would be skipped (the hold is settled), which is right but not what this test checks.
    eventually(
        "the payer's reminder by mail and by webhook",
        Duration::from_secs(30),
        || async {
            subjects_of(dir, &payer).contains(&"Your hold expires soon".to_owned())
                && hooks.got().iter().any(|g| {
                    g.body.contains(&payer.id.to_string()) && verified_type(&secret, g) == "reservation.expiring"
                })
        },
    )
    .await;
    let (status, _) = pay(&app, &payer, payer_hold["id"].as_str().unwrap(), "p").await;
    assert_eq!(status, StatusCode::CREATED, "paid before the hold ran out");
    eventually(
        "the payer's ticket and the lapsed fan's expiry",
        Duration::from_secs(60),
        || async {
            subjects_of(dir, &payer).contains(&"Your ticket".to_owned())
                && subjects_of(dir, &lapsed).contains(&"Your hold ran out".to_owned())
        },
    )
    .await;

    assert_eq!(
        subjects_of(dir, &payer),
        vec![
            "It's your turn",
            "Your hold expires soon",
            "Your seats are held",
            "Your ticket"
        ],
        "each notice once"
    );
    assert_eq!(
        subjects_of(dir, &lapsed),
        vec!["It's your turn", "Your hold ran out", "Your seats are held"],
        "no reminder: muted"
    );
    assert!(subjects_of(dir, &quiet).is_empty(), "email turned off");
    let address = format!("fan-{}@example.com", payer.id);
    let ticket = mails(dir)
        .into_iter()
        .find(|m| m["envelope_to"][0] == address.as_str() && m["subject"].as_str().unwrap().starts_with("Your ticket"))
        .unwrap();
    let code: String = sqlx::query_scalar("SELECT ticket_code FROM reservations WHERE id = $1::uuid")
        .bind(payer_hold["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    for part in ["text", "html"] {
        let body = ticket[part].as_str().unwrap();
        assert!(body.contains(&code), "{part}: {body}");
        assert!(body.contains("row 1, seat"), "{part}: {body}");
    }
    assert_eq!(ticket["to"], address.as_str());
    assert!(
        ticket["message_id"]
            .as_str()
            .unwrap()
            .contains(".reservation.confirmed@")
    );

    // Webhooks: every notice of the payer and the quiet fan (webhook on), none of the lapsed
    // one (webhook off); the quiet fan's reminder was skipped, the payer's sent.
    eventually("the webhook deliveries", Duration::from_secs(30), || async {
        hooks
            .got()
            .iter()
            .filter(|g| g.body.contains(&payer.id.to_string()))
            .count()
            >= 4
    })
    .await;
    let mut told: Vec<(String, String)> = hooks
        .got()
        .iter()
        .map(|g| {
            let body: Value = serde_json::from_str(&g.body).unwrap();
            (
                body["data"]["user_id"].as_str().unwrap().to_owned(),
                verified_type(&secret, g),
            )
        })
        .collect();
    told.sort();
    let of = |fan: &Fan| -> Vec<String> {
        told.iter()
            .filter(|(u, _)| *u == fan.id.to_string())
            .map(|(_, t)| t.clone())
            .collect::<Vec<_>>()
    };
    let mut payer_types = of(&payer);
    payer_types.sort();
    assert_eq!(
        payer_types,
        vec![
            "queue.admitted",
            "reservation.confirmed",
            "reservation.created",
            "reservation.expiring"
        ]
    );
    assert!(of(&lapsed).is_empty(), "{told:?}");
    let skipped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'skipped' AND while_held = $1::uuid",
    )
    .bind(quiet_hold["id"].as_str().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(skipped, 1, "the quiet fan's reminder was skipped: they had paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_while_smtp_is_down_is_sent_when_it_returns_once_each() {
    let port = free_port();
    let folder = tempfile::tempdir().unwrap();
    let (app, concert, _, _) = sale(|env| mail_env(env, port)).await;
    let _workers = workers(&app, vec![Role::Notifications]);
    let admitted = fans(&app, &concert, 5).await;
    // Nothing listens on the port: every mail is tried, fails, and stays pending.
    eventually("every mail tried and failed", Duration::from_secs(30), || async {
        let failed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM email_deliveries WHERE status = 'pending' AND attempts >= 1 AND last_error IS NOT NULL",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        failed == 5
    })
    .await;
    let _sink = SmtpSink::start(port, folder.path());
    let dir: PathBuf = folder.path().to_owned();
    eventually("the mails once the server is back", Duration::from_secs(60), || async {
        mails(&dir).len() >= 5
    })
    .await;
    // The next round has nothing left to send: no mail twice.
    eventually("every mail sent", Duration::from_secs(10), || async {
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM email_deliveries WHERE status = 'sent'")
            .fetch_one(&app.db)
            .await
            .unwrap();
        sent == 5
    })
    .await;
    for fan in &admitted {
        assert_eq!(subjects_of(&dir, fan), vec!["It's your turn"]);
    }
    assert_eq!(mails(&dir).len(), 5);
}

#[tokio::test]
async fn preferences_name_known_notices_and_need_a_login() {
    let app = spawn_app().await;
    let fan = app.new_user().await;
    let put = |body: Value| {
        app.client
            .put(app.url("/api/v1/users/me/notifications"))
            .bearer_auth(&fan.token)
            .json(&body)
            .send()
    };
    let response = put(json!({"email": true, "webhook": true, "muted": ["payment.refunded"]}))
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let twice = json!({"email": true, "webhook": true, "muted": ["queue.admitted", "queue.admitted"]});
    let response = put(twice).await.unwrap();
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let response = put(json!({"email": true})).await.unwrap();
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert_eq!(app.count("notification_preferences").await, 0, "nothing was stored");
    let response = app
        .client
        .get(app.url("/api/v1/users/me/notifications"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
