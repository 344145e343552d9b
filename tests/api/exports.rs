//! Whole-collection exports (`GET /api/v1/exports/{entity}`): every entity type, as `GET` shows each record, in
//! NDJSON and in CSV that round-trips through a CSV parser; `updated_since`; the snapshot's feed position; roles.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::upgrade::populate;

/// Every exportable entity type, the SQL that counts its records, and where `GET` shows one (`{id}` replaced).
const ENTITIES: &[(&str, &str, Option<&str>)] = &[
    ("water_user", "SELECT COUNT(*) AS n FROM water_users", Some("/api/v1/water-users/{id}")),
    ("zone", "SELECT COUNT(*) AS n FROM water_zones", Some("/api/v1/water-zones/{id}")),
    ("permit", "SELECT COUNT(*) AS n FROM permits", Some("/api/v1/permits/{id}")),
    ("withdrawal", "SELECT COUNT(*) AS n FROM withdrawals WHERE superseded = false", Some("/api/v1/withdrawals/{id}")),
    ("fee_rate", "SELECT COUNT(*) AS n FROM fee_rates", Some("/api/v1/fee-rates/{id}")),
    ("fee_assessment", "SELECT COUNT(*) AS n FROM fee_assessments", Some("/api/v1/fee-assessments/{id}")),
    ("payment", "SELECT COUNT(*) AS n FROM payments", Some("/api/v1/payments/{id}")),
    ("planned_user", "SELECT COUNT(*) AS n FROM planned_users", Some("/api/v1/planned-users/{id}")),
    ("plan", "SELECT COUNT(*) AS n FROM plans", Some("/api/v1/plans/{id}")),
    ("usage", "SELECT COUNT(*) AS n FROM planned_usage WHERE superseded = false", Some("/api/v1/usage/{id}")),
    ("inspection", "SELECT COUNT(*) AS n FROM inspections", Some("/api/v1/inspections/{id}")),
    ("rectification", "SELECT COUNT(*) AS n FROM rectifications", Some("/api/v1/rectifications/{id}")),
    ("evidence", "SELECT COUNT(*) AS n FROM evidence", None),
    ("case", "SELECT COUNT(*) AS n FROM cases", Some("/api/v1/cases/{id}")),
    (
        "publication",
        "SELECT COUNT(*) AS n FROM cases WHERE outcome = 'penalty' AND decision_date IS NOT NULL",
        Some("/api/v1/cases/{id}/publication"),
    ),
    ("department", "SELECT COUNT(*) AS n FROM departments", None),
    ("account", "SELECT COUNT(*) AS n FROM accounts", Some("/api/v1/accounts/{id}")),
    ("service_account", "SELECT COUNT(*) AS n FROM service_accounts", None),
];

/// The records of an NDJSON export, each line one JSON object.
fn lines(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type").as_deref(), Some("application/x-ndjson"));
    assert!(r.text.is_empty() || r.text.ends_with('\n'), "every record ends its line");
    r.text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn key(record: &Value) -> String {
    record.get("id").or_else(|| record.get("case_id")).and_then(Value::as_str).expect("an id").to_string()
}

/// Checks a CSV export against the NDJSON records of the same collection: the byte-order mark, a header row naming
/// every field (an object's fields as `object.field`), and each cell holding the record's value as a CSV parser
/// reads it back.
fn round_trips(entity: &str, csv_export: &Resp, records: &[Value]) {
    assert_eq!(csv_export.status, 200, "{}", csv_export.text);
    assert_eq!(csv_export.header("content-type").as_deref(), Some("text/csv; charset=utf-8"));
    assert!(csv_export.bytes.starts_with(b"\xEF\xBB\xBF"), "{entity}: UTF-8 with a byte-order mark");
    let mut reader = csv::Reader::from_reader(&csv_export.bytes[3..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), records.len(), "{entity}: one row per record");
    let column: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
    for (record, row) in records.iter().zip(&rows) {
        assert_eq!(row.len(), header.len());
        for (field, value) in record.as_object().unwrap() {
            let leaves: Vec<(String, &Value)> = match value {
                Value::Object(inner) if !column.contains_key(field.as_str()) => {
                    inner.iter().map(|(k, v)| (format!("{field}.{k}"), v)).collect()
                }
                // An absent object: each of its columns empty.
                Value::Null if !column.contains_key(field.as_str()) => {
                    let prefix = format!("{field}.");
                    let inner: Vec<(String, &Value)> =
                        header.iter().filter(|h| h.starts_with(&prefix)).map(|h| (h.clone(), &Value::Null)).collect();
                    assert!(!inner.is_empty(), "{entity}: no column for {field}");
                    inner
                }
                _ => vec![(field.clone(), value)],
            };
            for (name, value) in leaves {
                let i =
                    *column.get(name.as_str()).unwrap_or_else(|| panic!("{entity}: no column {name} in {header:?}"));
                let cell = &row[i];
                match value {
                    Value::Null => assert_eq!(cell, "", "{entity}.{name}"),
                    Value::String(s) => {
                        // A text a spreadsheet would run carries one leading apostrophe.
                        let read = match cell.strip_prefix('\'') {
                            Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
                            _ => cell,
                        };
                        assert_eq!(read, s, "{entity}.{name}");
                    }
                    Value::Number(_) | Value::Bool(_) => assert_eq!(cell, value.to_string(), "{entity}.{name}"),
                    Value::Array(_) | Value::Object(_) => {
                        assert_eq!(&serde_json::from_str::<Value>(cell).unwrap(), value, "{entity}.{name}")
                    }
                }
            }
        }
    }
}

async fn every_collection_exports_as_get_shows_it(app: TestApp) {
    populate(&app).await;
    let admin = app.admin_token().await;
    let zone = json!({"name": "赤水河干流区", "source_type": "surface", "zone_class": "normal", "allowable_m3_per_year": 9_000_000});
    let r = app.post("/api/v1/water-zones").bearer(&admin).json(&zone).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    let platform = app.token(&[Role::Platform]);
    let auditor = app.token(&[Role::Auditor]);
    let mut seen = BTreeSet::new();
    for (entity, count, get) in ENTITIES {
        let token = if matches!(*entity, "account" | "service_account") { &auditor } else { &platform };
        let export = app.get(&format!("/api/v1/exports/{entity}")).bearer(token).send().await;
        let records = lines(&export);
        assert!(export.header("x-changes-cursor").is_some());
        assert!(
            export.header("content-disposition").is_some_and(|d| d.contains("attachment") && d.contains(entity)),
            "{:?}",
            export.header("content-disposition")
        );
        // Each record once, in id order, as many as the database holds (and populate made some of each).
        let n = app.count(count);
        assert!(n > 0, "{entity}: the data set has some");
        assert_eq!(records.len() as i64, n, "{entity}");
        let keys: Vec<String> = records.iter().map(key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{entity}: in id order, no duplicate");
        // As GET shows it, field for field.
        if let Some(get) = get {
            for record in &records {
                let one = app.get(&get.replace("{id}", &key(record))).bearer(&auditor).send().await;
                assert_eq!(one.status, 200, "{entity}: {}", one.text);
                assert_eq!(&one.body, record, "{entity}: the export shows the record as GET does");
            }
        }
        let csv_export = app.get(&format!("/api/v1/exports/{entity}?format=csv")).bearer(token).send().await;
        round_trips(entity, &csv_export, &records);
        seen.insert(*entity);
    }
    // Lists stand in for GET where a collection has no GET by id.
    for (entity, list) in
        [("department", "/api/v1/departments?limit=500"), ("service_account", "/api/v1/service-accounts")]
    {
        let export = lines(&app.get(&format!("/api/v1/exports/{entity}")).bearer(&auditor).send().await);
        let listed = app.get(list).bearer(&admin).send().await;
        let mut items = listed.body["items"].as_array().unwrap().clone();
        items.sort_by_key(key);
        assert_eq!(export, items, "{entity}");
    }
    let evidence = lines(&app.get("/api/v1/exports/evidence").bearer(&platform).send().await);
    for item in &evidence {
        let owner = if item["inspection_id"].is_string() {
            format!("/api/v1/inspections/{}/evidence", item["inspection_id"].as_str().unwrap())
        } else {
            format!("/api/v1/cases/{}/evidence", item["case_id"].as_str().unwrap())
        };
        let listed = app.get(&owner).bearer(&auditor).send().await;
        assert!(listed.body["items"].as_array().unwrap().contains(item), "{item} in {}", listed.text);
    }
    assert_eq!(seen.len(), 18, "every entity type of the contract");

    // Text that a spreadsheet would run is neutralised, and read back as it was.
    let t = app.token(&[Role::WaterResources]);
    let mut body = water_user_body("=HYPERLINK(\"http://x\",\"点我\")", &credit_code(4242));
    body["address"] = json!("-1号楼");
    body["contact_phone"] = json!("+86 851 2288 1234");
    body["legal_representative"] = json!("@王");
    body["industry"] = json!("'=D4610");
    let r = app.post("/api/v1/water-users").bearer(&t).json(&body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    let csv_export = app.get("/api/v1/exports/water_user?format=csv").bearer(&platform).send().await;
    assert!(csv_export.text.contains(r#""'=HYPERLINK(""http://x"",""点我"")""#), "{}", csv_export.text);
    assert!(csv_export.text.contains(r#""'+86 851 2288 1234""#) && csv_export.text.contains(r#""'-1号楼""#));
    assert!(csv_export.text.contains(r#""'@王""#) && csv_export.text.contains(r#""''=D4610""#));
    let records = lines(&app.get("/api/v1/exports/water_user").bearer(&platform).send().await);
    round_trips("water_user", &csv_export, &records);
}

async fn updated_since_and_the_feed_position(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let platform = app.token(&[Role::Platform]);
    let mut ids = Vec::new();
    for n in 0..4 {
        let r = app
            .post("/api/v1/water-users")
            .bearer(&t)
            .json(&water_user_body(&format!("用户{n}"), &credit_code(n)))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    // An hour later two of them change.
    let later: chrono::DateTime<chrono::Utc> =
        (chrono::Utc::now() + chrono::TimeDelta::hours(1)).with_nanosecond_zero();
    app.clock.set(later);
    for id in [&ids[1], &ids[3]] {
        let r = app
            .patch(&format!("/api/v1/water-users/{id}"))
            .bearer(&t)
            .header("if-match", "\"1\"")
            .json(&json!({"address": "赤水市新址"}))
            .send()
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let since = |at: chrono::DateTime<chrono::Utc>| enc(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let changed = lines(
        &app.get(&format!("/api/v1/exports/water_user?updated_since={}", since(later))).bearer(&platform).send().await,
    );
    assert_eq!(changed.iter().map(key).collect::<Vec<_>>(), vec![ids[1].clone(), ids[3].clone()]);
    // The same instant in Beijing time; a second later nothing has changed; before everything, all.
    let beijing = enc(&(later + chrono::TimeDelta::hours(8)).format("%Y-%m-%dT%H:%M:%S+08:00").to_string());
    let same =
        lines(&app.get(&format!("/api/v1/exports/water_user?updated_since={beijing}")).bearer(&platform).send().await);
    assert_eq!(same, changed);
    let none = app
        .get(&format!("/api/v1/exports/water_user?updated_since={}", since(later + chrono::TimeDelta::seconds(1))))
        .bearer(&platform)
        .send()
        .await;
    assert!(lines(&none).is_empty());
    let csv_none = app
        .get(&format!(
            "/api/v1/exports/water_user?format=csv&updated_since={}",
            since(later + chrono::TimeDelta::seconds(1))
        ))
        .bearer(&platform)
        .send()
        .await;
    assert_eq!(csv_none.text.lines().count(), 1, "the header alone: {}", csv_none.text);

    // The feed from the export's position holds exactly what came after it.
    let export = app.get("/api/v1/exports/water_user").bearer(&platform).send().await;
    assert_eq!(lines(&export).len(), 4);
    let cursor = export.header("x-changes-cursor").unwrap();
    let r =
        app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("之后登记", &credit_code(77))).send().await;
    assert_eq!(r.status, 201);
    let after =
        app.get(&format!("/api/v1/changes?cursor={cursor}&entity_types=water_user")).bearer(&platform).send().await;
    let items = after.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", after.text);
    assert_eq!(items[0]["entity_id"], r.body["id"]);
}

trait NoNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl NoNanos for chrono::DateTime<chrono::Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

/// Many batches read while clerks write: the export is one snapshot in id order, and the feed from its position
/// brings every record it does not hold.
async fn a_snapshot_while_others_write(app: TestApp) {
    seed_water_users(&app, 2_500);
    let platform = app.token(&[Role::Platform]);
    let t = app.token(&[Role::WaterResources]);
    let writers = (0..4).map(|w| {
        let (app, t) = (&app, &t);
        async move {
            let mut made = Vec::new();
            for n in 0..10 {
                let body = water_user_body(&format!("并发{w}-{n}"), &credit_code(50_000 + w * 100 + n));
                let r = app.post("/api/v1/water-users").bearer(t).json(&body).send().await;
                assert_eq!(r.status, 201, "{}", r.text);
                made.push(r.body["id"].as_str().unwrap().to_string());
            }
            made
        }
    });
    let export = async { app.get("/api/v1/exports/water_user").bearer(&platform).send().await };
    let (made, export) = futures_util::join!(futures_util::future::join_all(writers), export);
    let records = lines(&export);
    let keys: Vec<String> = records.iter().map(key).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "in id order, each once");
    assert!(records.len() >= 2_500);
    let cursor = export.header("x-changes-cursor").unwrap();
    let mut have: BTreeSet<String> = keys.into_iter().collect();
    let mut cursor = cursor;
    loop {
        let page = app
            .get(&format!("/api/v1/changes?cursor={cursor}&entity_types=water_user&limit=500"))
            .bearer(&platform)
            .send()
            .await;
        let items = page.body["items"].as_array().unwrap().clone();
        cursor = page.body["next_cursor"].as_str().unwrap().to_string();
        if items.is_empty() {
            break;
        }
        have.extend(items.iter().map(|i| i["entity_id"].as_str().unwrap().to_string()));
    }
    for id in made.into_iter().flatten() {
        assert!(have.contains(&id), "{id}: in the export or in the feed after it");
    }
    assert_eq!(have.len() as i64, app.count("SELECT COUNT(*) AS n FROM water_users"));
}

async fn who_may_export_what(app: TestApp) {
    let platform = app.token(&[Role::Platform]);
    for entity in ["account", "service_account"] {
        app.get(&format!("/api/v1/exports/{entity}")).bearer(&platform).send().await.assert_problem(403, "forbidden");
    }
    for role in [Role::Finance, Role::Inspector, Role::WaterResources, Role::Enforcement, Role::Legal] {
        app.get("/api/v1/exports/permit").bearer(&app.token(&[role])).send().await.assert_problem(403, "forbidden");
    }
    let r = app.get("/api/v1/exports/permit").send().await;
    r.assert_problem(401, "unauthorized");
    for role in [Role::Admin, Role::Leader, Role::Auditor] {
        let r = app.get("/api/v1/exports/account").bearer(&app.token(&[role])).send().await;
        assert_eq!(r.status, 200, "{role:?}: {}", r.text);
    }
    for entity in ["calendar", "surcharge_tiers", "permits", "nothing"] {
        app.get(&format!("/api/v1/exports/{entity}")).bearer(&platform).send().await.assert_problem(404, "not_found");
    }
    let bad = app.get("/api/v1/exports/permit?updated_since=yesterday").bearer(&platform).send().await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "updated_since");
    let bad = app.get("/api/v1/exports/permit?format=xlsx").bearer(&platform).send().await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "format");
    app.get("/api/v1/exports/permit?limit=5").bearer(&platform).send().await.assert_problem(400, "validation_failed");
    // An empty collection: NDJSON is empty, CSV the header alone.
    let empty = app.get("/api/v1/exports/case").bearer(&platform).send().await;
    assert!(lines(&empty).is_empty());
    let csv_empty = app.get("/api/v1/exports/case?format=csv").bearer(&platform).send().await;
    let header = csv_empty.text.trim_start_matches('\u{feff}');
    assert!(header.starts_with("\"id\",\"case_no\""), "{header}");
    assert_eq!(header.lines().count(), 1);
}

/// Seeds `n` water users straight into the table (no audit: bulk data for the export's size).
fn seed_water_users(app: &TestApp, n: usize) {
    for start in (0..n).step_by(2_500) {
        let rows: Vec<String> = (start..n.min(start + 2_500))
            .map(|i| {
                format!(
                    "('00000000-0000-7000-8000-{i:012}', '导入取用水户{i}', '{}', '520381', '赤水市市中街道{i}号', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)",
                    credit_code(10_000 + i as u64)
                )
            })
            .collect();
        app.sql(&format!(
            "INSERT INTO water_users (id, name, credit_code, region_code, address, created_at, updated_at, version) VALUES {};",
            rows.join(",")
        ));
    }
}

/// Two water-user exports whose clients read the status line and then stop reading (their sockets are handled on a
/// blocking thread, so that the test's runtime keeps serving).
async fn two_stalled_downloads(app: &TestApp, token: &str) -> (std::net::TcpStream, std::net::TcpStream) {
    use std::io::{Read, Write};
    let (addr, token) = (app.address.trim_start_matches("http://").to_string(), token.to_string());
    actix_rt::task::spawn_blocking(move || {
        let open = || {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
            write!(s, "GET /api/v1/exports/water_user HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
                .unwrap();
            let mut first = [0u8; 512];
            let n = s.read(&mut first).unwrap();
            let head = String::from_utf8_lossy(&first[..n]).to_string();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            s
        };
        (open(), open())
    })
    .await
    .unwrap()
}

/// An export whose client stops reading holds its place until it goes; two at once are the limit (429 beyond),
/// and a client that leaves frees its place at once.
async fn stalled_and_abandoned_downloads(app: TestApp) {
    seed_water_users(&app, 30_000);
    let platform = app.token(&[Role::Platform]);
    // Two downloads that read their first bytes and then stop reading.
    let (a, b) = two_stalled_downloads(&app, &platform).await;
    let platform = app.token(&[Role::Platform]);
    let third = app.get("/api/v1/exports/permit").bearer(&platform).send().await;
    third.assert_problem(429, "rate_limited");
    assert!(third.header("retry-after").is_some());
    drop(a);
    drop(b);
    // The places come free as soon as the server notices the clients left.
    let mut status = 0;
    for _ in 0..100 {
        status = app.get("/api/v1/exports/permit").bearer(&platform).send().await.status;
        if status == 200 {
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "a departed client's export is abandoned");
    // And a whole download still holds every record.
    let all = app.get("/api/v1/exports/water_user").bearer(&platform).send().await;
    assert_eq!(lines(&all).len(), 30_000);
}

/// A client that stops reading loses its download after `SHUIWU_EXPORT_STALL_TIMEOUT`: its place comes free while
/// its connection is still open, and what it got ends without HTTP's closing chunk (never a file that looks whole).
async fn stalled_clients_give_their_place_back(backend: Backend) {
    use std::io::Read;
    let app = spawn_app_with(backend, |s| s.export_stall_timeout = std::time::Duration::from_secs(1)).await;
    seed_water_users(&app, 60_000);
    let platform = app.token(&[Role::Platform]);
    let (mut a, b) = two_stalled_downloads(&app, &platform).await;
    app.get("/api/v1/exports/permit").bearer(&platform).send().await.assert_problem(429, "rate_limited");
    // Neither reads: after the stall timeout both places are free, though both connections are still open.
    actix_rt::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let r = app.get("/api/v1/exports/permit").bearer(&platform).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    // What the stalled client got ends short: no closing chunk.
    let tail = actix_rt::task::spawn_blocking(move || {
        let mut all = Vec::new();
        let _ = a.read_to_end(&mut all);
        all
    })
    .await
    .unwrap();
    assert!(!tail.ends_with(b"0\r\n\r\n"), "a stalled download must not look complete");
    drop(b);
}

mod stalled_clients_give_their_place_back {
    #[actix_rt::test]
    async fn sqlite() {
        super::stalled_clients_give_their_place_back(crate::helpers::Backend::Sqlite).await
    }
    #[actix_rt::test]
    async fn postgres() {
        super::stalled_clients_give_their_place_back(crate::helpers::Backend::Postgres).await
    }
}

crate::on_both_databases!(
    stalled_and_abandoned_downloads,
    every_collection_exports_as_get_shows_it,
    updated_since_and_the_feed_position,
    a_snapshot_while_others_write,
    who_may_export_what
);
