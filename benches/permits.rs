//! Benchmark: permits on PostgreSQL with 1 000 000 permits and 12 months of withdrawals each (12 000 000 rows).
//!  1. a filtered list page — `status=approved&zone_id=…&expiring_within_days=90&limit=50` — at 16 connections;
//!  2. recording withdrawals (`POST /api/v1/permits/{id}/withdrawals`, each with its audit event and feed entry)
//!     for the current month, at 32 connections, after clearing that month and a 3 s warm-up.
//!
//!     cargo bench --bench permits
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`, `SHUIWU_BENCH_SECONDS` (20). The database `shuiwu_bench_permits`
//! is seeded once (a few minutes) and reused.

mod common;

use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use shuiwu::identity::Role;

const PERMITS: i64 = 1_000_000;
const ZONES: i64 = 100;
const USERS: i64 = 10_000;

fn seed(conn: &mut PgConnection) {
    if count(conn, "SELECT COUNT(*)::bigint AS n FROM permits") >= PERMITS {
        return;
    }
    let t = Instant::now();
    eprintln!("seeding {USERS} water users, {ZONES} zones, {PERMITS} permits and 12 months of withdrawals each…");
    conn.batch_execute(&format!(
        "{}
         INSERT INTO withdrawals (id, permit_id, period, revision, superseded, volume_m3, method, reported_by, created_at, updated_at, version)
         SELECT p.id || '-' || m, p.id, to_char(date_trunc('month', current_date) - make_interval(months => m), 'YYYY-MM'),
                1, false, 800 + m, 'online_meter', 'seed', now(), now(), 1
         FROM permits p CROSS JOIN generate_series(1, 12) AS m;
         ANALYZE;",
        permits_seed_sql(USERS, ZONES, PERMITS)
    ))
    .unwrap();
    eprintln!("seeded in {:.0} s", t.elapsed().as_secs_f64());
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_wrk();
    let seconds = env_or("SHUIWU_BENCH_SECONDS", "20");
    let url = database("shuiwu_bench_permits");
    let port = 18_090;
    migrate(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed(&mut conn);
    // Every run records the current month afresh (first reports, plus the corrections that random repeats give),
    // so that runs measure the same work however many came before. The VACUUMs do what autovacuum does on a
    // production server: this machine kind's PostgreSQL runs with `autovacuum = off`, so without them every run
    // would leave the next one more dead rows (each audit event is updated once, when the sequencer numbers it).
    conn.batch_execute("DELETE FROM withdrawals WHERE period = to_char(current_date, 'YYYY-MM')").unwrap();
    conn.batch_execute("VACUUM (ANALYZE) withdrawals").unwrap();
    conn.batch_execute("VACUUM (ANALYZE) audit_events").unwrap();
    let (child, _) = start(&url, port);
    let withdrawals = count(&mut conn, "SELECT COUNT(*)::bigint AS n FROM withdrawals");

    let reader = token(&[Role::Auditor]);
    let list = format!(
        r#"math.randomseed(os.time())
wrk.headers["Authorization"] = "Bearer {reader}"
request = function()
  local zone = string.format("00000000-0000-7000-a000-%012d", math.random(1, {ZONES}))
  return wrk.format("GET", "/api/v1/permits?status=approved&zone_id=" .. zone .. "&expiring_within_days=90&limit=50")
end
"#
    );
    wrk(port, "16", "5s", "list_permits.lua", &list);
    let list_report = wrk(port, "16", &format!("{seconds}s"), "list_permits.lua", &list);
    let rows_per_page = {
        let zone = "00000000-0000-7000-a000-000000000007";
        count(
            &mut conn,
            &format!(
                "SELECT COUNT(*)::bigint AS n FROM (SELECT 1 FROM permits WHERE zone_id = '{zone}' AND status = 'approved'
                 AND valid_to BETWEEN current_date AND current_date + 90 LIMIT 51) t"
            ),
        )
    };

    let writer = token(&[Role::Platform]);
    let write = format!(
        r#"local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
function init(args)
  math.randomseed(os.time() * 100 + seed)
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {writer}"
wrk.headers["Content-Type"] = "application/json"
local period = os.date("%Y-%m")
request = function()
  local id = string.format("00000000-0000-7000-9000-%012d", math.random(1, {PERMITS}))
  local body = string.format('{{"period": "%s", "volume_m3": %d, "method": "online_meter"}}', period, math.random(1, 1000))
  return wrk.format(nil, "/api/v1/permits/" .. id .. "/withdrawals", nil, body)
end
"#
    );
    wrk(port, "32", "3s", "record_withdrawals.lua", &write);
    let since = "SELECT COALESCE(MAX(id), 0) AS n FROM audit_events";
    let before = count(&mut conn, since);
    let t = Instant::now();
    let write_report = wrk(port, "32", &format!("{seconds}s"), "record_withdrawals.lua", &write);
    let elapsed = t.elapsed().as_secs_f64();
    let audited = count(&mut conn, &format!("SELECT COUNT(*)::bigint AS n FROM audit_events WHERE id > {before}"));
    let corrections = count(
        &mut conn,
        &format!(
            "SELECT COUNT(*)::bigint AS n FROM audit_events WHERE id > {before} AND action = 'withdrawal_corrected'"
        ),
    );
    stop(child);

    let l = figures(&list_report);
    let w = figures(&write_report);
    println!("\n{list_report}\n{write_report}");
    println!("== PostgreSQL, {PERMITS} permits, {withdrawals} withdrawal rows");
    println!("list page (status+zone+expiring 90 d, limit 50; {rows_per_page}+ rows match), 16 connections:");
    println!("  requests/s {}   p50 {}   p99 {}   non-2xx: {}", l.requests_per_s, l.p50, l.p99, l.non_2xx);
    println!("record withdrawal (insert or correction + audit + feed), 32 connections:");
    println!("  writes/s {}   p50 {}   p99 {}   non-2xx: {}", w.requests_per_s, w.p50, w.p99, w.non_2xx);
    println!(
        "  audit events written: {audited} ({:.0}/s); {corrections} of the writes were corrections",
        audited as f64 / elapsed
    );
    println!("  database URL options: {}", url.split_once('?').map_or("(none)", |(_, o)| o));
}
