//! Upgrades that migrate: databases made by earlier releases, kept in `tests/fixtures/upgrade/<last migration>/`,
//! are opened by today's service (which migrates them) and every record reads back as it read when the fixture
//! was made. A fixture holds, per backend, the database (a SQLite file; a PostgreSQL dump), its evidence files and
//! `reads.json`: the clock it was read at, every table's row count and the JSON of every list and record the API
//! served then. A newer release may add fields; it may not lose or change one.
//!
//! Make a fixture with the schema of the day (after a release, before the next migration lands):
//! `cargo nextest run --run-ignored only upgrade::make_fixture` (PostgreSQL's needs `pg_dump`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::cases::{office as case_office, open as open_case, step as case_step};
use crate::evidence::{form, PNG};
use crate::fees::{fees_staff, pay, served_36000};
use crate::helpers::*;
use crate::inspections::{inspection_body, record, team};
use crate::permits::permit_in;
use crate::planned_use::{issue, last_year, office as saving_office, planned_user, report as report_usage, water_user};

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

fn backend_dir(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Readers who together may read everything: staff with every business role, the administrator with the
/// auditor's role, and the provincial platform (the role rules keep these apart).
fn readers(app: &TestApp) -> Vec<(&'static str, String)> {
    let business: Vec<Role> =
        Role::ALL.into_iter().filter(|r| !matches!(r, Role::Admin | Role::Auditor | Role::Platform)).collect();
    vec![
        ("staff", app.token_for("upgrade-reader", &business)),
        ("admin", app.token_for("upgrade-admin", &[Role::Admin, Role::Auditor])),
        ("platform", app.token_for("upgrade-platform", &[Role::Platform])),
    ]
}

/// The reader an operation allows (by its `x-roles` in the OpenAPI document), so that nobody is refused (a refusal
/// is audited, and would race the counts).
fn reader_for<'a>(readers: &'a [(&'static str, String)], roles: &[String]) -> Option<&'a (&'static str, String)> {
    let holds = |reader: &str, role: &str| match reader {
        "admin" => matches!(role, "admin" | "auditor"),
        "platform" => role == "platform",
        _ => !matches!(role, "admin" | "auditor" | "platform"),
    };
    // No roles listed: any signed-in caller.
    readers.iter().find(|(name, _)| roles.is_empty() || roles.iter().any(|r| holds(name, r)))
}

/// The answer to `path` for `reader`: JSON whole; an evidence file by the SHA-256 of its bytes (they must come back
/// exactly); a printed document by its success alone (its layout may change between releases).
async fn read(app: &TestApp, reader: &(&'static str, String), path: &str) -> Option<Value> {
    let r = app.get(path).bearer(&reader.1).send().await;
    if r.status != 200 {
        return None;
    }
    let body = if r.body.is_object() {
        r.body
    } else if path.contains("/evidence/") {
        use sha2::Digest;
        json!({"sha256": hex::encode(sha2::Sha256::digest(&r.bytes))})
    } else {
        json!("(document)")
    };
    Some(json!({"as": reader.0, "body": body}))
}

/// Reads whose answers depend on the caller or on when they are asked, not on the records.
const NOT_RECORDS: &[&str] = &["/api/v1/auth/me", "/api/v1/audit-events/verify"];

/// Tables of sessions, throttles and retries: they empty themselves by the wall clock.
const TRANSIENT: &[&str] = &["refresh_tokens", "revocations", "login_failures", "idempotency_keys", "counters"];

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// Every table of the schema with its row count.
fn table_counts(app: &TestApp) -> BTreeMap<String, i64> {
    use diesel::RunQueryDsl;
    let query = match app.backend {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        Backend::Postgres => "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
    };
    let names: Vec<Name> = diesel::sql_query(query).load(&mut app.db()).unwrap();
    names
        .into_iter()
        .map(|t| (t.name.clone(), app.count(&format!("SELECT COUNT(*) AS n FROM \"{}\"", t.name))))
        .collect()
}

/// What the API serves of the database: every list (GET without a path parameter, default query), the views of a
/// period, every GET under the id of each item a list names, and every evidence file.
async fn read_everything(app: &TestApp) -> BTreeMap<String, Value> {
    let readers = readers(app);
    let spec = app.get("/api-docs/openapi.json").send().await.body;
    let gets: BTreeMap<String, Vec<String>> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, item)| p.starts_with("/api/v1/") && item.get("get").is_some())
        .filter(|(p, _)| !NOT_RECORDS.contains(&p.as_str()))
        .map(|(p, item)| {
            let roles = item["get"]["x-roles"].as_array().cloned().unwrap_or_default();
            (p.clone(), roles.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        })
        .collect();
    let mut reads = BTreeMap::new();
    let mut wanted: Vec<(String, String)> = Vec::new();
    // Every list, and the views that need a period.
    let y = last_year();
    wanted.extend(gets.keys().filter(|p| !p.contains('{')).map(|p| (p.clone(), p.clone())));
    wanted.extend([
        (format!("/api/v1/planned-use/warnings?period={y}-Q1"), "/api/v1/planned-use/warnings".to_string()),
        (format!("/api/v1/planned-use/key-monitoring?year={}", y + 1), "/api/v1/planned-use/key-monitoring".into()),
        (format!("/api/v1/planned-use/coverage?year={y}"), "/api/v1/planned-use/coverage".into()),
        ("/api/v1/calendar/2026".to_string(), "/api/v1/calendar/{year}".into()),
    ]);
    // Then, under each item of a list: the record, its history, documents and sub-lists; then every evidence
    // file's bytes. Three rounds: lists, what hangs off their items, the files those name.
    for round in 0..3 {
        for (path, template) in std::mem::take(&mut wanted) {
            let reader = reader_for(&readers, &gets[&template]).expect("a reader");
            if let Some(r) = read(app, reader, &path).await {
                reads.insert(path, r);
            }
        }
        for (path, answer) in &reads {
            let Some(items) = answer["body"]["items"].as_array() else { continue };
            let ids = items.iter().filter_map(|i| i["id"].as_str());
            if round == 0 {
                for template in gets.keys().filter(|t| t.matches('{').count() == 1) {
                    let (list, param) = template.split_once("/{").unwrap();
                    if list == path {
                        let param = format!("{{{}", &param[..=param.find('}').unwrap()]);
                        wanted.extend(ids.clone().map(|id| (template.replace(&param, id), template.clone())));
                    }
                }
            } else if round == 1 && path.ends_with("/evidence") {
                // `/api/v1/cases/<id>/evidence` → `/api/v1/cases/{id}/evidence/{eid}`
                let mut segments: Vec<&str> = path.split('/').collect();
                segments[4] = "{id}";
                let template = format!("{}/{{eid}}", segments.join("/"));
                wanted.extend(ids.map(|id| (format!("{path}/{id}"), template.clone())));
            }
        }
    }
    reads
}

/// `old` is in `new`: every field `old` has is there with the same value (arrays item by item). Cursors are
/// opaque and may change form between releases.
fn contained(old: &Value, new: &Value, at: &str) -> Result<(), String> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            o.iter().filter(|(k, _)| k.as_str() != "next_cursor").try_for_each(|(k, v)| {
                let n = n.get(k).ok_or_else(|| format!("{at}.{k}: missing"))?;
                contained(v, n, &format!("{at}.{k}"))
            })
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            o.iter().zip(n).enumerate().try_for_each(|(i, (o, n))| contained(o, n, &format!("{at}[{i}]")))
        }
        _ if old == new => Ok(()),
        _ => Err(format!("{at}: was {old}, now {new}")),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Opens each fixture of `backend` with today's service and reads it back.
async fn every_fixture_migrates_and_reads_back(backend: Backend) {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .expect("tests/fixtures/upgrade")
        .map(|e| e.unwrap().path().join(backend_dir(backend)))
        .filter(|p| p.is_dir())
        .collect();
    fixtures.sort();
    assert!(!fixtures.is_empty(), "no upgrade fixture for {backend:?}");
    for dir in fixtures {
        let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("reads.json")).unwrap()).unwrap();
        let app = spawn_app_prepared(backend, |settings| {
            let data_dir = settings.data_dir.clone().unwrap();
            copy_dir(&dir.join("evidence"), &data_dir.join("evidence"));
            match backend {
                Backend::Sqlite => {
                    let url = settings.database_url.expose().to_string();
                    std::fs::copy(dir.join("shuiwu.db"), url.strip_prefix("sqlite://").unwrap()).unwrap();
                }
                Backend::Postgres => {
                    let sql = std::fs::read_to_string(dir.join("shuiwu.sql")).unwrap();
                    let mut conn = diesel::PgConnection::establish(settings.database_url.expose()).unwrap();
                    conn.batch_execute(&sql).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                }
            }
        })
        .await;
        let at: chrono::DateTime<chrono::Utc> = expected["read_at"].as_str().unwrap().parse().unwrap();
        app.clock.set(at);

        // Nothing lost in the migration: every table the fixture had holds at least as many rows (a migration may
        // add some; sessions and throttles expire by the clock and are not records).
        let counts = table_counts(&app);
        for (table, n) in expected["tables"].as_object().unwrap() {
            if TRANSIENT.contains(&table.as_str()) {
                continue;
            }
            let now = counts.get(table).copied().unwrap_or_else(|| panic!("{}: table {table} is gone", dir.display()));
            assert!(now >= n.as_i64().unwrap(), "{}: table {table} had {n} rows, now {now}", dir.display());
        }
        // Every read answers as it did.
        let reads = expected["reads"].as_object().unwrap();
        assert!(reads.len() > 50, "{}: a fixture reads back every record", dir.display());
        let readers = readers(&app);
        for (path, old) in reads {
            let (_, token) = readers.iter().find(|(name, _)| old["as"] == *name).expect("a reader");
            let r = app.get(path).bearer(token).send().await;
            assert_eq!(r.status, 200, "{}: GET {path}: {}", dir.display(), r.text);
            if old["body"].is_string() {
                continue; // a document: it still prints
            } else if path.contains("/evidence/") {
                use sha2::Digest;
                let sha256 = hex::encode(sha2::Sha256::digest(&r.bytes));
                assert_eq!(Some(sha256.as_str()), old["body"]["sha256"].as_str(), "{}: {path}", dir.display());
            } else {
                contained(&old["body"], &r.body, path).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            }
        }
        // The audit chain made by the old release verifies, and the new release goes on writing to it.
        let verify = app.get("/api/v1/audit-events/verify").bearer(&app.token(&[Role::Auditor])).send().await;
        assert_eq!(verify.body["ok"], true, "{}", verify.text);
        let t = app.token(&[Role::WaterResources]);
        let r = app
            .post("/api/v1/water-users")
            .bearer(&t)
            .json(&water_user_body("升级后新登记", &credit_code(990)))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let verify = app.get("/api/v1/audit-events/verify").bearer(&app.token(&[Role::Auditor])).send().await;
        assert_eq!(verify.body["ok"], true, "{}", verify.text);
    }
}

mod fixture_databases_migrate_and_read_back {
    #[actix_rt::test]
    async fn sqlite() {
        super::every_fixture_migrates_and_reads_back(crate::helpers::Backend::Sqlite).await
    }
    #[actix_rt::test]
    async fn postgres() {
        super::every_fixture_migrates_and_reads_back(crate::helpers::Backend::Postgres).await
    }
}

/// Records of every kind, made through the API as the bureau would: a permit in each state, withdrawals, a fee
/// assessed, served and partly paid, a planned user with its plan and usage, an inspection with findings and a
/// photo, escalated; a case filed and under investigation, with evidence; a case decided with a fine (its public
/// record); a service account.
pub async fn populate(app: &TestApp) {
    let f = fees_staff(app).await;
    let (assessment, _) = served_36000(app, &f).await;
    let r = pay(app, &f, &assessment, 1_000_000, "2022-04-10", "SK2022-0001").await;
    assert_eq!(r.status, 201, "{}", r.text);
    for state in ["draft", "submitted", "rejected", "suspended", "revoked", "cancelled", "expired"] {
        permit_in(app, &f.s, state).await;
    }

    let o = saving_office(app);
    let user = water_user(app, &o, "赤水市第一中学", 901).await;
    let planned = planned_user(app, &o, &user).await;
    let pid = planned["id"].as_str().unwrap();
    let y = last_year();
    let plan = issue(app, &o, pid, json!({"year": y, "annual_m3": 120_000})).await;
    assert_eq!(plan.status, 201, "{}", plan.text);
    for (m, v) in [(1, 9_000), (2, 11_000), (3, 14_500)] {
        let r = report_usage(app, &o.saving, pid, &format!("{y}-{m:02}"), v).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    let t = team(app).await;
    let findings = json!([
        {"type": "meter_not_working", "description": "取水计量设施损坏，读数停止", "rectification_due": today().to_string()},
        {"type": "unlicensed_abstraction", "description": "未办理取水许可擅自取水", "rectification_due": (today() + chrono::Days::new(20)).to_string()},
    ]);
    let i = record(app, &t.me_token, &inspection_body(&t, findings)).await;
    let iid = i["id"].as_str().unwrap();
    let (body, ct) = form("file", "现场照片.png", "image/png", PNG);
    let r = app.post(&format!("/api/v1/inspections/{iid}/evidence")).bearer(&t.me_token).raw(body, &ct).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(&format!("/api/v1/inspections/{iid}/escalate"))
        .bearer(&t.enforcement)
        .header("if-match", "\"1\"")
        .json(&json!({"reason": "擅自取水，移送立案"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let c = case_office(app).await;
    let case = open_case(
        app,
        &c,
        json!({"water_user_id": c.party, "violation_type": "unlicensed_abstraction",
               "facts": "未办理取水许可擅自从赤水河取水。", "effective_date": "2025-03-03"}),
    )
    .await;
    let case = case_step(app, &c.enforcement, &case, "file", json!({"effective_date": "2025-03-05"})).await;
    let case = case_step(
        app,
        &c.enforcement,
        &case,
        "start-investigation",
        json!({"effective_date": "2025-03-06", "officer_ids": [c.officers[0], c.officers[1]]}),
    )
    .await;
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice("询问笔录照片".as_bytes());
    let (body, ct) = form("file", "询问笔录.png", "image/png", &bytes);
    let r = app
        .post(&format!("/api/v1/cases/{}/evidence", case["id"].as_str().unwrap()))
        .bearer(&c.enforcement)
        .raw(body, &ct)
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let decided = open_case(
        app,
        &c,
        json!({"water_user_id": c.party, "violation_type": "over_permit_abstraction", "facts": "超许可取水。",
               "effective_date": "2023-05-02"}),
    )
    .await;
    let decided = case_step(app, &c.enforcement, &decided, "file", json!({"effective_date": "2023-05-04"})).await;
    let decided = case_step(
        app,
        &c.enforcement,
        &decided,
        "start-investigation",
        json!({"effective_date": "2023-05-05", "officer_ids": [c.officers[0], c.officers[1]]}),
    )
    .await;
    let decided = case_step(
        app,
        &c.enforcement,
        &decided,
        "notify",
        json!({"proposed_fine_fen": 500_000, "statement_waived": true, "effective_date": "2023-06-01"}),
    )
    .await;
    let decided = case_step(
        app,
        &c.leader,
        &decided,
        "decide",
        json!({"outcome": "penalty", "fine_fen": 500_000, "penalty_content": "罚款人民币伍仟元整",
               "legal_basis": "《取水许可和水资源费征收管理条例》第四十九条", "effective_date": "2023-06-02"}),
    )
    .await;
    assert_eq!(decided["stage"], "decided", "{decided}");

    let admin = app.admin_token().await;
    let r = app
        .post("/api/v1/service-accounts")
        .bearer(&admin)
        .json(&json!({"name": "省水资源平台", "department": "office", "roles": ["platform"]}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Makes the fixture of today's schema for `backend` (ignored: run on purpose, then commit the files).
async fn make_fixture(backend: Backend) {
    let migration = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .max()
        .unwrap();
    let dir = fixtures_root().join(&migration).join(backend_dir(backend));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let app = spawn_app(backend).await;
    populate(&app).await;
    // Let the sequencer number the trail, as it would have long before any upgrade.
    let verify = app.get("/api/v1/audit-events/verify").bearer(&app.token(&[Role::Auditor])).send().await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
    let read_at = chrono::Utc::now();
    app.clock.set(read_at);
    let reads = read_everything(&app).await;
    let tables = table_counts(&app);
    match backend {
        Backend::Sqlite => app.sql(&format!("VACUUM INTO '{}'", dir.join("shuiwu.db").display())),
        Backend::Postgres => {
            // A newer pg_dump writes settings an older server refuses (`SET transaction_timeout`).
            let server = app.count("SELECT current_setting('server_version_num')::bigint / 10000 AS n");
            let version = std::process::Command::new("pg_dump").arg("--version").output().expect("pg_dump");
            let version = String::from_utf8_lossy(&version.stdout).to_string();
            assert!(
                version.contains(&format!(" {server}.")),
                "pg_dump {version} is not of the server's major version {server}"
            );
            let out = std::process::Command::new("pg_dump")
                .args(["--inserts", "--rows-per-insert=100", "--no-owner", "--no-privileges", "--dbname"])
                .arg(&app.database_url)
                .output()
                .expect("pg_dump");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            // psql's own meta-commands (`\restrict`, `\unrestrict`, pg_dump ≥ 15.14) are not SQL: the test loads the
            // dump through a connection. Nothing else is touched (a line of a multi-line text may start with `\`).
            let sql: String = String::from_utf8(out.stdout)
                .unwrap()
                .split_inclusive('\n')
                .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
                .collect();
            std::fs::write(dir.join("shuiwu.sql"), sql).unwrap();
        }
    }
    copy_dir(&app.data_dir.join("evidence"), &dir.join("evidence"));
    let doc = json!({"migration": migration, "read_at": read_at.to_rfc3339(), "tables": tables, "reads": reads});
    std::fs::write(dir.join("reads.json"), serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}

mod make_fixture {
    #[actix_rt::test]
    #[ignore = "makes the upgrade fixture of today's schema; run on purpose and commit the files"]
    async fn sqlite() {
        super::make_fixture(crate::helpers::Backend::Sqlite).await
    }
    #[actix_rt::test]
    #[ignore = "makes the upgrade fixture of today's schema; run on purpose and commit the files"]
    async fn postgres() {
        super::make_fixture(crate::helpers::Backend::Postgres).await
    }
}
