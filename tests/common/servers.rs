//! Real PostgreSQL and Redis servers for the tests, started from the system binaries.
//!
//! - One PostgreSQL cluster per test process (initdb into a temporary directory, a free
//!   port, fsync off); every test gets a fresh database in it.
//! - One `redis-server` per test, started with the project's `redis.conf` (AOF on) in its own
//!   temporary directory on a free port, so a test can stop, kill and restart it.
//! - A reaper process stops everything and removes the directories when the test process
//!   exits, even if it is killed.
//!
//! A missing binary fails the suite with an install hint; nothing is skipped silently.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The process-wide scratch directory every server of this test process lives under.
fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(Scratch::create)
}

struct Scratch {
    dir: PathBuf,
    root: bool,
}

impl Scratch {
    fn create() -> Self {
        let root = is_root();
        // /var/tmp rather than the per-user /tmp: the `postgres` user must be able to reach it.
        let dir = tempfile::Builder::new()
            .prefix("imticket-test-")
            .tempdir_in("/var/tmp")
            .unwrap()
            .keep();
        if root {
            // initdb refuses to run as root; PostgreSQL runs as `postgres` and needs the way in.
            run(Command::new("chmod").arg("755").arg(&dir));
        }
        std::fs::write(dir.join("pids"), "").unwrap();
        // The reaper: once this test process is gone, kill what it started and clean up.
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             for p in $(cat '{dir}/pids'); do kill -9 $p 2>/dev/null; done; \
             for f in '{dir}'/pg*/data/postmaster.pid; do [ -f \"$f\" ] && kill -9 $(head -1 \"$f\") 2>/dev/null; done; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            dir = dir.display()
        );
        // Never waited for on purpose: it must outlive this process to clean up after it.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        Self { dir, root }
    }

    fn track(&self, pid: u32) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("pids"))
            .unwrap();
        writeln!(file, "{pid}").unwrap();
    }
}

/// A directory under this test process's scratch directory, removed with it by the reaper.
pub fn scratch_dir() -> &'static Path {
    &scratch().dir
}

/// Has the reaper kill `pid` once this test process is gone, even if it is killed: for the
/// servers other harness files start (HAProxy, `haproxy.rs`).
pub fn reap(pid: u32) {
    scratch().track(pid);
}

use std::os::unix::process::CommandExt;

fn run(cmd: &mut Command) {
    let output = cmd.output().unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

pub struct Postgres {
    pub port: u16,
}

impl Postgres {
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

fn pg_bindir() -> PathBuf {
    if let Ok(out) = Command::new("sh").arg("-c").arg("command -v initdb").output() {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !path.is_empty() {
            return Path::new(&path).parent().unwrap().to_path_buf();
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. The tests start their own \
             PostgreSQL: install it with `apt-get install -y postgresql` (or run scripts/test.sh, which does)."
        )
    })
}

/// The PostgreSQL cluster of this test process, started on first use.
pub fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(|| Cluster::create("pg").start())
}

fn as_owner(program: PathBuf) -> Command {
    if scratch().root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL cluster in the scratch directory (initdb'd once), which can be stopped and
/// started again on the same port.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    /// `synchronous_commit=on`: a commit survives `pg_ctl stop -m immediate` (the shared
    /// cluster, never crashed, trades that for speed).
    durable: bool,
}

impl Cluster {
    /// `initdb` into `<scratch>/<name>`.
    fn create(name: &str) -> Self {
        let scratch = scratch();
        let bin = pg_bindir();
        let pg_dir = scratch.dir.join(name);
        std::fs::create_dir_all(&pg_dir).unwrap();
        if scratch.root {
            run(Command::new("chown").arg("postgres:").arg(&pg_dir));
        }
        run(as_owner(bin.join("initdb")).arg("-D").arg(pg_dir.join("data")).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-instructions",
        ]));
        Self {
            dir: pg_dir,
            port: 0,
            durable: false,
        }
    }

    fn options(&self, port: u16) -> String {
        let synchronous_commit = if self.durable { "on" } else { "off" };
        format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit={synchronous_commit} \
             -c full_page_writes=off -c max_connections=1000 -c shared_buffers=128MB \
             -c shared_preload_libraries=pg_stat_statements",
            self.dir.display()
        )
    }

    /// Starts it on a free port (retrying on another if a parallel process took this one).
    fn start(&mut self) -> Postgres {
        let mut attempts = 0;
        loop {
            let port = free_port();
            if self.pg_ctl_start(port) {
                self.port = port;
                return Postgres { port };
            }
            attempts += 1;
            assert!(
                attempts < 5,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
        }
    }

    fn pg_ctl_start(&self, port: u16) -> bool {
        as_owner(pg_bindir().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &self.options(port), "start"])
            .output()
            .unwrap()
            .status
            .success()
    }
}

/// A PostgreSQL cluster of one test's own, for the tests that stop it: the shared one serves
/// every other test of the process.
pub struct OwnPostgres {
    cluster: Cluster,
    pub server: Postgres,
}

impl OwnPostgres {
    pub fn start() -> Self {
        let name = format!("pg-{}", uuid::Uuid::new_v4().simple());
        let mut cluster = Cluster::create(&name);
        cluster.durable = true;
        let server = cluster.start();
        Self { cluster, server }
    }

    /// `pg_ctl stop -m immediate`: every backend is killed at once, as in a crash.
    pub fn stop_immediately(&self) {
        run(as_owner(pg_bindir().join("pg_ctl"))
            .arg("-D")
            .arg(self.cluster.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]));
    }

    /// Starts it again on the same port (crash recovery replays its WAL).
    pub fn restart(&self) {
        assert!(
            self.cluster.pg_ctl_start(self.cluster.port),
            "PostgreSQL did not restart: {}",
            std::fs::read_to_string(self.cluster.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// A fresh database in it; returns its URL.
    pub async fn fresh_database(&self) -> String {
        create_database(&self.server).await
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_owner(pg_bindir().join("pg_ctl"))
            .arg("-D")
            .arg(self.cluster.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A fresh, empty database in the test cluster; returns its URL. With
/// `IMTICKET_TEST_PGBOUNCER=1` the URL goes through the shared [`PgBouncer`] (transaction
/// pooling) instead of straight to PostgreSQL; [`direct_url`] gives the direct one.
pub async fn fresh_database() -> String {
    let url = fresh_database_direct().await;
    if through_pgbouncer() {
        pgbouncer().url_for(&url)
    } else {
        url
    }
}

/// A fresh, empty database in the test cluster, reached directly whatever
/// `IMTICKET_TEST_PGBOUNCER` says.
pub async fn fresh_database_direct() -> String {
    create_database(postgres()).await
}

/// The URL of the same database straight at PostgreSQL: what a test uses to look at the data
/// itself, and what migrations need when the application goes through the pooler.
pub fn direct_url(url: &str) -> String {
    match pgbouncer_if_started() {
        Some(bouncer) => url.replace(&format!(":{}/", bouncer.port), &format!(":{}/", postgres().port)),
        None => url.to_owned(),
    }
}

/// `IMTICKET_TEST_PGBOUNCER=1`: every test database is reached through PgBouncer.
pub fn through_pgbouncer() -> bool {
    std::env::var("IMTICKET_TEST_PGBOUNCER").is_ok_and(|v| v == "1")
}

/// The `IMTICKET_DB_POOLER` the test databases need.
pub fn pooler() -> imticket::config::Pooler {
    if through_pgbouncer() {
        imticket::config::Pooler::Transaction
    } else {
        imticket::config::Pooler::None
    }
}

/// [`pooler`] as `IMTICKET_DB_POOLER` says it, for a process's environment.
pub fn pooler_setting() -> &'static str {
    match pooler() {
        imticket::config::Pooler::None => "none",
        imticket::config::Pooler::Transaction => "transaction",
    }
}

/// The application's view of `url`'s database, built as the services build theirs with the
/// tests' [`pooler`].
pub fn app_db(url: &str) -> imticket::infra::postgres::Db {
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let options = match pooler() {
        imticket::config::Pooler::None => options,
        imticket::config::Pooler::Transaction => options.statement_cache_capacity(0).extra_float_digits(None),
    };
    imticket::infra::postgres::Db::new(sqlx::PgPool::connect_lazy_with(options), pooler())
}

/// A pool for a test's own statements on `url`'s database, straight at PostgreSQL: only the
/// application goes through the pooler; a test looks at the data itself.
pub async fn direct_pool(url: &str) -> sqlx::PgPool {
    sqlx::PgPool::connect(&direct_url(url)).await.unwrap()
}

async fn create_database(pg: &Postgres) -> String {
    use sqlx::Connection;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&pg.admin_url()).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    pg.url(&name)
}

// ---------------------------------------------------------------------------------------------
// PgBouncer

/// The PgBouncer of this test process, in front of its shared PostgreSQL: transaction pooling,
/// a wildcard database entry (every fresh database is reachable at once), a small server pool
/// per database and room for thousands of clients. The tests that stop PostgreSQL
/// ([`OwnPostgres`]) talk to their own cluster directly.
pub struct PgBouncer {
    pub port: u16,
    dir: PathBuf,
}

/// Server connections PgBouncer keeps per database: far fewer than the clients (an API's pool
/// is 20), so the tests run the way a scaled-out deployment does.
pub const PGBOUNCER_POOL_SIZE: u32 = 4;

/// A database entry of PgBouncer's with one server session for all its clients (PostgreSQL's
/// `postgres` database): every client's transaction follows another client's in that same
/// session, the harshest case for what a client leaves there. For statements that touch no
/// table.
const ONE_SESSION: &str = "one_session";

static PGBOUNCER: OnceLock<PgBouncer> = OnceLock::new();

/// The shared PgBouncer, started on first use.
pub fn pgbouncer() -> &'static PgBouncer {
    PGBOUNCER.get_or_init(|| PgBouncer::start(postgres()))
}

fn pgbouncer_if_started() -> Option<&'static PgBouncer> {
    PGBOUNCER.get()
}

fn pgbouncer_binary() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "pgbouncer not found. IMTICKET_TEST_PGBOUNCER=1 runs the tests through PgBouncer: install it \
                 with `apt-get install -y pgbouncer` (or run scripts/test.sh, which does)."
            )
        })
}

impl PgBouncer {
    fn start(pg: &Postgres) -> Self {
        let scratch = scratch();
        let binary = pgbouncer_binary();
        let dir = scratch.dir.join("pgbouncer");
        std::fs::create_dir_all(&dir).unwrap();
        // `trust` still wants the user listed.
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
        if scratch.root {
            // PgBouncer refuses to run as root; it runs as `postgres`, like the cluster.
            run(Command::new("chown").arg("-R").arg("postgres:").arg(&dir));
        }
        let mut attempts = 0;
        loop {
            let port = free_port();
            let config = dir.join("pgbouncer.ini");
            std::fs::write(&config, Self::config(&dir, pg.port, port)).unwrap();
            // `-d`: it daemonizes once it listens and writes its pid file, which the reaper
            // reads. The soft descriptor limit goes up to the hard one for max_client_conn.
            let script = format!(
                "ulimit -n $(ulimit -Hn); exec '{}' -d '{}'",
                binary.display(),
                config.display()
            );
            let mut cmd = if scratch.root {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--", "sh", "-c", &script]);
                cmd
            } else {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", &script]);
                cmd
            };
            if cmd.output().unwrap().status.success() {
                let bouncer = Self { port, dir: dir.clone() };
                if let Some(pid) = bouncer.wait_until_it_answers() {
                    scratch.track(pid);
                    return bouncer;
                }
            }
            // One that wrote its pid file but never listened must not outlive the attempt.
            if let Some(pid) = Self::pid(&dir) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            let _ = std::fs::remove_file(dir.join("pgbouncer.pid"));
            attempts += 1;
            assert!(
                attempts < 5,
                "PgBouncer did not start: {}",
                std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
            );
        }
    }

    fn config(dir: &Path, pg_port: u16, port: u16) -> String {
        format!(
            "[databases]\n\
             * = host=127.0.0.1 port={pg_port}\n\
             {ONE_SESSION} = host=127.0.0.1 port={pg_port} dbname=postgres pool_size=1\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             admin_users = postgres\n\
             pool_mode = transaction\n\
             default_pool_size = {PGBOUNCER_POOL_SIZE}\n\
             max_client_conn = 10000\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            dir = dir.display()
        )
    }

    fn pid(dir: &Path) -> Option<u32> {
        std::fs::read_to_string(dir.join("pgbouncer.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Its pid once it has written its pid file and listens; `None` if it did not within 20 s
    /// (another process took the port first).
    fn wait_until_it_answers(&self) -> Option<u32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(pid) = Self::pid(&self.dir)
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return Some(pid);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `url` (a database of the shared cluster) through this PgBouncer.
    pub fn url_for(&self, url: &str) -> String {
        url.replace(&format!(":{}/", postgres().port), &format!(":{}/", self.port))
    }

    /// The URL of [`ONE_SESSION`].
    pub fn one_session_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{ONE_SESSION}", self.port)
    }

    /// A `SHOW` of its admin console (`POOLS`, `STATS`, …) through `psql`: one map of column
    /// to value per row.
    pub fn show(&self, what: &str) -> Vec<std::collections::HashMap<String, String>> {
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args([
                "-A",
                "-F",
                "|",
                "-P",
                "footer=off",
                "-c",
                &format!("SHOW {what}"),
                "pgbouncer",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "SHOW {what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines();
        let columns: Vec<&str> = lines.next().unwrap_or_default().split('|').collect();
        lines
            .map(|line| {
                columns
                    .iter()
                    .zip(line.split('|'))
                    .map(|(c, v)| ((*c).to_owned(), v.to_owned()))
                    .collect()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Redis

/// The Redis of one test. By default a `redis-server` of its own, listening on a Unix socket
/// in its own directory and on no TCP port: after a test kills it, no other test's server can
/// take its address (a freed TCP port could be, and clients would silently reconnect to the
/// wrong server). Stopped (SIGKILL) when dropped.
///
/// With `IMTICKET_TEST_REDIS_CLUSTER=1` every test of the process shares one local Redis
/// Cluster (3 masters + 3 replicas, `scripts/redis-cluster.sh`) under a key prefix of its own;
/// a test that stops or kills its Redis cannot run so and fails saying it (`scripts/test.sh`
/// leaves those out of the cluster pass).
pub struct Redis {
    own: Option<OwnRedis>,
    prefix: String,
    /// The seeds of the cluster it is on, if it is.
    cluster_url: String,
}

struct OwnRedis {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn redis_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("redis.conf")
}

/// Whether this test process runs its tests on the shared Redis Cluster.
pub fn on_cluster() -> bool {
    std::env::var("IMTICKET_TEST_REDIS_CLUSTER").is_ok_and(|v| v == "1")
}

/// A local Redis Cluster (3 masters + 3 replicas, `scripts/redis-cluster.sh`, this repo's
/// `redis.conf`), its nodes tracked by the reaper.
pub struct RedisCluster {
    dir: PathBuf,
    url: String,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = scratch().dir.join(format!("cluster-{}", uuid::Uuid::new_v4().simple()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis-cluster.sh");
        let output = Command::new("bash")
            .arg(script)
            .arg("start")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let cluster = Self {
            url: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            dir,
        };
        // Tracked before anything is asserted, so the reaper stops the nodes whatever happens.
        for (_, pid) in cluster.nodes() {
            scratch().track(pid);
        }
        assert!(
            output.status.success(),
            "scripts/redis-cluster.sh start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        cluster
    }

    /// The seed nodes, as `REDIS_URL` lists them.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// (port, pid) of every node.
    pub fn nodes(&self) -> Vec<(u16, u32)> {
        std::fs::read_to_string(self.dir.join("nodes"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                // "HOST:PORT PID NETNS"
                let mut fields = line.split_whitespace();
                let port = fields.next()?.rsplit(':').next()?.parse().ok()?;
                Some((port, fields.next()?.parse().ok()?))
            })
            .collect()
    }

    /// `redis-cli -p <port> <args…>` on one node; its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The port of the master serving `key`, and of its replicas. Right after a failover the
    /// node asked may not have heard of the promotion yet (it lists the old master as failed
    /// and no other): asked again until one is named, for up to 30 s.
    pub fn master_of(&self, key: &str) -> (u16, Vec<u16>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.try_master_of(key) {
                Ok(found) => return found,
                Err(why) if Instant::now() > deadline => panic!("{why}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn try_master_of(&self, key: &str) -> Result<(u16, Vec<u16>), String> {
        // Asked of the first node that answers (one may have just been killed).
        let port = self
            .nodes()
            .into_iter()
            .map(|(port, _)| port)
            .find(|port| {
                Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "PING"])
                    .output()
                    .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"PONG"))
            })
            .expect("no node of the cluster answers");
        let slot: u16 = self.cli(port, &["CLUSTER", "KEYSLOT", key]).trim().parse().unwrap();
        let nodes = self.cli(port, &["CLUSTER", "NODES"]);
        let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split(' ').collect()).collect();
        let port_of = |fields: &[&str]| -> u16 {
            fields[1]
                .split('@')
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let Some(master) = lines.iter().find(|f| {
            f[2].contains("master")
                && !f[2].contains("fail")
                && f[8..].iter().any(|range| {
                    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                    lo.parse::<u16>().is_ok_and(|lo| lo <= slot) && hi.parse::<u16>().is_ok_and(|hi| slot <= hi)
                })
        }) else {
            return Err(format!("no master serves slot {slot}: {nodes}"));
        };
        let replicas = lines
            .iter()
            .filter(|f| f[3] == master[0] && f[2].contains("slave"))
            .map(|f| port_of(f))
            .collect();
        Ok((port_of(master), replicas))
    }

    /// `kill -9` of the master serving `key` (`scripts/redis-cluster.sh kill`); its port.
    pub fn kill_master_of(&self, key: &str) -> u16 {
        let (master, _) = self.master_of(key);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis-cluster.sh");
        let output = Command::new("bash")
            .arg(script)
            .arg("kill")
            .arg(&self.dir)
            .arg(master.to_string())
            .output()
            .unwrap();
        assert!(output.status.success(), "kill {master}: {output:?}");
        master
    }

    /// Every node forgets its scripts (as a node restarted or promoted without them would).
    pub fn flush_scripts(&self) {
        for (port, _) in self.nodes() {
            self.cli(port, &["SCRIPT", "FLUSH"]);
        }
    }

    /// A manual failover (`CLUSTER FAILOVER` on a replica) of the master serving `key`; returns
    /// once the replica is master and every node says the cluster is up.
    pub fn fail_over(&self, key: &str) -> u16 {
        // A replica that was just promoted, or just started, may not be listed under its
        // master yet.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (old, replicas) = loop {
            let (master, replicas) = self.master_of(key);
            if !replicas.is_empty() {
                break (master, replicas);
            }
            assert!(Instant::now() < deadline, "the master of {key} has no replica");
            std::thread::sleep(Duration::from_millis(100));
        };
        let replica = replicas[0];
        self.cli(replica, &["CLUSTER", "FAILOVER"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut asked = Instant::now();
        loop {
            let promoted = self.master_of(key).0 == replica;
            // A manual failover gives up after cluster-mf-timeout (5 s) when the master is slow
            // to pause (a loaded machine): ask again.
            if !promoted && asked.elapsed() > Duration::from_secs(10) {
                self.cli(replica, &["CLUSTER", "FAILOVER"]);
                asked = Instant::now();
            }
            let up = self
                .nodes()
                .iter()
                .all(|(port, _)| self.cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            if promoted && up {
                return old;
            }
            assert!(
                Instant::now() < deadline,
                "the failover of {old} to {replica} did not finish"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The Redis Cluster every test of this process shares on the cluster pass (started on first use).
fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

impl Redis {
    pub fn start() -> Self {
        if on_cluster() {
            return Self::on(shared_cluster());
        }
        let dir = tempfile::Builder::new()
            .prefix("redis-")
            .tempdir_in(&scratch().dir)
            .unwrap();
        let mut redis = Self {
            own: Some(OwnRedis { dir, child: None }),
            prefix: String::new(),
            cluster_url: String::new(),
        };
        redis.restart();
        redis
    }

    /// A deployment's share of `cluster`: a key prefix of its own.
    pub fn on(cluster: &RedisCluster) -> Self {
        Self {
            own: None,
            prefix: format!("t{}:", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            cluster_url: cluster.url().to_owned(),
        }
    }

    fn own(&mut self) -> &mut OwnRedis {
        self.own
            .as_mut()
            .expect("this test stops or restarts its Redis: it needs one of its own, not the shared cluster (leave it out of the cluster pass in scripts/test.sh)")
    }

    /// The settings a deployment on this Redis needs: `REDIS_URL`, and on the cluster
    /// `IMTICKET_REDIS_CLUSTER` and a key prefix of this test's own.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("REDIS_URL".to_owned(), self.url())];
        if self.own.is_none() {
            env.push(("IMTICKET_REDIS_CLUSTER".to_owned(), "true".to_owned()));
            env.push(("IMTICKET_REDIS_KEY_PREFIX".to_owned(), self.prefix.clone()));
        }
        env
    }

    fn socket(&self) -> PathBuf {
        self.own
            .as_ref()
            .map(|own| own.dir.path().join("redis.sock"))
            .unwrap_or_default()
    }

    pub fn url(&self) -> String {
        match &self.own {
            Some(_) => format!("redis+unix://{}", self.socket().display()),
            None => self.cluster_url.clone(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.own
            .as_ref()
            .map(|own| own.dir.path())
            .expect("this test reads its Redis's files: it needs one of its own, not the shared cluster")
    }

    /// (Re)starts the server with the same socket and data directory; AOF contents survive.
    pub fn restart(&mut self) {
        let socket = self.socket();
        let own = self.own();
        assert!(own.child.is_none(), "redis-server is already running");
        let mut child = Command::new("redis-server")
            .arg(redis_conf())
            .args(["--port", "0", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(own.dir.path())
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start redis-server ({e}). The tests start their own Redis: install it with `apt-get install -y redis-server`.")
            });
        scratch().track(child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while !answers(&socket) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "redis-server exited ({status}); see {}",
                    own.dir.path().join("redis.log").display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not come up; see {}",
                own.dir.path().join("redis.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        own.child = Some(child);
    }

    /// A clean stop (`SHUTDOWN`): Redis writes out its AOF first, so everything it held is
    /// there again after [`Self::restart`], like after an operator's restart.
    pub fn stop(&mut self) {
        use std::io::Read;
        let socket = self.socket();
        if let Some(mut child) = self.own().child.take() {
            if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) {
                let _ = s.write_all(b"SHUTDOWN\r\n");
                let _ = s.read(&mut [0u8; 64]);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "redis-server did not shut down");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// `kill -9`: no shutdown save, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.own().child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn answers(socket: &Path) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.own.as_mut().and_then(|own| own.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
