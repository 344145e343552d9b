//! Benchmark: water-resource fees.
//!  1. The quarterly run (`POST /api/v1/fee-assessments/run`) for 100 000 permits with 3 months of withdrawals each,
//!     on PostgreSQL and on SQLite: wall time and the service's peak RSS, beside a run for 10 000 permits (memory
//!     must stay flat in the number of permits: the run works in batches).
//!  2. Recording payments (`POST /api/v1/fee-assessments/{id}/payments`, each locking its assessment, with two audit
//!     events) at 32 connections on PostgreSQL.
//!
//!     cargo bench --bench fees
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`, `SHUIWU_BENCH_SECONDS` (20), `SHUIWU_BENCH_ONLY` (`sqlite` or
//! `postgres`: one backend's part; `payments`: PostgreSQL's payments only, against a previous run's assessments). The PostgreSQL database
//! `shuiwu_bench_fees` and the SQLite file `$TMPDIR/shuiwu-bench-fees.db` are seeded once and reused; every run
//! clears the assessments, payments and audit trail first.

mod common;

use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use shuiwu::identity::Role;

const PERMITS: i64 = 100_000;
/// Permits that also have withdrawals in 2022-Q2 (the small run).
const SMALL: i64 = 10_000;
const USERS: i64 = 1_000;

/// Seeding, written once for both backends: `series(n)` is a table `s(i)` of 1..=n.
fn seed_sql(series: &dyn Fn(i64) -> String, pad: &dyn Fn(&str) -> String) -> String {
    format!(
        "INSERT INTO water_users (id, name, credit_code, region_code, created_at, updated_at, version)
         SELECT '00000000-0000-7000-8000-' || {u}, '取水户' || i, '9152038' || {c} || 'X', '520381',
                '2021-01-01 00:00:00', '2021-01-01 00:00:00', 1
         FROM {users};
         INSERT INTO permits (id, permit_no, holder_id, source_type, purpose, annual_volume_m3, daily_max_volume_m3,
                              meter_status, valid_from, valid_to, status, submitted_on, approved_on, last_step_on,
                              created_at, updated_at, version)
         SELECT '00000000-0000-7000-9000-' || {p}, 'B520381G2021-' || {p}, '00000000-0000-7000-8000-' || {h},
                'groundwater_deep', 'industrial', 100000, 1000, 'ok', '2021-01-01', '2030-12-31', 'approved',
                '2020-12-20', '2020-12-28', '2020-12-28', '2021-01-01 00:00:00', '2021-01-01 00:00:00', 3
         FROM {permits};
         INSERT INTO withdrawals (id, permit_id, period, revision, superseded, volume_m3, method, reported_by, source,
                                  over_capacity, created_at, updated_at, version)
         SELECT '00000000-0000-7000-9000-' || {p} || '-' || m.m, '00000000-0000-7000-9000-' || {p}, m.m, 1, false,
                800 + i % 500, 'online_meter', 'seed', 'platform', false, '2022-07-01 00:00:00', '2022-07-01 00:00:00', 1
         FROM {permits} CROSS JOIN (SELECT '2022-01' AS m UNION ALL SELECT '2022-02' UNION ALL SELECT '2022-03') m;
         INSERT INTO withdrawals (id, permit_id, period, revision, superseded, volume_m3, method, reported_by, source,
                                  over_capacity, created_at, updated_at, version)
         SELECT '00000000-0000-7000-9000-' || {p} || '-' || m.m, '00000000-0000-7000-9000-' || {p}, m.m, 1, false,
                700, 'online_meter', 'seed', 'platform', false, '2022-10-01 00:00:00', '2022-10-01 00:00:00', 1
         FROM {small} CROSS JOIN (SELECT '2022-04' AS m UNION ALL SELECT '2022-05' UNION ALL SELECT '2022-06') m;
         INSERT INTO fee_rates (id, source_type, purpose, zone_class, rate, effective_from, effective_to, note,
                                created_at, updated_at, version)
         VALUES ('00000000-0000-7000-c000-000000000001', 'groundwater_deep', 'industrial', NULL, '1.5000', '2020-01-01',
                 NULL, NULL, '2021-01-01 00:00:00', '2021-01-01 00:00:00', 1);",
        users = series(USERS),
        permits = series(PERMITS),
        small = series(SMALL),
        u = pad("i"),
        c = pad("i").replace("12", "10"),
        p = pad("i"),
        h = pad(&format!("(1 + i % {USERS})")),
    )
}

/// What every run starts from: no assessments or payments (and, with `RESET_TRAIL_*`, no audit events).
const RESET: &str = "DELETE FROM payments; DELETE FROM fee_assessments; DELETE FROM idempotency_keys;
    DELETE FROM counters WHERE name LIKE 'fee_notice:%';";

fn seed_postgres(conn: &mut PgConnection) {
    if count(conn, "SELECT COUNT(*)::bigint AS n FROM permits") == PERMITS {
        return;
    }
    let t = Instant::now();
    eprintln!("seeding PostgreSQL: {PERMITS} permits with 3 months of withdrawals…");
    conn.batch_execute(
        "TRUNCATE payments, fee_assessments, fee_rates, withdrawals, permits, water_zones, water_users CASCADE",
    )
    .unwrap();
    let sql = seed_sql(&series_postgres, &pad_postgres);
    conn.batch_execute(&sql).unwrap();
    conn.batch_execute("ANALYZE").unwrap();
    eprintln!("seeded in {:.0} s", t.elapsed().as_secs_f64());
}

fn seed_sqlite(path: &str) {
    let mut conn = SqliteConnection::establish(path).unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N =
        diesel::RunQueryDsl::get_result(diesel::sql_query("SELECT COUNT(*) AS n FROM permits"), &mut conn).unwrap();
    if n.n == PERMITS {
        return;
    }
    eprintln!("seeding SQLite: {PERMITS} permits with 3 months of withdrawals…");
    conn.batch_execute(&format!("BEGIN; {} COMMIT; ANALYZE;", seed_sql(&series_sqlite, &pad_sqlite))).unwrap();
}

/// Runs `period` through the API while sampling the service's RSS; returns (seconds, peak RSS KiB, summary).
fn timed_run(port: u16, pid: u32, period: &str) -> (f64, u64, String) {
    let finance = token(&[Role::Finance]);
    let (seconds, peak, (status, body)) = sampled(pid, || {
        http(port, "POST", "/api/v1/fee-assessments/run", &finance, &format!(r#"{{"period":"{period}"}}"#))
    });
    assert_eq!(status, 200, "{body}");
    (seconds, peak, body)
}

fn runs(url: &str, port: u16, label: &str) {
    let (child, _) = start(url, port);
    let pid = child.id();
    let idle = rss_kib(pid);
    let (small_s, small_peak, small) = timed_run(port, pid, "2022-Q2");
    let (big_s, big_peak, big) = timed_run(port, pid, "2022-Q1");
    // Again: nothing new is created; every record is compared.
    let (again_s, _, again) = timed_run(port, pid, "2022-Q1");
    stop(child);
    let created = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s).unwrap()["fee_assessments_created"].as_i64().unwrap_or(-1)
    };
    println!("== {label}: quarterly run");
    println!("  {SMALL} permits: {small_s:.2} s, {} created, peak RSS {} MiB", created(&small), small_peak / 1024);
    println!("  {PERMITS} permits: {big_s:.2} s, {} created, peak RSS {} MiB", created(&big), big_peak / 1024);
    println!("  {PERMITS} permits again (nothing to create): {again_s:.2} s, {} created", created(&again));
    println!("  idle RSS {} MiB; per-permit throughput {:.0}/s", idle / 1024, PERMITS as f64 / big_s);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_wrk();

    // `SHUIWU_BENCH_ONLY=sqlite|postgres` runs one backend's part; `payments` only PostgreSQL's payments.
    let only = std::env::var("SHUIWU_BENCH_ONLY").unwrap_or_default();

    // SQLite.
    if only.is_empty() || only == "sqlite" {
        sqlite_runs();
    }
    if only.is_empty() || only == "postgres" || only == "payments" {
        postgres(only == "payments");
    }
}

fn sqlite_runs() {
    let sqlite_path = std::env::temp_dir().join("shuiwu-bench-fees.db");
    let sqlite_url = format!("sqlite://{}", sqlite_path.display());
    migrate(&sqlite_url);
    seed_sqlite(sqlite_path.to_str().unwrap());
    SqliteConnection::establish(sqlite_path.to_str().unwrap())
        .unwrap()
        .batch_execute(&format!("BEGIN; {RESET} {RESET_TRAIL_SQLITE} COMMIT; VACUUM;"))
        .unwrap();
    runs(&sqlite_url, 18_092, "SQLite");
}

/// The PostgreSQL part; `payments_only` (`SHUIWU_BENCH_ONLY=payments`) measures payments against the assessments a
/// previous run left, running the quarter only when there are none.
fn postgres(payments_only: bool) {
    let seconds = env_or("SHUIWU_BENCH_SECONDS", "20");
    let url = database("shuiwu_bench_fees");
    migrate(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed_postgres(&mut conn);
    let assessed = count(&mut conn, "SELECT COUNT(*)::bigint AS n FROM fee_assessments WHERE period = '2022-Q1'");
    if !payments_only || assessed == 0 {
        conn.batch_execute(&format!("{RESET} {RESET_TRAIL_POSTGRES}")).unwrap();
        conn.batch_execute("VACUUM (ANALYZE) fee_assessments, payments, audit_events").unwrap();
        runs(&url, 18_091, "PostgreSQL");
    }

    // Payments: serve every 2022-Q1 notice, then record small payments at random against them.
    conn.batch_execute(
        "UPDATE fee_assessments SET status = 'notified', notified_on = '2022-04-06', due_date = '2022-04-13',
                notice_no = '2022-' || id, last_step_on = '2022-04-06', version = version + 1
         WHERE period = '2022-Q1'",
    )
    .unwrap();
    conn.batch_execute("VACUUM (ANALYZE) fee_assessments").unwrap();
    let ids: Vec<String> = {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        let rows: Vec<Id> = diesel::RunQueryDsl::load(
            diesel::sql_query("SELECT id FROM fee_assessments WHERE period = '2022-Q1' ORDER BY id"),
            &mut conn,
        )
        .unwrap();
        rows.into_iter().map(|r| r.id).collect()
    };
    let (child, _) = start(&url, 18_091);
    let finance = token(&[Role::Finance]);
    let ids_lua = ids.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(",");
    let script = format!(
        r#"local ids = {{{ids_lua}}}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function init(args)
  math.randomseed(os.time() * 100 + tid)
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {finance}"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local id = ids[math.random(1, #ids)]
  local body = string.format('{{"amount_fen": %d, "paid_on": "2022-04-10", "method": "bank_transfer", "receipt_no": "B%d-%d-%d"}}',
    math.random(1, 100), os.time(), tid, n)
  return wrk.format(nil, "/api/v1/fee-assessments/" .. id .. "/payments", nil, body)
end
"#
    );
    wrk(18_091, "32", "3s", "record_payments.lua", &script);
    // What autovacuum would have done by now on a production server (this machine kind runs with it off): the
    // payments table, emptied above, has statistics again. Without them every pooled connection keeps the plan it
    // made for the empty table (a sequential scan for an assessment's payments) and payments slow down as it grows.
    conn.batch_execute("ANALYZE payments, audit_events").unwrap();
    let before = count(&mut conn, "SELECT COUNT(*)::bigint AS n FROM payments");
    let report = wrk(18_091, "32", &format!("{seconds}s"), "record_payments.lua", &script);
    let recorded = count(&mut conn, "SELECT COUNT(*)::bigint AS n FROM payments") - before;
    let consistent = count(
        &mut conn,
        "SELECT COUNT(*)::bigint AS n FROM fee_assessments a
         WHERE paid_fen <> (SELECT COALESCE(SUM(principal_fen), 0) FROM payments p WHERE p.assessment_id = a.id)",
    );
    stop(child);
    let p = figures(&report);
    println!("\n{report}");
    println!("== PostgreSQL: record payments (lock assessment, settle, insert, 2 audit events), 32 connections");
    println!("  writes/s {}   p50 {}   p99 {}   non-2xx: {}", p.requests_per_s, p.p50, p.p99, p.non_2xx);
    println!(
        "  payments recorded in the measured window: {recorded}; assessments whose paid_fen ≠ Σ payments: {consistent}"
    );
}
