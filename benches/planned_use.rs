//! Benchmark: planned water use.
//!  1. Settling a year (`POST /api/v1/plan-settlements`) for 50 000 planned users with 12 months of usage each, on
//!     PostgreSQL and on SQLite: wall time and the service's peak RSS, and the same settlement again (nothing new).
//!  2. The bulk import (`POST /api/v1/planned-users/import`) of a 10 000-row CSV beside a 1 000-row one, on both
//!     databases: wall time and peak RSS (memory must not grow with the file: rows are read and written a slice at
//!     a time from the spooled upload).
//!
//!     cargo bench --bench planned_use
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`, `SHUIWU_BENCH_ONLY` (`sqlite` or `postgres`). The PostgreSQL database
//! `shuiwu_bench_planned` and the SQLite file `$TMPDIR/shuiwu-bench-planned.db` are seeded once and reused; every
//! run clears the surcharges, the imported records and the audit trail first.

mod common;

use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use shuiwu::domain::CreditCode;
use shuiwu::identity::Role;

const USERS: i64 = 50_000;
const YEAR: i32 = 2025;

/// Seeding, written once for both backends: `series(n)` is a table `s(i)` of 1..=n. A third of the users stay on
/// plan (12 000 m³), a third run 12.5 % over, a third 25 %.
fn seed_sql(series: &dyn Fn(i64) -> String, pad: &dyn Fn(&str) -> String) -> String {
    format!(
        "INSERT INTO water_users (id, name, credit_code, region_code, created_at, updated_at, version)
         SELECT '00000000-0000-7000-8000-' || {p}, '计划用水户' || i, '9152038' || {c} || 'Y', '520381',
                '2025-01-01 00:00:00', '2025-01-01 00:00:00', 1
         FROM {users};
         INSERT INTO planned_users (id, water_user_id, category, supply, base_price, active, note, created_at,
                                    updated_at, version)
         SELECT '00000000-0000-7000-a000-' || {p}, '00000000-0000-7000-8000-' || {p}, 'non_residential',
                'public_network', '3.4500', true, NULL, '2025-01-01 00:00:00', '2025-01-01 00:00:00', 1
         FROM {users};
         INSERT INTO plans (id, planned_user_id, year, annual_m3, monthly_m3, status, issued_on, adjusted_on, reason,
                            created_at, updated_at, version)
         SELECT '00000000-0000-7000-b000-' || {p}, '00000000-0000-7000-a000-' || {p}, {YEAR}, 12000,
                '[1000,1000,1000,1000,1000,1000,1000,1000,1000,1000,1000,1000]', 'issued', '2025-01-05', NULL, NULL,
                '2025-01-05 00:00:00', '2025-01-05 00:00:00', 1
         FROM {users};
         INSERT INTO planned_usage (id, planned_user_id, period, revision, superseded, volume_m3, source, reported_by,
                                    note, created_at, updated_at, version)
         SELECT '00000000-0000-7000-d000-' || {p} || '-' || m.m, '00000000-0000-7000-a000-' || {p}, m.m, 1, false,
                1000 + (i % 3) * 125, 'staff', 'seed', NULL, '2026-01-05 00:00:00', '2026-01-05 00:00:00', 1
         FROM {users} CROSS JOIN ({months}) m;",
        users = series(USERS),
        p = pad("i"),
        c = pad("i").replace("12", "10"),
        months = (1..=12).map(|m| format!("SELECT '{YEAR}-{m:02}' AS m")).collect::<Vec<_>>().join(" UNION ALL "),
    )
}

/// What every run starts from: no surcharges and no imported records (and, with `RESET_TRAIL_*`, no audit events).
const RESET: &str = "DELETE FROM payments; DELETE FROM fee_assessments; DELETE FROM idempotency_keys;
    DELETE FROM plans WHERE year = 2026; DELETE FROM planned_users WHERE id NOT LIKE '00000000-%';
    DELETE FROM water_users WHERE id NOT LIKE '00000000-%';";

fn seed_postgres(conn: &mut PgConnection) {
    if count(conn, "SELECT COUNT(*)::bigint AS n FROM plans WHERE year = 2025") == USERS {
        return;
    }
    let t = Instant::now();
    eprintln!("seeding PostgreSQL: {USERS} planned users with 12 months of usage…");
    conn.batch_execute("TRUNCATE payments, fee_assessments, planned_usage, plans, planned_users, water_users CASCADE")
        .unwrap();
    let sql = seed_sql(&series_postgres, &pad_postgres);
    conn.batch_execute(&sql).unwrap();
    conn.batch_execute("ANALYZE").unwrap();
    eprintln!("seeded in {:.0} s", t.elapsed().as_secs_f64());
}

fn seed_sqlite(path: &str) {
    let mut conn = SqliteConnection::establish(path).unwrap();
    let n: N = diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT COUNT(*) AS n FROM plans WHERE year = 2025"),
        &mut conn,
    )
    .unwrap();
    if n.n == USERS {
        return;
    }
    eprintln!("seeding SQLite: {USERS} planned users with 12 months of usage…");
    conn.batch_execute(&format!("BEGIN; {} COMMIT; ANALYZE;", seed_sql(&series_sqlite, &pad_sqlite))).unwrap();
}

/// An import file of `rows` organisations new to the registry (valid credit codes from `first` on), with 2026 plans.
fn import_file(first: u64, rows: u64) -> Vec<u8> {
    let mut out = String::from("\u{feff}credit_code,name,category,supply,base_price_yuan_per_m3,year,annual_m3\r\n");
    for n in first..first + rows {
        let code = CreditCode::complete(&format!("91520381{n:09}")).expect("a valid code");
        out.push_str(&format!(
            "{},赤水市导入单位{n},非居民用水户,public_network,3.45,2026,{}\r\n",
            code.as_str(),
            12_000 + n % 1000
        ));
    }
    out.into_bytes()
}

fn runs(url: &str, port: u16, label: &str) {
    let (child, _) = start(url, port);
    let pid = child.id();
    let saving = token(&[Role::WaterSaving]);
    let idle = rss_kib(pid);
    let settle = || http(port, "POST", "/api/v1/plan-settlements", &saving, &format!(r#"{{"year":{YEAR}}}"#));
    let (first_s, first_peak, (status, first)) = sampled(pid, settle);
    assert_eq!(status, 200, "{first}");
    let (again_s, _, (status, again)) = sampled(pid, settle);
    assert_eq!(status, 200, "{again}");
    let field = |s: &str, k: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()[k].as_i64().unwrap_or(-1);

    let import = |first: u64, rows: u64| {
        let file = import_file(first, rows);
        let size = file.len();
        let (s, peak, (status, body)) =
            sampled(pid, || http_body(port, "POST", "/api/v1/planned-users/import", &saving, "text/csv", &file));
        assert_eq!(status, 200, "{body}");
        (s, peak, size, body)
    };
    let (small_s, small_peak, small_size, _) = import(1, 1_000);
    let (big_s, big_peak, big_size, big) = import(100_000, 10_000);
    stop(child);

    println!("== {label}: settling {YEAR} for {USERS} planned users (12 months of usage each)");
    println!(
        "  {first_s:.2} s, {} surcharges created, peak RSS {} MiB (idle {} MiB); {:.0} users/s",
        field(&first, "created"),
        first_peak / 1024,
        idle / 1024,
        USERS as f64 / first_s
    );
    println!("  again (nothing new): {again_s:.2} s, {} unchanged", field(&again, "unchanged"));
    println!("== {label}: bulk import (CSV)");
    println!("  1 000 rows ({} KiB): {small_s:.2} s, peak RSS {} MiB", small_size / 1024, small_peak / 1024);
    println!(
        "  10 000 rows ({} KiB): {big_s:.2} s, {} plans created, peak RSS {} MiB",
        big_size / 1024,
        field(&big, "plans_created"),
        big_peak / 1024
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let only = std::env::var("SHUIWU_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "sqlite" {
        let path = std::env::temp_dir().join("shuiwu-bench-planned.db");
        let url = format!("sqlite://{}", path.display());
        migrate(&url);
        seed_sqlite(path.to_str().unwrap());
        SqliteConnection::establish(path.to_str().unwrap())
            .unwrap()
            .batch_execute(&format!("BEGIN; {RESET} {RESET_TRAIL_SQLITE} COMMIT; VACUUM;"))
            .unwrap();
        runs(&url, 18_093, "SQLite");
    }
    if only.is_empty() || only == "postgres" {
        let url = database("shuiwu_bench_planned");
        migrate(&url);
        let mut conn = PgConnection::establish(&url).unwrap();
        seed_postgres(&mut conn);
        conn.batch_execute(&format!("BEGIN; {RESET} {RESET_TRAIL_POSTGRES} COMMIT;")).unwrap();
        // On its own: PostgreSQL runs the statements of one batch in one transaction, where VACUUM may not run.
        conn.batch_execute("VACUUM ANALYZE").unwrap();
        runs(&url, 18_094, "PostgreSQL");
    }
}
