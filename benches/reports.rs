//! Benchmark: the year's summary report of a county (`GET /api/v1/reports/summary`) on PostgreSQL — 10 000
//! permits with a year of monthly withdrawals and four quarters of fees (half paid), 500 planned users with plans
//! and two years of usage, 2 000 inspections with 3 000 findings, 1 000 cases — from one connection (latency of
//! one clerk's request) and from 8 at once.
//!
//!     cargo bench --bench reports
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`, `SHUIWU_BENCH_SECONDS` (10). The database `shuiwu_bench_reports` is
//! seeded once (seconds) and reused.

mod common;

use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use shuiwu::identity::Role;

const PERMITS: i64 = 10_000;
const PLANNED: i64 = 500;
const INSPECTIONS: i64 = 2_000;
const CASES: i64 = 1_000;

fn seed(conn: &mut PgConnection) {
    if count(conn, "SELECT COUNT(*)::bigint AS n FROM cases") >= CASES {
        return;
    }
    println!(
        "seeding PostgreSQL: {PERMITS} permits, {PLANNED} planned users, {INSPECTIONS} inspections, {CASES} cases…"
    );
    let t = Instant::now();
    let wu = |expr: &str| format!("'00000000-0000-7000-8000-' || lpad(({expr})::text, 12, '0')");
    let permit = |expr: &str| format!("'00000000-0000-7000-9000-' || lpad(({expr})::text, 12, '0')");
    conn.batch_execute(&format!(
        "{permits}
         TRUNCATE payments, fee_assessments, planned_usage, plans, planned_users, rectifications, inspection_inspectors,
                  inspections, case_officers, cases CASCADE;
         INSERT INTO withdrawals (id, permit_id, period, revision, superseded, volume_m3, method, reported_by,
                                  created_at, updated_at, version, source, over_capacity)
         SELECT gen_random_uuid()::text, {p_i}, '2025-' || lpad(m::text, 2, '0'), 1, FALSE, 500 + i % 300,
                'manual_reading', 'bench', now(), now(), 1, 'staff', FALSE
         FROM generate_series(1, {PERMITS}) AS i, generate_series(1, 12) AS m;
         INSERT INTO fee_assessments (id, kind, payer_id, permit_id, period, months, volume_m3, amount_fen, lines,
                                      status, notice_no, notified_on, due_date, paid_fen, late_fee_paid_fen,
                                      last_paid_on, created_at, updated_at, version)
         SELECT '00000000-0000-7000-e000-' || lpad((i * 10 + q)::text, 12, '0'), 'water_resource_fee',
                {wu_i}, {p_i}, '2025-Q' || q, '[]', 1800, 270000, '[]',
                CASE WHEN i % 2 = 0 THEN 'paid' ELSE 'notified' END, '2025-' || lpad((i * 10 + q)::text, 7, '0'),
                make_date(2025, q * 3, 28) + 10, make_date(2025, q * 3, 28) + 17,
                CASE WHEN i % 2 = 0 THEN 270000 ELSE 0 END, 0,
                CASE WHEN i % 2 = 0 THEN make_date(2025, q * 3, 28) + 15 END, now(), now(), 3
         FROM generate_series(1, {PERMITS}) AS i, generate_series(1, 4) AS q;
         INSERT INTO payments (id, assessment_id, amount_fen, principal_fen, late_fee_fen, outstanding_after_fen,
                               paid_on, method, receipt_no, recorded_by, created_at, updated_at, version)
         SELECT gen_random_uuid()::text, id, amount_fen, amount_fen, 0, 0, last_paid_on, 'bank_transfer',
                'R' || notice_no, 'bench', now(), now(), 1
         FROM fee_assessments WHERE status = 'paid';
         INSERT INTO planned_users (id, water_user_id, category, supply, base_price, active, created_at, updated_at, version)
         SELECT '00000000-0000-7000-f000-' || lpad(i::text, 12, '0'), {wu_i},
                (ARRAY['non_residential', 'self_supplied', 'temporary_construction'])[1 + i % 3],
                'public_network', '3.45', TRUE, now(), now(), 1
         FROM generate_series(1, {PLANNED}) AS i;
         INSERT INTO plans (id, planned_user_id, year, annual_m3, monthly_m3, status, issued_on, created_at, updated_at, version)
         SELECT gen_random_uuid()::text, '00000000-0000-7000-f000-' || lpad(i::text, 12, '0'), y, 120000,
                '[10000,10000,10000,10000,10000,10000,10000,10000,10000,10000,10000,10000]', 'issued',
                make_date(y, 1, 5), now(), now(), 1
         FROM generate_series(1, {PLANNED}) AS i, generate_series(2024, 2025) AS y WHERE i % 10 <> 0;
         INSERT INTO planned_usage (id, planned_user_id, period, revision, superseded, volume_m3, source, reported_by,
                                    created_at, updated_at, version)
         SELECT gen_random_uuid()::text, '00000000-0000-7000-f000-' || lpad(i::text, 12, '0'),
                y || '-' || lpad(m::text, 2, '0'), 1, FALSE, 5000 + (i * 37) % 9000, 'staff', 'bench', now(), now(), 1
         FROM generate_series(1, {PLANNED}) AS i, generate_series(2024, 2025) AS y, generate_series(1, 12) AS m
         WHERE i % 10 <> 0;
         INSERT INTO inspections (id, kind, target_water_user_id, permit_id, inspected_at, created_by, created_at,
                                  updated_at, version)
         SELECT '00000000-0000-7000-b000-' || lpad(i::text, 12, '0'),
                (ARRAY['water_permit', 'water_saving', 'river', 'soil_conservation', 'other'])[1 + i % 5],
                {wu_i}, NULL, timestamp '2025-01-01 02:00:00' + (i % 360) * interval '1 day', 'bench', now(), now(), 1
         FROM generate_series(1, {INSPECTIONS}) AS i;
         INSERT INTO rectifications (id, inspection_id, position, type, description, rectification_due, status,
                                     completed_on, created_at, updated_at, version)
         SELECT gen_random_uuid()::text, '00000000-0000-7000-b000-' || lpad(i::text, 12, '0'), k, 'meter_not_working',
                '计量设施损坏', date '2025-01-20' + (i % 360), CASE WHEN i % 3 = 0 THEN 'open' ELSE 'rectified' END,
                CASE WHEN i % 3 = 0 THEN NULL ELSE date '2025-01-15' + (i % 360) END, now(), now(), 1
         FROM generate_series(1, {INSPECTIONS}) AS i, generate_series(0, 1) AS k WHERE k = 0 OR i % 2 = 0;
         INSERT INTO cases (id, stage, water_user_id, party_name, party_kind, violation_type, facts, findings, clue_on,
                            created_by, created_at, updated_at, version, filed_on, decision_due, statement_waived,
                            outcome, fine_fen, decision_date, publication_due, published_on, process)
         SELECT '00000000-0000-7000-d000-' || lpad(i::text, 12, '0'),
                CASE WHEN i % 5 = 0 THEN 'investigating' ELSE 'decided' END, {wu_i}, '取水户' || i, 'organisation',
                'unlicensed_abstraction', '未经批准擅自取水。', '[]', filed - 2, 'bench', now(), now(), 3, filed,
                filed + 90, FALSE,
                CASE WHEN i % 5 = 0 THEN NULL ELSE 'penalty' END, CASE WHEN i % 5 = 0 THEN NULL ELSE 5000000 END,
                CASE WHEN i % 5 = 0 THEN NULL ELSE filed + 40 END, CASE WHEN i % 5 = 0 THEN NULL ELSE filed + 51 END,
                CASE WHEN i % 5 = 0 OR i % 7 = 0 THEN NULL ELSE filed + 45 + i % 10 END, '{{}}'
         FROM (SELECT i, date '2025-01-02' + (i % 330) AS filed FROM generate_series(1, {CASES}) AS s(i)) AS seed;
         ANALYZE;",
        permits = permits_seed_sql(5_000, 20, PERMITS),
        p_i = permit("1 + (i - 1) % 10000"),
        wu_i = wu("1 + i % 5000"),
    ))
    .unwrap();
    println!("seeded in {:.1} s", t.elapsed().as_secs_f64());
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_wrk();
    let seconds = env_or("SHUIWU_BENCH_SECONDS", "10");
    let url = database("shuiwu_bench_reports");
    migrate(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed(&mut conn);
    let port = 18_097;
    let (child, _) = start(&url, port);
    let leader = token(&[Role::Leader]);
    let path = "/api/v1/reports/summary?from=2025-01-01&to=2025-12-31";
    let (status, body) = http(port, "GET", path, &leader, "");
    assert_eq!(status, 200, "{body}");
    println!("\n{body}\n");
    let script = format!(
        r#"wrk.headers["Authorization"] = "Bearer {leader}"
request = function() return wrk.format("GET", "{path}") end"#
    );
    let mut lines = Vec::new();
    for connections in ["1", "8"] {
        let f = figures(&wrk(port, connections, &format!("{seconds}s"), "summary.lua", &script));
        lines.push(format!(
            "{connections:>2} conn  {:>8} req/s  p50 {:>9}  p99 {:>9}  non-2xx: {}",
            f.requests_per_s, f.p50, f.p99, f.non_2xx
        ));
    }
    stop(child);
    println!("== GET {path}, PostgreSQL, {PERMITS} permits, {PLANNED} planned users, {CASES} cases (target ≤ 200 ms)");
    for line in lines {
        println!("{line}");
    }
}
