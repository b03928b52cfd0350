//! `imticket-admin` as an operator meets it: which Redis and PostgreSQL it reaches (flags, then
//! the environment, then `.data/run.env` or `--env-file`), one error line instead of a silent
//! wait when a server does not answer, and the `dlq` arguments it accepts and refuses.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use imticket::stream::dead_letter;

use crate::servers::free_port;
use crate::support::{ADMIN, Backbone, backbone, wait_exit};

struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `imticket-admin` in `dir` with the deployment's environment minus `unset` plus `set`.
/// Fails the test if it has not exited within 15 s.
fn admin_in(b: &Backbone, dir: &Path, unset: &[&str], set: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = b.command(ADMIN);
    for name in unset {
        cmd.env_remove(name);
    }
    let mut child = cmd
        .envs(set.iter().copied())
        .current_dir(dir)
        .args(args)
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let read = |pipe: Option<&mut dyn std::io::Read>| {
        let mut text = String::new();
        pipe.unwrap().read_to_string(&mut text).unwrap();
        text
    };
    Run {
        success: status.success(),
        code: status.code(),
        stdout: read(child.stdout.as_mut().map(|p| p as &mut dyn std::io::Read)),
        stderr: read(child.stderr.as_mut().map(|p| p as &mut dyn std::io::Read)),
    }
}

/// XADDs a dead letter as a consumer of `stream` would; returns its id.
async fn dead_letter_from(b: &Backbone, stream: &str) -> String {
    let original = vec![
        ("event_id".to_owned(), uuid::Uuid::now_v7().to_string()),
        ("type".to_owned(), "probe.ping".to_owned()),
        ("payload".to_owned(), "{}".to_owned()),
    ];
    let fields = dead_letter::fields(&original, &b.key(stream), "1-1", "g", 5, "boom");
    redis::cmd("XADD")
        .arg(b.keys.dead_letter())
        .arg("*")
        .arg(fields)
        .query_async(&mut b.conn().await)
        .await
        .unwrap()
}

const SERVERS: [&str; 3] = ["DATABASE_URL", "REDIS_URL", "IMTICKET_REDIS_KEY_PREFIX"];

#[tokio::test]
async fn dlq_replay_takes_one_id_or_all_optionally_of_one_stream() {
    let b = backbone().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = dead_letter_from(&b, "a").await;
    let a2 = dead_letter_from(&b, "a").await;
    let b1 = dead_letter_from(&b, "b").await;
    let c1 = dead_letter_from(&b, "c").await;

    // Refused by the argument parser, before anything is touched.
    for (args, says) in [
        (&["dlq", "replay"][..], "required arguments were not provided"),
        (&["dlq", "replay", &a1, "--all"][..], "cannot be used with '--all'"),
        (
            &["dlq", "replay", &a1, "--stream", "a"][..],
            "cannot be used with '--stream",
        ),
    ] {
        let run = admin_in(&b, dir.path(), &[], &[], args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("dlq replay --all [--stream <STREAM>]"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(b.xlen(&b.keys.dead_letter()).await, 4, "nothing was replayed");

    let run = admin_in(&b, dir.path(), &[], &[], &["dlq", "replay", "--all", "--stream", "a"]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("2 dead letter(s) replayed"), "{}", run.stdout);
    assert!(run.stdout.contains(&a1) && run.stdout.contains(&a2), "{}", run.stdout);
    assert_eq!(b.xlen(&b.key("a")).await, 2);
    assert_eq!(b.xlen(&b.key("b")).await, 0, "only stream a's dead letters");

    let run = admin_in(&b, dir.path(), &[], &[], &["dlq", "replay", &b1]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("1 dead letter(s) replayed"), "{}", run.stdout);
    assert_eq!(b.xlen(&b.key("b")).await, 1);

    let run = admin_in(&b, dir.path(), &[], &[], &["dlq", "replay", "--all"]);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout.contains(&c1) && run.stdout.contains("1 dead letter(s) replayed"),
        "{}",
        run.stdout
    );
    assert_eq!(b.xlen(&b.keys.dead_letter()).await, 0);
}

#[tokio::test]
async fn dlq_names_a_malformed_or_missing_id() {
    let b = backbone().await;
    let dir = tempfile::tempdir().unwrap();
    let kept = dead_letter_from(&b, "a").await;
    for command in ["show", "replay"] {
        let run = admin_in(&b, dir.path(), &[], &[], &["dlq", command, "garbage"]);
        assert!(!run.success);
        assert_eq!(
            run.stderr, "imticket-admin: not a dead-letter id: garbage (expected <ms>-<seq>)\n",
            "dlq {command}"
        );

        let run = admin_in(&b, dir.path(), &[], &[], &["dlq", command, "1-0"]);
        assert!(!run.success);
        assert_eq!(
            run.stderr, "imticket-admin: no dead letter with id 1-0\n",
            "dlq {command}"
        );
    }
    let run = admin_in(&b, dir.path(), &[], &[], &["dlq", "show", &kept]);
    assert!(
        run.success && run.stdout.contains("boom"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(b.xlen(&b.keys.dead_letter()).await, 1);
}

/// Exactly one line on stderr naming `url`, no password, within a few timeouts.
fn assert_one_error_line(run: &Run, took: Duration, url: &str) {
    assert!(!run.success);
    assert!(took < Duration::from_secs(5), "took {took:?}: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(url), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[tokio::test]
async fn an_unreachable_redis_or_postgres_is_one_error_line_within_the_timeout() {
    let b = backbone().await;
    let dir = tempfile::tempdir().unwrap();
    // Accepts connections (the kernel completes the handshake) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let closed_port = free_port();
    let timeouts = [
        ("IMTICKET_REDIS_TIMEOUT_MS", "300"),
        ("IMTICKET_DB_ACQUIRE_TIMEOUT_MS", "300"),
    ];

    for port in [silent_port, closed_port] {
        let redis_url = format!("redis://:hunter2@127.0.0.1:{port}");
        let mut set = timeouts.to_vec();
        set.push(("REDIS_URL", &redis_url));
        let started = Instant::now();
        let run = admin_in(&b, dir.path(), &[], &set, &["streams"]);
        assert_one_error_line(&run, started.elapsed(), &format!("redis://:***@127.0.0.1:{port}"));
        assert!(run.stderr.contains("cannot reach Redis"), "{}", run.stderr);
        assert!(run.stderr.contains("within 300 ms"), "{}", run.stderr);

        let database_url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/imticket");
        let mut set = timeouts.to_vec();
        set.push(("DATABASE_URL", &database_url));
        let started = Instant::now();
        let run = admin_in(&b, dir.path(), &[], &set, &["outbox", "status"]);
        assert_one_error_line(
            &run,
            started.elapsed(),
            &format!("postgres://postgres:***@127.0.0.1:{port}/imticket"),
        );
        assert!(run.stderr.contains("cannot reach PostgreSQL"), "{}", run.stderr);
    }
    drop(silent);
}

#[tokio::test]
async fn settings_come_from_flags_then_the_environment_then_the_env_file() {
    let b = backbone().await;
    let letter = dead_letter_from(&b, "a").await;
    let env_file = format!(
        "# written by scripts/run.sh\nDATABASE_URL={}\nREDIS_URL={}\nIMTICKET_REDIS_KEY_PREFIX={}\n",
        b.env["DATABASE_URL"], b.env["REDIS_URL"], b.env["IMTICKET_REDIS_KEY_PREFIX"]
    );
    // Where scripts/run.sh writes it: ./.data/run.env, read without being named.
    let clone = tempfile::tempdir().unwrap();
    std::fs::create_dir(clone.path().join(".data")).unwrap();
    std::fs::write(clone.path().join(".data/run.env"), &env_file).unwrap();
    let run = admin_in(&b, clone.path(), &SERVERS, &[], &["dlq", "list"]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains(&letter), "{}", run.stdout);
    let run = admin_in(&b, clone.path(), &SERVERS, &[], &["outbox", "status"]);
    assert!(run.success && run.stdout.contains("unpublished"), "{}", run.stderr);

    // Elsewhere, named by --env-file or IMTICKET_ENV_FILE.
    let elsewhere = tempfile::tempdir().unwrap();
    let named = elsewhere.path().join("deployment.env");
    std::fs::write(&named, &env_file).unwrap();
    let named = named.to_str().unwrap();
    let run = admin_in(
        &b,
        elsewhere.path(),
        &SERVERS,
        &[],
        &["--env-file", named, "dlq", "list"],
    );
    assert!(run.success && run.stdout.contains(&letter), "{}", run.stderr);
    let run = admin_in(
        &b,
        elsewhere.path(),
        &SERVERS,
        &[("IMTICKET_ENV_FILE", named)],
        &["dlq", "list"],
    );
    assert!(run.success && run.stdout.contains(&letter), "{}", run.stderr);
    let run = admin_in(
        &b,
        elsewhere.path(),
        &SERVERS,
        &[],
        &["--env-file", "missing.env", "streams"],
    );
    assert!(!run.success && run.stderr.contains("missing.env"), "{}", run.stderr);

    // The environment wins over the file, and the error says where the address came from.
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let set = [("REDIS_URL", dead.as_str()), ("IMTICKET_REDIS_TIMEOUT_MS", "300")];
    let run = admin_in(&b, clone.path(), &[], &set, &["dlq", "list"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains(&dead) && run.stderr.contains("REDIS_URL from the environment"),
        "{}",
        run.stderr
    );
    let run = admin_in(
        &b,
        elsewhere.path(),
        &SERVERS,
        &[],
        &["--env-file", named, "--redis-url", &dead, "streams"],
    );
    assert!(run.stderr.contains("(--redis-url)"), "{}", run.stderr);

    // A flag wins over the environment.
    let good = b.env["REDIS_URL"].clone();
    let run = admin_in(&b, clone.path(), &[], &set, &["--redis-url", &good, "dlq", "list"]);
    assert!(run.success && run.stdout.contains(&letter), "{}", run.stderr);

    // Redis commands need no database; database commands say what is missing.
    let run = admin_in(&b, elsewhere.path(), &["DATABASE_URL"], &[], &["streams"]);
    assert!(run.success, "{}", run.stderr);
    let run = admin_in(&b, elsewhere.path(), &["DATABASE_URL"], &[], &["outbox", "status"]);
    assert!(!run.success && run.stderr.contains("DATABASE_URL"), "{}", run.stderr);
}
