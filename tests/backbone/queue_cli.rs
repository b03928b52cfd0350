//! `imticket-admin queue list` and `queue stats`: what an operator sees of the waiting rooms,
//! as tables and as JSON, after real joins through the use case.

use imticket::app::Deps;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::config_from;
use crate::support::{ADMIN, Backbone, backbone};

/// The backbone's deployment with one active slot per concert, so the second joiner waits.
fn one_slot(b: &Backbone) -> Deps {
    let mut env = b.env.clone();
    env.insert("IMTICKET_QUEUE_ACTIVE_CAPACITY".into(), "1".into());
    imticket::root::deps(config_from(&env)).unwrap()
}

async fn concert(b: &Backbone) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO concerts (id, title) VALUES ($1, 'x')")
        .bind(id)
        .execute(&b.db)
        .await
        .unwrap();
    id
}

async fn join(deps: &Deps, concert: Uuid, fans: usize) {
    for _ in 0..fans {
        imticket::app::waiting_room::join(deps, Uuid::now_v7(), concert)
            .await
            .unwrap();
    }
}

/// The table row of `concert`, split on whitespace.
fn row(table: &str, concert: Uuid) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&concert.to_string()))
        .unwrap_or_else(|| panic!("no row for {concert} in\n{table}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn queue_list_and_stats_show_every_open_line_as_a_table_and_as_json() {
    let b = backbone().await;
    let deps = one_slot(&b);
    // Open now: the first joiner takes the one slot, the next three wait.
    let open = concert(&b).await;
    join(&deps, open, 4).await;
    // Opening in an hour: everyone who joins waits in the pre-queue. The opening is set in
    // the room itself, as the first join records the concert's sale_opens_at.
    let later = concert(&b).await;
    let opens_at_ms = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let () = redis::cmd("HSET")
        .arg(b.keys.queue(later).meta)
        .arg("opens_at")
        .arg(opens_at_ms)
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    join(&deps, later, 2).await;

    let table = b.admin(&["queue", "list"]);
    assert!(table.starts_with("CONCERT"), "{table}");
    assert_eq!(
        row(&table, open)[1..],
        ["3", "0", "1", "1", "no", "open"],
        "waiting, pre-queue, active, admitted in the last minute, sold out, opens at:\n{table}"
    );
    let pre = row(&table, later);
    assert_eq!(pre[1..6], ["0", "2", "0", "0", "no"], "{table}");
    assert!(
        pre[6].ends_with('Z') && pre[6].len() == 24,
        "opens at, RFC 3339: {table}"
    );
    assert!(table.trim_end().ends_with("2 open line(s)"), "{table}");

    let listed: Value = serde_json::from_str(&b.admin(&["queue", "list", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["concert_id"], open.to_string(), "the longest line first");
    assert_eq!(
        (&listed[0]["waiting"], &listed[0]["active"], &listed[0]["opens_at"]),
        (&Value::from(3), &Value::from(1), &Value::Null)
    );
    assert_eq!(listed[1]["pre_queue"], 2);
    assert_eq!(listed[1]["opens_at_ms"], opens_at_ms);

    let one = b.admin(&["queue", "stats", &open.to_string()]);
    assert_eq!(one.lines().count(), 2, "a header and one row:\n{one}");
    assert_eq!(row(&one, open)[1..4], ["3", "0", "1"]);
    let one: Value = serde_json::from_str(&b.admin(&["queue", "stats", &later.to_string(), "--json"])).unwrap();
    assert_eq!(
        (&one["exists"], &one["pre_queue"]),
        (&Value::Bool(true), &Value::from(2))
    );
}

#[tokio::test]
async fn queue_stats_names_a_concert_without_a_room_and_refuses_a_malformed_id() {
    let b = backbone().await;
    let unknown = Uuid::now_v7();

    let said = b.admin(&["queue", "stats", &unknown.to_string()]);
    assert_eq!(said.trim(), format!("no waiting room for {unknown}"));
    let json: Value = serde_json::from_str(&b.admin(&["queue", "stats", &unknown.to_string(), "--json"])).unwrap();
    assert_eq!(
        (&json["exists"], &json["waiting"], &json["active"]),
        (&Value::Bool(false), &Value::from(0), &Value::from(0))
    );
    assert_eq!(
        b.admin(&["queue", "list"]).trim_end().lines().last(),
        Some("0 open line(s)")
    );

    let output = b
        .command(ADMIN)
        .args(["queue", "stats", "not-a-uuid"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a concert id: not-a-uuid (expected a UUID)"),
        "{stderr}"
    );
}
