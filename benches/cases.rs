//! Benchmark: penalty cases, on PostgreSQL.
//!  1. The overdue-publication list (`GET /api/v1/cases?overdue=publication`, 50 a page, the earliest due first;
//!     half the requests with a second filter) over 200 000 cases, from 16 connections with wrk: requests/s, p50, p99.
//!  2. The whole history of one case with 200 events (`GET /api/v1/cases/{id}/history?limit=200`: opened, filed,
//!     investigated and 197 evidence uploads, each a step recorded with the case before and after), from 4
//!     connections and from 1: requests/s, p50, p99.
//!
//!     cargo bench --bench cases
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`, `SHUIWU_BENCH_SECONDS` (wrk's duration, default 20). The database
//! `shuiwu_bench_cases` is seeded once and reused; each run adds one case with its history.

mod common;

use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use shuiwu::identity::Role;

const CASES: i64 = 200_000;
const HISTORY: usize = 200;
const PARTY: &str = "00000000-0000-7000-8000-000000000001";

/// 200 000 cases filed from 2021 on: a fifth undecided, the rest decided with a fine, one decided case in ten not
/// published (nearly all of them overdue), each with two officers.
fn seed(conn: &mut PgConnection) {
    // (The violation types are spread over the unpublished cases too; a seed of an earlier version put none of
    // two types among them, so a filtered list walked every overdue case to find nothing.)
    let have = count(
        conn,
        "SELECT COUNT(*)::bigint AS n FROM cases WHERE violation_type = 'no_meter' AND published_on IS NULL",
    );
    if have > 0 && count(conn, "SELECT COUNT(*)::bigint AS n FROM cases") >= CASES {
        return;
    }
    println!("seeding PostgreSQL: {CASES} cases…");
    let t = Instant::now();
    conn.batch_execute(&format!(
        "TRUNCATE case_payments, case_officers, evidence, cases CASCADE;
         INSERT INTO water_users (id, name, credit_code, region_code, created_at, updated_at, version)
         VALUES ('{PARTY}', '案件基准单位', '91520381000000001Y', '520381',
                 '2025-01-01 00:00:00', '2025-01-01 00:00:00', 1) ON CONFLICT DO NOTHING;
         INSERT INTO cases (id, case_no, stage, water_user_id, party_name, party_id_number, party_kind, violation_type,
                            facts, legal_basis, source_inspection_id, findings, clue_on, created_by, created_at,
                            updated_at, version, filed_on, decision_due, notified_on, proposed_fine_fen,
                            statement_waived, outcome, fine_fen, decision_no, decision_date, publication_due,
                            published_on, served_on, closed_on, last_step_on, process)
         SELECT id, '清水罚〔' || extract(year FROM filed)::int || '〕' || i || '号',
                CASE WHEN undecided THEN 'investigating' WHEN unpublished THEN 'decided' ELSE 'served' END,
                '{PARTY}', '案件基准单位', '91520381000000001Y', 'organisation',
                (ARRAY['unlicensed_abstraction', 'over_permit_abstraction', 'no_meter', 'illegal_sand_mining'])[1 + (i / 7) % 4],
                '未经批准擅自取水，日取水量约300立方米。', '《中华人民共和国水法》第六十九条', NULL, '[]',
                filed - 2, 'bench', now(), now(), 5, filed, filed + 90, filed + 30, 5000000, FALSE,
                CASE WHEN undecided THEN NULL ELSE 'penalty' END,
                CASE WHEN undecided THEN NULL ELSE 5000000 END,
                CASE WHEN undecided THEN NULL ELSE '清水罚决〔' || extract(year FROM filed)::int || '〕' || i || '号' END,
                CASE WHEN undecided THEN NULL ELSE filed + 40 END,
                CASE WHEN undecided THEN NULL ELSE filed + 51 END,
                CASE WHEN undecided OR unpublished THEN NULL ELSE filed + 45 END,
                CASE WHEN undecided OR unpublished THEN NULL ELSE filed + 42 END,
                NULL, filed + 42,
                CASE WHEN undecided THEN '{{\"investigation_started_on\":\"2025-01-01\"}}'
                     ELSE '{{\"investigation_started_on\":\"2025-01-01\",\"decided_by\":\"juzhang\",\"penalty_types\":[\"fine\"],\"penalty_content\":\"罚款人民币伍万元整\"}}' END
         FROM (SELECT i, '00000000-0000-7000-d000-' || lpad(i::text, 12, '0') AS id,
                      date '2021-01-04' + (i % 2000) AS filed, i % 5 = 0 AS undecided, i % 10 = 3 AS unpublished
               FROM generate_series(1, {CASES}) AS s(i)) AS seed;
         INSERT INTO case_officers (case_id, account_id, position)
         SELECT '00000000-0000-7000-d000-' || lpad(i::text, 12, '0'), o.account, o.position
         FROM generate_series(1, {CASES}) AS s(i), (VALUES ('zhifa01', 0), ('zhifa02', 1)) AS o(account, position);"
    ))
    .unwrap();
    println!("seeded in {:.0} s", t.elapsed().as_secs_f64());
}

/// A small PNG that differs per `n` (each upload a new item).
fn png(n: usize) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(&(n as u64).to_le_bytes());
    bytes.extend(std::iter::repeat_n(0x42, 2048));
    bytes
}

fn multipart(bytes: &[u8]) -> (Vec<u8>, String) {
    let boundary = "----shuiwubench";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"现场照片.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

fn json_field(body: &str, field: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v[field].to_string().trim_matches('"').to_string()
}

/// One case with `HISTORY` events, made through the API as staff would: opened, filed, investigated, then evidence.
fn case_with_history(port: u16, enforcement: &str) -> String {
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/cases",
        enforcement,
        &format!(r#"{{"water_user_id": "{PARTY}", "violation_type": "no_meter", "facts": "未安装取水计量设施。"}}"#),
    );
    assert_eq!(status, 201, "{body}");
    let id = json_field(&body, "id");
    let officers = r#"{"officer_ids": ["bench", "bench2"]}"#;
    for (action, version) in [("file", 1), ("start-investigation", 2)] {
        let path = format!("/api/v1/cases/{id}/{action}");
        let (status, body) = http_if_match(port, &path, enforcement, version, officers);
        assert_eq!(status, 200, "{action}: {body}");
    }
    for n in 3..HISTORY {
        let (body, ct) = multipart(&png(n));
        let (status, answer) =
            http_body(port, "POST", &format!("/api/v1/cases/{id}/evidence"), enforcement, &ct, &body);
        assert_eq!(status, 201, "{answer}");
    }
    id
}

fn http_if_match(port: u16, path: &str, token: &str, version: i64, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         If-Match: \"{version}\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_wrk();
    let seconds = env_or("SHUIWU_BENCH_SECONDS", "20");
    let url = database("shuiwu_bench_cases");
    migrate(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed(&mut conn);
    // The officers of the history case: active enforcement accounts.
    conn.batch_execute(
        "INSERT INTO accounts (id, username, display_name, department, roles, password_hash, active, created_at,
                               updated_at, version, token_epoch)
         VALUES ('bench', 'bench', '执法员甲', 'office', 'enforcement', 'x', TRUE, now(), now(), 1, 0),
                ('bench2', 'bench2', '执法员乙', 'office', 'enforcement', 'x', TRUE, now(), now(), 1, 0)
         ON CONFLICT DO NOTHING;",
    )
    .unwrap();
    conn.batch_execute("VACUUM (ANALYZE) cases, case_officers, evidence, audit_events").unwrap();
    let cases = count(&mut conn, "SELECT COUNT(*)::bigint AS n FROM cases");
    let overdue = count(
        &mut conn,
        "SELECT COUNT(*)::bigint AS n FROM cases WHERE published_on IS NULL AND publication_due < current_date",
    );
    let evidence_dir = std::env::temp_dir().join("shuiwu-bench-case-evidence");
    let _ = std::fs::remove_dir_all(&evidence_dir);
    std::env::set_var("SHUIWU_EVIDENCE_DIR", &evidence_dir);
    let port = 18_096;
    let (child, _) = start(&url, port);

    let legal = token(&[Role::Legal]);
    let list = format!(
        r#"math.randomseed(os.time())
local kinds = {{"unlicensed_abstraction", "over_permit_abstraction", "no_meter", "illegal_sand_mining"}}
wrk.headers["Authorization"] = "Bearer {legal}"
request = function()
  if math.random() < 0.5 then
    return wrk.format("GET", "/api/v1/cases?overdue=publication&limit=50")
  end
  return wrk.format("GET", "/api/v1/cases?overdue=publication&limit=50&violation_type=" .. kinds[math.random(1, 4)])
end
"#
    );
    wrk(port, "16", "5s", "cases-overdue.lua", &list);
    let listed = figures(&wrk(port, "16", &format!("{seconds}s"), "cases-overdue.lua", &list));

    let t = Instant::now();
    let id = case_with_history(port, &token(&[Role::Enforcement]));
    let made = t.elapsed().as_secs_f64();
    let path = format!("/api/v1/cases/{id}/history?limit={HISTORY}");
    let (status, body) = http(port, "GET", &path, &legal, "");
    let events = serde_json::from_str::<serde_json::Value>(&body).unwrap()["items"].as_array().map_or(0, Vec::len);
    assert_eq!((status, events), (200, HISTORY), "{body}");
    let script = format!("wrk.headers[\"Authorization\"] = \"Bearer {legal}\"\nwrk.path = \"{path}\"\n");
    wrk(port, "4", "3s", "cases-history.lua", &script);
    let history = figures(&wrk(port, "4", &format!("{seconds}s"), "cases-history.lua", &script));
    // One reader: the time a single request takes (the target's "≤ 10 ms").
    let alone = figures(&wrk(port, "1", &format!("{seconds}s"), "cases-history.lua", &script));
    stop(child);
    let _ = std::fs::remove_dir_all(&evidence_dir);

    println!(
        "== PostgreSQL: overdue publications, {cases} cases ({overdue} overdue today), 16 connections, {seconds} s"
    );
    println!("  {} req/s, p50 {}, p99 {}, non-2xx: {}", listed.requests_per_s, listed.p50, listed.p99, listed.non_2xx);
    println!(
        "== PostgreSQL: the history of a case with {events} events ({} KiB of JSON), 4 connections, {seconds} s",
        body.len() / 1024
    );
    println!(
        "  {} req/s, p50 {}, p99 {}, non-2xx: {}",
        history.requests_per_s, history.p50, history.p99, history.non_2xx
    );
    println!(
        "  1 connection: {} req/s, p50 {}, p99 {}, non-2xx: {}",
        alone.requests_per_s, alone.p50, alone.p99, alone.non_2xx
    );
    println!("  (the case was made through the API in {made:.1} s)");
}
