//! Benchmark: a platform draining 1 000 000 changes from the change feed (`GET /api/v1/changes?limit=500`, page
//! after page from the beginning) on PostgreSQL, as one client reading as fast as it can: changes per second.
//! The changes are permit upserts of about 900 bytes each, numbered and chained by the service's own sequencer.
//!
//!     cargo bench --bench feed
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`, `SHUIWU_BENCH_FEED_CHANGES` (1 000 000). The database
//! `shuiwu_bench_feed` is seeded once (a minute or two: the numbering of the trail) and reused.

mod common;

use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use shuiwu::identity::Role;

fn seed(conn: &mut PgConnection, url: &str, changes: i64) {
    if count(conn, "SELECT COUNT(*)::bigint AS n FROM audit_events WHERE in_feed AND seq IS NOT NULL") >= changes {
        return;
    }
    println!("seeding PostgreSQL: {changes} changes…");
    let t = Instant::now();
    // A permit as GET shows it (the shape of the data the feed carries), varied per row.
    let data = r#"{"id":"00000000-0000-7000-9000-__ID__","permit_no":"B520381G2024-__ID__","holder_id":"00000000-0000-7000-8000-000000000001","holder_name":"取水户1","holder_credit_code":"91520381000000001X","zone_id":null,"source_type":"groundwater_deep","intake_method":"机井","purpose":"industrial","intake_location":{"lat":28.59,"lng":105.69,"address":"赤水市市中街道__ID__号"},"annual_volume_m3":10000,"daily_max_volume_m3":50,"return_location":null,"return_method":null,"meter_status":"ok","valid_from":"2024-01-01","valid_to":"2028-12-31","status":"approved","submitted_on":"2023-12-01","approved_on":"2023-12-10","created_at":"2023-12-01T02:00:00Z","updated_at":"2023-12-10T02:00:00Z","version":3}"#;
    conn.batch_execute(&format!(
        "INSERT INTO audit_events (at, actor_sub, actor_username, actor_department, actor_roles, action, entity_type,
                                   entity_id, after_data, in_feed)
         SELECT now(), 'bench', 'bench', 'water_resources', 'water_resources', 'permit_approve', 'permit',
                '00000000-0000-7000-9000-' || lpad(i::text, 12, '0'),
                replace('{data}', '__ID__', lpad(i::text, 12, '0')), TRUE
         FROM generate_series(1, {changes}) AS i;"
    ))
    .unwrap();
    println!("inserted in {:.1} s; numbering and chaining them…", t.elapsed().as_secs_f64());
    let mut db = shuiwu::db::DatabaseUrl::parse(url).unwrap().establish().unwrap();
    while shuiwu::audit::sequence_pending(&mut db).unwrap() > 0 {}
    conn.batch_execute("VACUUM ANALYZE audit_events").unwrap();
    println!("seeded in {:.1} s", t.elapsed().as_secs_f64());
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let changes: i64 = env_or("SHUIWU_BENCH_FEED_CHANGES", "1000000").parse().unwrap();
    let url = database("shuiwu_bench_feed");
    migrate(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed(&mut conn, &url, changes);
    let port = 18_098;
    let (child, _) = start(&url, port);
    let platform = token(&[Role::Platform]);
    let t = Instant::now();
    let (mut read, mut pages, mut bytes) = (0usize, 0usize, 0usize);
    let mut cursor = String::new();
    loop {
        let path = if cursor.is_empty() {
            "/api/v1/changes?limit=500".to_string()
        } else {
            format!("/api/v1/changes?limit=500&cursor={cursor}")
        };
        let (status, body) = http(port, "GET", &path, &platform, "");
        assert_eq!(status, 200, "{body}");
        bytes += body.len();
        // Counted and followed without parsing the page (the client shares the machine's two cores).
        let n = body.matches("{\"seq\":").count();
        pages += 1;
        if n == 0 {
            break;
        }
        read += n;
        let at = body.rfind("\"next_cursor\":\"").expect("a next_cursor") + "\"next_cursor\":\"".len();
        cursor = body[at..].split('"').next().unwrap().to_string();
    }
    let secs = t.elapsed().as_secs_f64();
    stop(child);
    println!(
        "\n== GET /api/v1/changes?limit=500 from the beginning, PostgreSQL (target ≥ 50 000 changes/s)\n\
         {read} changes in {pages} pages, {:.0} MB, {secs:.1} s: {:.0} changes/s",
        bytes as f64 / 1e6,
        read as f64 / secs
    );
}
