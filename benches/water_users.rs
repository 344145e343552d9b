//! Benchmark: authenticated `GET /api/v1/water-users/{id}` on PostgreSQL with 1 000 000 rows, 64 connections,
//! driven by `wrk` (Debian package `wrk`). Also measures start-up to ready on an existing database and idle RSS.
//!
//!     cargo bench --bench water_users
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL` (server, default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `SHUIWU_BENCH_ROWS` (1000000), `SHUIWU_BENCH_SECONDS` (20), `SHUIWU_BENCH_CONNECTIONS` (64).
//! The database `shuiwu_bench` is created and seeded once and reused by later runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

const SECRET: &str = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
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

fn start(url: &str, port: u16) -> (Child, Duration) {
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

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base = env_or("SHUIWU_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres");
    let rows: i64 = env_or("SHUIWU_BENCH_ROWS", "1000000").parse().unwrap();
    let seconds = env_or("SHUIWU_BENCH_SECONDS", "20");
    let connections = env_or("SHUIWU_BENCH_CONNECTIONS", "64");
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk");
        std::process::exit(1);
    }
    let mut admin = PgConnection::establish(&base).expect("PostgreSQL reachable");
    let exists = diesel::sql_query("SELECT COUNT(*)::bigint AS n FROM pg_database WHERE datname = 'shuiwu_bench'")
        .get_result::<N>(&mut admin)
        .unwrap()
        .n;
    if exists == 0 {
        admin.batch_execute("CREATE DATABASE shuiwu_bench").unwrap();
    }
    let url = format!("{}/shuiwu_bench", base.rsplit_once('/').unwrap().0);
    let port = 18_089;

    // First start: migrations (and the bootstrap admin) on a new database.
    let (mut child, _) = start(&url, port);
    let mut conn = PgConnection::establish(&url).unwrap();
    let have = diesel::sql_query("SELECT COUNT(*)::bigint AS n FROM water_users").get_result::<N>(&mut conn).unwrap().n;
    if have < rows {
        let t = Instant::now();
        eprintln!("seeding {} water users…", rows - have);
        conn.batch_execute(&format!(
            "INSERT INTO water_users (id, name, credit_code, legal_representative, region_code, address, industry, contact_phone, created_at, updated_at, version)
             SELECT '00000000-0000-7000-8000-' || lpad(i::text, 12, '0'), '取水户' || i, '9152038' || lpad(i::text, 10, '0') || 'X',
                    '法人' || i, '520381', '赤水市' || i || '号', 'D4610', '0851-22881234', now(), now(), 1
             FROM generate_series({}, {}) AS i;
             ANALYZE water_users;",
            have + 1,
            rows
        ))
        .unwrap();
        eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());
    }
    child.kill().ok();
    child.wait().ok();

    // Start-up to ready on an existing database, best of three.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (mut c, took) = start(&url, port);
        best = best.min(took);
        c.kill().ok();
        c.wait().ok();
    }
    let (mut child, _) = start(&url, port);
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = rss_kib(child.id());

    let keys = shuiwu::auth::TokenKeys::new(&SECRET.parse().unwrap(), "shuiwu", "shuiwu-api");
    let (token, _) =
        keys.issue("bench", Some("bench"), "office", &[shuiwu::auth::Role::Auditor], Duration::from_secs(3600));
    let dir = std::env::temp_dir().join("shuiwu-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("get_water_user.lua");
    std::fs::write(
        &script,
        format!(
            r#"math.randomseed(os.time())
wrk.headers["Authorization"] = "Bearer {token}"
request = function()
  local id = string.format("00000000-0000-7000-8000-%012d", math.random(1, {rows}))
  return wrk.format("GET", "/api/v1/water-users/" .. id)
end
"#
        ),
    )
    .unwrap();
    let target = format!("http://127.0.0.1:{port}");
    let run = |duration: &str| {
        let out = Command::new("wrk")
            .args(["-t2", "-c", &connections, "-d", duration, "--latency", "-s"])
            .arg(&script)
            .arg(&target)
            .output()
            .expect("run wrk");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run("5s"); // warm-up
    let report = run(&format!("{seconds}s"));
    let peak_rss = rss_kib(child.id());
    child.kill().ok();
    child.wait().ok();

    let field = |label: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
    };
    let non2xx =
        report.lines().find(|l| l.contains("Non-2xx")).map(|l| l.trim().to_string()).unwrap_or_else(|| "none".into());
    println!("\n{report}");
    println!("== GET /api/v1/water-users/{{id}}, PostgreSQL, {rows} rows, {connections} connections, {seconds} s");
    println!("requests/s:        {}", field("Requests/sec:").unwrap_or_default());
    println!("latency p50:       {}", field("50%").unwrap_or_default());
    println!("latency p99:       {}", field("99%").unwrap_or_default());
    println!("non-2xx responses: {non2xx}");
    println!("start-up to ready: {:.0} ms (existing database, best of 3)", best.as_secs_f64() * 1000.0);
    println!(
        "idle RSS:          {:.1} MiB (after load: {:.1} MiB)",
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
}
