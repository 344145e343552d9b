//! Benchmark: authenticated `GET /api/v1/water-users/{id}` on PostgreSQL with 1 000 000 rows, 64 connections,
//! driven by `wrk`. Also measures start-up to ready on an existing database and idle RSS.
//!
//!     cargo bench --bench water_users
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL` (server, default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `SHUIWU_BENCH_ROWS` (1000000), `SHUIWU_BENCH_SECONDS` (20), `SHUIWU_BENCH_CONNECTIONS` (64).
//! The database `shuiwu_bench` is created and seeded once and reused by later runs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_wrk();
    let rows: i64 = env_or("SHUIWU_BENCH_ROWS", "1000000").parse().unwrap();
    let seconds = env_or("SHUIWU_BENCH_SECONDS", "20");
    let connections = env_or("SHUIWU_BENCH_CONNECTIONS", "64");
    let url = database("shuiwu_bench");
    let port = 18_089;

    // First start applies the migrations (and creates the bootstrap admin) on a new database.
    let (child, _) = start(&url, port);
    let mut conn = PgConnection::establish(&url).unwrap();
    let have = count(&mut conn, "SELECT COUNT(*)::bigint AS n FROM water_users");
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
    stop(child);

    // Start-up to ready on an existing database, best of three.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (c, took) = start(&url, port);
        best = best.min(took);
        stop(c);
    }
    let (child, _) = start(&url, port);
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = rss_kib(child.id());

    let token = token(&[shuiwu::identity::Role::Auditor]);
    let script = format!(
        r#"math.randomseed(os.time())
wrk.headers["Authorization"] = "Bearer {token}"
request = function()
  local id = string.format("00000000-0000-7000-8000-%012d", math.random(1, {rows}))
  return wrk.format("GET", "/api/v1/water-users/" .. id)
end
"#
    );
    wrk(port, &connections, "5s", "get_water_user.lua", &script); // warm-up
    let report = wrk(port, &connections, &format!("{seconds}s"), "get_water_user.lua", &script);
    let loaded_rss = rss_kib(child.id());
    stop(child);

    let f = figures(&report);
    println!("\n{report}");
    println!("== GET /api/v1/water-users/{{id}}, PostgreSQL, {rows} rows, {connections} connections, {seconds} s");
    println!("requests/s:        {}", f.requests_per_s);
    println!("latency p50:       {}", f.p50);
    println!("latency p99:       {}", f.p99);
    println!("non-2xx responses: {}", f.non_2xx);
    println!("start-up to ready: {:.0} ms (existing database, best of 3)", best.as_secs_f64() * 1000.0);
    println!(
        "idle RSS:          {:.1} MiB (after load: {:.1} MiB)",
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0
    );
}
