//! Any number of processes per host: API processes started with one environment share its
//! port (SO_REUSEPORT), every process takes a free port of its metrics range, and each names
//! its metrics address in a Prometheus discovery file while it runs.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;
use crate::servers::Redis;

const API: &str = env!("CARGO_BIN_EXE_imticket-api");
const WORKER: &str = env!("CARGO_BIN_EXE_imticket-worker");

/// A range of `n` ports starting at a random base, for one test's processes.
fn port_range(n: u16) -> (u16, u16) {
    let base = 20_000 + (rand::random::<u16>() % 30_000);
    (base, base + n - 1)
}

/// Starts `cmd` with JSON logs to `log`, and waits for the "listening" lines it must print:
/// their addresses, by message.
fn start(
    mut cmd: std::process::Command,
    log: &Path,
    lines: usize,
) -> (KillOnDrop, Vec<(String, std::net::SocketAddr)>) {
    let file = std::fs::File::create(log).unwrap();
    let child = cmd
        .env("IMTICKET_LOG_FORMAT", "json")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found: Vec<(String, std::net::SocketAddr)> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|line| {
                let fields = &line["fields"];
                let message = fields["message"].as_str()?;
                let addr = fields["addr"].as_str()?.parse().ok()?;
                message.contains("listening").then(|| (message.to_owned(), addr))
            })
            .collect();
        if found.len() >= lines {
            return (child, found);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the process exited ({status}) before listening:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "the process did not start listening:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metrics_port(found: &[(String, std::net::SocketAddr)]) -> u16 {
    found.iter().find(|(m, _)| m == "metrics listening").unwrap().1.port()
}

/// The discovery files of `dir`: target address → service.
fn targets(dir: &Path) -> HashMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .flat_map(|e| {
            let file: Value = serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            file.as_array()
                .unwrap()
                .iter()
                .map(|group| {
                    (
                        group["targets"][0].as_str().unwrap().to_owned(),
                        group["labels"]["service"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_runs_any_number_of_processes_with_one_environment() {
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    let targets_dir = redis.dir().join("targets");
    let (api_first, api_last) = port_range(4);
    let (worker_first, worker_last) = port_range(4);
    env.insert(
        "IMTICKET_API_METRICS_ADDR".into(),
        format!("127.0.0.1:{api_first}-{api_last}"),
    );
    env.insert(
        "IMTICKET_WORKER_METRICS_ADDR".into(),
        format!("127.0.0.1:{worker_first}-{worker_last}"),
    );
    env.insert("IMTICKET_METRICS_TARGETS_DIR".into(), targets_dir.display().to_string());

    // The first API picks the port; the second is started with exactly the same environment.
    let (mut first_api, found) = start(binary_command(API, &env), &redis.dir().join("api-1.log"), 2);
    let http = found.iter().find(|(m, _)| m == "HTTP API listening").unwrap().1;
    env.insert("IMTICKET_HTTP_ADDR".into(), http.to_string());
    let (_second_api, found2) = start(binary_command(API, &env), &redis.dir().join("api-2.log"), 2);
    let api_ports = [metrics_port(&found), metrics_port(&found2)];

    // Three workers of one role, and one without JWT_SECRET (a worker signs nothing).
    let mut workers = Vec::new();
    for n in 0..3 {
        let mut worker_env = env.clone();
        if n == 2 {
            worker_env.remove("JWT_SECRET");
        }
        let mut cmd = binary_command(WORKER, &worker_env);
        cmd.arg("payment");
        workers.push(start(cmd, &redis.dir().join(format!("worker-{n}.log")), 1));
    }
    let worker_ports: Vec<u16> = workers.iter().map(|(_, found)| metrics_port(found)).collect();

    let all: BTreeSet<u16> = api_ports.iter().chain(&worker_ports).copied().collect();
    assert_eq!(all.len(), 5, "every process has its own metrics port: {all:?}");
    assert!(api_ports.iter().all(|p| (api_first..=api_last).contains(p)));
    assert!(worker_ports.iter().all(|p| (worker_first..=worker_last).contains(p)));
    for port in &worker_ports {
        eventually("each worker reports its role", Duration::from_secs(20), || async {
            let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            body.contains(r#"worker_role_up{role="payment"} 1"#)
        })
        .await;
    }
    let listed = targets(&targets_dir);
    assert_eq!(
        listed.keys().cloned().collect::<BTreeSet<_>>(),
        all.iter().map(|p| format!("127.0.0.1:{p}")).collect::<BTreeSet<_>>(),
        "one discovery target per process"
    );
    assert_eq!(listed.values().filter(|s| *s == "imticket-api").count(), 2);

    // The shared port serves, and the kernel spreads new connections over both APIs.
    for _ in 0..60 {
        let response = reqwest::Client::new()
            .get(format!("http://{http}/api/v1/concerts"))
            .header("connection", "close")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    for port in api_ports {
        let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let served: f64 = body
            .lines()
            .filter(|l| l.starts_with("http_requests_total{") && l.contains("/api/v1/concerts\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(
            served > 0.0,
            "the API with metrics on {port} served some of the 60 connections"
        );
    }

    // A worker killed with -9 leaves its file; the next process to start removes it.
    let (mut killed, _) = workers.remove(0);
    let killed_file = targets_dir.join(format!("imticket-worker-{}.json", killed.id()));
    assert!(killed_file.exists());
    killed.kill().unwrap();
    killed.wait().unwrap();
    signal(&first_api, "TERM");
    assert_eq!(wait_exit(&mut first_api, Duration::from_secs(30)).code(), Some(0));
    assert!(
        !targets(&targets_dir).contains_key(&format!("127.0.0.1:{}", api_ports[0])),
        "the stopped API removed its own"
    );
    let mut cmd = binary_command(WORKER, &env);
    cmd.arg("payment");
    let (replacement, found) = start(cmd, &redis.dir().join("worker-3.log"), 1);
    assert!(!killed_file.exists(), "the killed worker's file is gone");
    let listed = targets(&targets_dir);
    assert!(listed.contains_key(&format!("127.0.0.1:{}", metrics_port(&found))));
    assert!(
        targets_dir
            .join(format!("imticket-worker-{}.json", replacement.id()))
            .exists()
    );
    assert_eq!(listed.len(), 4, "one API and three workers: {listed:?}");
}
