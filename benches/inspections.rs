//! Benchmark: inspections, on PostgreSQL.
//!  1. The overdue list (`GET /api/v1/rectifications?status=overdue`, 50 a page, the soonest due first) over
//!     200 000 rectifications, from 16 connections with wrk: requests/s, p50, p99.
//!  2. Evidence uploads: 8 clients each sending 5 MiB photos (`multipart/form-data`) in a loop: MB/s into the local
//!     evidence store, and the service's peak RSS (the uploads stream to disk; memory must stay flat).
//!
//!     cargo bench --bench inspections
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`, `SHUIWU_BENCH_SECONDS` (wrk's duration, default 20). The database
//! `shuiwu_bench_inspections` is seeded once and reused; every run clears the evidence of the last.

mod common;

use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use shuiwu::identity::Role;

const INSPECTIONS: i64 = 20_000;
const FINDINGS_EACH: i64 = 10;
const CLIENTS: usize = 8;
const UPLOADS_EACH: usize = 12;
const PHOTO: usize = 5 * 1024 * 1024;

fn seed(conn: &mut PgConnection) {
    let have = count(conn, "SELECT COUNT(*)::bigint AS n FROM rectifications");
    if have >= INSPECTIONS * FINDINGS_EACH {
        return;
    }
    println!("seeding PostgreSQL: {INSPECTIONS} inspections with {FINDINGS_EACH} findings each…");
    let t = Instant::now();
    conn.batch_execute(&format!(
        "TRUNCATE evidence, cases, rectifications, inspection_inspectors, inspections CASCADE;
         INSERT INTO water_users (id, name, credit_code, region_code, created_at, updated_at, version)
         VALUES ('00000000-0000-7000-8000-000000000001', '巡查基准单位', '91520381000000001Y', '520381',
                 '2025-01-01 00:00:00', '2025-01-01 00:00:00', 1) ON CONFLICT DO NOTHING;
         INSERT INTO inspections (id, kind, target_water_user_id, permit_id, inspected_at, lat, lng, notes, created_by,
                                  created_at, updated_at, version)
         SELECT '00000000-0000-7000-b000-' || lpad(i::text, 12, '0'), 'water_permit',
                '00000000-0000-7000-8000-000000000001', NULL, timestamp '2025-01-01' + i * interval '20 minutes',
                28.59, 105.69, '现场检查', 'bench', now(), now(), 1
         FROM generate_series(1, {INSPECTIONS}) AS s(i);
         INSERT INTO inspection_inspectors (inspection_id, account_id, position)
         SELECT '00000000-0000-7000-b000-' || lpad(i::text, 12, '0'), 'bench', 1 FROM generate_series(1, {INSPECTIONS}) AS s(i);
         INSERT INTO rectifications (id, inspection_id, position, type, description, rectification_due, status,
                                     completed_on, completion_note, created_at, updated_at, version)
         SELECT '00000000-0000-7000-c000-' || lpad((i * 100 + j)::text, 12, '0'),
                '00000000-0000-7000-b000-' || lpad(i::text, 12, '0'), j::int, 'meter_not_working', '取水计量设施损坏',
                date '2025-01-01' + ((i * 7 + j * 13) % 900),
                CASE WHEN (i + j) % 3 = 0 THEN 'rectified' ELSE 'open' END,
                CASE WHEN (i + j) % 3 = 0 THEN date '2025-01-01' + ((i * 7 + j * 13) % 900) END,
                CASE WHEN (i + j) % 3 = 0 THEN '已整改' END, now(), now(), 1
         FROM generate_series(1, {INSPECTIONS}) AS s(i), generate_series(1, {FINDINGS_EACH}) AS f(j);"
    ))
    .unwrap();
    println!("seeded in {:.0} s", t.elapsed().as_secs_f64());
}

/// A 5 MiB "photo": JPEG's leading bytes, then bytes that differ per upload (so that each is stored).
fn photo(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; PHOTO];
    bytes[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
    for (i, b) in bytes.iter_mut().enumerate().skip(4) {
        *b = ((i * 31 + n * 7) % 251) as u8;
    }
    bytes[4..12].copy_from_slice(&(n as u64).to_le_bytes());
    bytes
}

fn multipart(bytes: &[u8]) -> (Vec<u8>, String) {
    let boundary = "----shuiwubench";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"现场.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_wrk();
    let seconds = env_or("SHUIWU_BENCH_SECONDS", "20");
    let url = database("shuiwu_bench_inspections");
    migrate(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed(&mut conn);
    conn.batch_execute("DELETE FROM evidence").unwrap();
    conn.batch_execute("VACUUM (ANALYZE) rectifications, inspections, evidence").unwrap();
    let rectifications = count(&mut conn, "SELECT COUNT(*)::bigint AS n FROM rectifications");
    let overdue = count(
        &mut conn,
        "SELECT COUNT(*)::bigint AS n FROM rectifications WHERE status = 'open' AND rectification_due < current_date",
    );
    let evidence_dir = std::env::temp_dir().join("shuiwu-bench-evidence");
    let _ = std::fs::remove_dir_all(&evidence_dir);
    std::env::set_var("SHUIWU_EVIDENCE_DIR", &evidence_dir);
    let port = 18_095;
    let (child, _) = start(&url, port);
    let pid = child.id();

    let staff = token(&[Role::Enforcement]);
    let list = format!(
        r#"math.randomseed(os.time())
wrk.headers["Authorization"] = "Bearer {staff}"
request = function()
  local day = string.format("2026-%02d-%02d", math.random(1, 10), math.random(1, 28))
  if math.random() < 0.5 then
    return wrk.format("GET", "/api/v1/rectifications?status=overdue&limit=50")
  end
  return wrk.format("GET", "/api/v1/rectifications?status=overdue&as_of=" .. day .. "&limit=50")
end
"#
    );
    wrk(port, "16", "5s", "overdue.lua", &list);
    let report = figures(&wrk(port, "16", &format!("{seconds}s"), "overdue.lua", &list));

    let writer = token(&[Role::WaterResources]);
    let target = "00000000-0000-7000-b000-000000000001";
    let idle = rss_kib(pid);
    let (secs, peak, statuses) = sampled(pid, || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let writer = writer.clone();
                    s.spawn(move || {
                        (0..UPLOADS_EACH)
                            .map(|k| {
                                let (body, ct) = multipart(&photo(c * 1000 + k));
                                let path = format!("/api/v1/inspections/{target}/evidence");
                                http_body(port, "POST", &path, &writer, &ct, &body).0
                            })
                            .collect::<Vec<u16>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<u16>>()
        })
    });
    stop(child);
    let stored = statuses.iter().filter(|s| **s == 201).count();
    let megabytes = (stored * PHOTO) as f64 / 1_000_000.0;

    println!("== PostgreSQL: overdue rectifications, {rectifications} rows ({overdue} overdue today), 16 connections, {seconds} s");
    println!("  {} req/s, p50 {}, p99 {}, non-2xx: {}", report.requests_per_s, report.p50, report.p99, report.non_2xx);
    println!("== PostgreSQL: evidence uploads, {CLIENTS} clients × {UPLOADS_EACH} photos of 5 MiB");
    println!(
        "  {stored}/{} stored in {secs:.2} s: {:.0} MB/s; peak RSS {} MiB (idle {} MiB)",
        statuses.len(),
        megabytes / secs,
        peak / 1024,
        idle / 1024
    );
    let _ = std::fs::remove_dir_all(&evidence_dir);
}
