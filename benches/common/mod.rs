//! Shared benchmark helpers: a PostgreSQL database kept between runs, the release binary started as a child
//! process, and `wrk` (Debian package `wrk`) as the load generator.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

pub const SECRET: &str = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[derive(QueryableByName)]
pub struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

pub fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap_or_else(|e| panic!("{sql}: {e}")).n
}

/// Creates the database `name` on the benchmark server if needed and returns its URL, with the connection options
/// of `SHUIWU_BENCH_PG_OPTIONS` (default `sslmode=disable`: the server is on loopback, as in the compose file where
/// PostgreSQL runs without TLS; Debian's packaged server offers TLS, which libpq would otherwise negotiate). Set
/// `SHUIWU_BENCH_PG_OPTIONS=sslmode=require` to measure with TLS.
pub fn database(name: &str) -> String {
    let base = env_or("SHUIWU_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres");
    let mut admin = PgConnection::establish(&base).expect("PostgreSQL reachable");
    if count(&mut admin, &format!("SELECT COUNT(*)::bigint AS n FROM pg_database WHERE datname = '{name}'")) == 0 {
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    }
    let options = env_or("SHUIWU_BENCH_PG_OPTIONS", "sslmode=disable");
    let server = base.rsplit_once('/').unwrap().0;
    if options.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{options}")
    }
}

pub fn require_wrk() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk");
        std::process::exit(1);
    }
}

fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

/// Applies the service's migrations to `url` (`shuiwu migrate`), so that seeding finds the tables on a new server.
pub fn migrate(url: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_shuiwu"))
        .arg("migrate")
        .env("SHUIWU_DATABASE_URL", url)
        .env("SHUIWU_JWT_SECRET", SECRET)
        .env("SHUIWU_BOOTSTRAP_ADMIN_PASSWORD", "bench-admin-password")
        .env("RUST_LOG", "warn")
        .status()
        .expect("run shuiwu migrate");
    assert!(status.success(), "shuiwu migrate failed");
}

/// Starts the release binary on `url` and waits until `/health/ready` answers 200; returns how long that took.
pub fn start(url: &str, port: u16) -> (Child, Duration) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_shuiwu"))
        .env("SHUIWU_DATABASE_URL", url)
        .env("SHUIWU_BIND", format!("127.0.0.1:{port}"))
        .env("SHUIWU_JWT_SECRET", SECRET)
        .env("SHUIWU_BOOTSTRAP_ADMIN_PASSWORD", "bench-admin-password")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start shuiwu");
    while !ready(port) {
        assert!(started.elapsed() < Duration::from_secs(60), "shuiwu did not become ready");
        std::thread::sleep(Duration::from_millis(2));
    }
    (child, started.elapsed())
}

pub fn stop(mut child: Child) {
    child.kill().ok();
    child.wait().ok();
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn token(roles: &[shuiwu::identity::Role]) -> String {
    let keys = shuiwu::security::TokenKeys::new(&SECRET.parse().unwrap(), "shuiwu", "shuiwu-api");
    let subject = shuiwu::security::jwt::Subject {
        sub: "bench",
        username: Some("bench"),
        department: "office",
        roles,
        epoch: 0,
        session: None,
    };
    keys.issue(&subject, Duration::from_secs(3600)).0
}

/// Runs wrk with a Lua script against the port; returns its report.
pub fn wrk(port: u16, connections: &str, duration: &str, script_name: &str, script: &str) -> String {
    let dir = std::env::temp_dir().join("shuiwu-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(script_name);
    std::fs::write(&path, script).unwrap();
    // wrk needs at least one connection per thread.
    let threads = if connections == "1" { "-t1" } else { "-t2" };
    let out = Command::new("wrk")
        .args([threads, "-c", connections, "-d", duration, "--latency", "-s"])
        .arg(&path)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run wrk");
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub struct Figures {
    pub requests_per_s: String,
    pub p50: String,
    pub p99: String,
    pub non_2xx: String,
}

pub fn figures(report: &str) -> Figures {
    let field = |label: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    Figures {
        requests_per_s: field("Requests/sec:"),
        p50: field("50%"),
        p99: field("99%"),
        non_2xx: report
            .lines()
            .find(|l| l.contains("Non-2xx"))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| "none".into()),
    }
}

/// One HTTP/1.1 request to the service with a body of `content_type`; returns status and body.
pub fn http_body(port: u16, method: &str, path: &str, token: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// One JSON request to the service; returns status and body.
pub fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    http_body(port, method, path, token, "application/json", body.as_bytes())
}

/// Runs `f` while sampling the RSS of process `pid` every 10 ms; returns (seconds, peak RSS KiB, what `f` returned).
pub fn sampled<T>(pid: u32, f: impl FnOnce() -> T) -> (f64, u64, T) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let t = Instant::now();
    let out = f();
    let seconds = t.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (seconds, sampler.join().unwrap(), out)
}

/// Empties the audit trail for a new run (it is append-only: PostgreSQL's TRUNCATE passes its row triggers by; on
/// SQLite the trigger is set aside for the reset), with the ledger head back at the start.
pub const RESET_TRAIL_POSTGRES: &str = "TRUNCATE audit_events;
    UPDATE ledger_head SET audit_seq = 0, audit_hash = '0000000000000000000000000000000000000000000000000000000000000000';";
pub const RESET_TRAIL_SQLITE: &str = "DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events;
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
    UPDATE ledger_head SET audit_seq = 0, audit_hash = '0000000000000000000000000000000000000000000000000000000000000000';";

/// A table `s(i)` of 1..=n, for seeding: PostgreSQL's `generate_series`, or a recursive query on SQLite.
pub fn series_postgres(n: i64) -> String {
    format!("generate_series(1, {n}) AS s(i)")
}

pub fn series_sqlite(n: i64) -> String {
    format!("(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) s")
}

/// An expression zero-padded to 12 characters, for ids made from numbers.
pub fn pad_postgres(e: &str) -> String {
    format!("lpad(({e})::text, 12, '0')")
}

pub fn pad_sqlite(e: &str) -> String {
    format!("substr('000000000000' || ({e}), -12, 12)")
}

/// SQL that fills `water_users` (`users`), `water_zones` (`zones`) and `permits` (`permits`, each held by a user and in
/// a zone, in force, one in ten suspended) after emptying them and what refers to them.
pub fn permits_seed_sql(users: i64, zones: i64, permits: i64) -> String {
    format!(
        "TRUNCATE withdrawals, permits, water_zones, water_users CASCADE;
         INSERT INTO water_users (id, name, credit_code, region_code, created_at, updated_at, version)
         SELECT '00000000-0000-7000-8000-' || lpad(i::text, 12, '0'), '取水户' || i, '9152038' || lpad(i::text, 10, '0') || 'X',
                '520381', now(), now(), 1
         FROM generate_series(1, {users}) AS i;
         INSERT INTO water_zones (id, name, source_type, zone_class, allowable_m3_per_year, created_at, updated_at, version)
         SELECT '00000000-0000-7000-a000-' || lpad(i::text, 12, '0'), '分区' || i, 'groundwater_deep', 'normal', 100000000000, now(), now(), 1
         FROM generate_series(1, {zones}) AS i;
         INSERT INTO permits (id, permit_no, holder_id, zone_id, source_type, purpose, annual_volume_m3, daily_max_volume_m3,
                              meter_status, intake_address, valid_from, valid_to, status, submitted_on, approved_on, last_step_on,
                              created_at, updated_at, version)
         SELECT '00000000-0000-7000-9000-' || lpad(i::text, 12, '0'), 'B520381G2024-' || lpad(i::text, 7, '0'),
                '00000000-0000-7000-8000-' || lpad((1 + i % {users})::text, 12, '0'),
                '00000000-0000-7000-a000-' || lpad((1 + i % {zones})::text, 12, '0'),
                'groundwater_deep', 'industrial', 10000, 50, 'ok', '赤水市市中街道' || i || '号',
                current_date - 800, current_date + (i % 1825), CASE WHEN i % 10 = 0 THEN 'suspended' ELSE 'approved' END,
                current_date - 820, current_date - 810, current_date - 810, now(), now(), 3
         FROM generate_series(1, {permits}) AS i;"
    )
}
