//! The start-of-year bulk import of planned users and their plans: CSV (BOM, CRLF, Chinese text) and Excel,
//! all rows or none with every bad row reported, the same file twice creating nothing, the templates.

use std::io::Cursor;

use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;
use crate::planned_use::{office, planned_user, water_user, Office};

on_both_databases!(
    a_csv_imports_once_and_again_creates_nothing,
    one_bad_row_in_a_thousand_writes_nothing,
    an_excel_workbook_and_the_templates,
    bad_uploads_are_refused,
    an_import_retried_with_its_key_runs_once,
);

const HEADER: &str = "credit_code,name,category,supply,base_price_yuan_per_m3,year,annual_m3";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn upload(app: &TestApp, o: &Office, bytes: impl Into<Vec<u8>>, content_type: &str) -> Resp {
    app.post("/api/v1/planned-users/import").bearer(&o.saving).raw(bytes, content_type).send().await
}

fn counts(app: &TestApp) -> [i64; 3] {
    ["water_users", "planned_users", "plans"].map(|t| app.count(&format!("SELECT COUNT(*) AS n FROM {t}")))
}

fn summary(r: &Resp) -> [i64; 6] {
    assert_eq!(r.status, 200, "{}", r.text);
    ["rows", "water_users_created", "planned_users_created", "planned_users_updated", "plans_created", "plans_existing"]
        .map(|k| r.body[k].as_i64().unwrap_or_else(|| panic!("{k} in {}", r.text)))
}

/// A data row of the import file.
fn row(n: u64, name: &str, category: &str, price: &str, year: i32, annual: i64) -> String {
    format!("{},{name},{category},public_network,{price},{year},{annual}", credit_code(n))
}

async fn plans_of(app: &TestApp, o: &Office, credit: &str) -> Vec<Value> {
    let users = app.get(&format!("/api/v1/planned-users?q={credit}")).bearer(&o.saving).send().await;
    let id = users.body["items"][0]["id"].as_str().unwrap_or_else(|| panic!("{credit}: {}", users.text)).to_string();
    let plans = app.get(&format!("/api/v1/planned-users/{id}/plans")).bearer(&o.saving).send().await;
    plans.body["items"].as_array().unwrap().clone()
}

async fn a_csv_imports_once_and_again_creates_nothing(app: TestApp) {
    let o = office(&app);
    // One organisation is already registered and a planned user at another price; the file brings its plan,
    // a new price, and two organisations new to the registry (one in Chinese terms, as Excel users write them).
    let known = water_user(&app, &o, "赤水市天岛湖酒店有限公司", 501).await;
    planned_user(&app, &o, &known).await;
    let before = counts(&app);
    let file = format!(
        "\u{feff}{HEADER}\r\n{}\r\n{}\r\n\r\n{}\r\n",
        row(501, "赤水市天岛湖酒店有限公司", "non_residential", "4.2", 2026, 120_000),
        row(502, "\"赤水市第一中学, 南校区\"", "非居民用水户", "", 2026, 1_000),
        row(503, "赤水市城南安置房项目部", "temporary_construction", "2.85", 2026, 36_000),
    );
    let refused = app
        .post("/api/v1/planned-users/import")
        .bearer(&app.token(&[Role::Finance]))
        .raw(file.clone(), "text/csv")
        .send()
        .await;
    refused.assert_problem(403, "forbidden");

    let first = upload(&app, &o, file.clone(), "text/csv; charset=utf-8").await;
    assert_eq!(summary(&first), [3, 2, 2, 1, 3, 0]);
    assert_eq!(counts(&app), [before[0] + 2, before[1] + 2, before[2] + 3]);
    // Every record as a single registration would have made it.
    let school = app.get(&format!("/api/v1/water-users?q={}", credit_code(502))).bearer(&o.saving).send().await;
    let school = &school.body["items"][0];
    assert_eq!(
        (school["name"].as_str(), school["region_code"].as_str()),
        (Some("赤水市第一中学, 南校区"), Some("520381"))
    );
    let users = app.get(&format!("/api/v1/planned-users?q={}", credit_code(501))).bearer(&o.saving).send().await;
    assert_eq!(users.body["items"][0]["base_price_yuan_per_m3"], "4.2000", "{}", users.text);
    assert_eq!(users.body["items"][0]["version"], 2);
    let plans = plans_of(&app, &o, &credit_code(502)).await;
    assert_eq!(plans[0]["year"], 2026);
    let mut monthly = vec![83; 11];
    monthly.push(87);
    assert_eq!(plans[0]["monthly_m3"], json!(monthly));
    assert_eq!(plans[0]["status"], "issued");
    assert_eq!(plans_of(&app, &o, &credit_code(501)).await[0]["monthly_m3"][0], 10_000);

    // The same file again: nothing new, nothing changed.
    let again = upload(&app, &o, file.clone(), "text/csv").await;
    assert_eq!(summary(&again), [3, 0, 0, 0, 0, 3]);
    assert_eq!(counts(&app), [before[0] + 2, before[1] + 2, before[2] + 3]);
    // Audited record by record, and the import itself; in the change feed.
    let audited =
        |action: &str| app.count(&format!("SELECT COUNT(*) AS n FROM audit_events WHERE action = '{action}'"));
    assert_eq!(audited("planned_users_imported"), 2);
    assert_eq!(audited("plan_issued"), 3);
    assert_eq!(audited("planned_user_updated"), 1);
    let feed = whole_feed(&app, "plan").await;
    assert_eq!(feed.len(), 3);

    // Another year for the same organisations, fired twice at once: one imports, the other finds it done.
    let next = format!(
        "{HEADER}\n{}\n{}\n",
        row(502, "\"赤水市第一中学, 南校区\"", "non_residential", "", 2027, 1_200),
        row(504, "赤水市新建单位", "self_supplied", "1.5", 2027, 5_000),
    );
    let both = join_all([upload(&app, &o, next.clone(), "text/csv"), upload(&app, &o, next.clone(), "text/csv")]).await;
    let mut sums = both.iter().map(summary).collect::<Vec<_>>();
    sums.sort();
    assert_eq!(sums, [[2, 0, 0, 0, 0, 2], [2, 1, 1, 0, 2, 0]]);
    assert_eq!(counts(&app), [before[0] + 3, before[1] + 3, before[2] + 5]);

    // A plan already issued with another quantity is adjusted, not re-imported.
    let changed = format!("{HEADER}\n{}\n", row(504, "赤水市新建单位", "self_supplied", "1.5", 2027, 6_000));
    let r = upload(&app, &o, changed, "text/csv").await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(
        r.body["errors"],
        json!([{"line": 2, "field": "annual_m3", "message": "2027 年度的用水计划已下达，如需变更请调整计划"}])
    );
}

async fn one_bad_row_in_a_thousand_writes_nothing(app: TestApp) {
    let o = office(&app);
    let before = counts(&app);
    let mut file = String::from(HEADER);
    for n in 0..1000u64 {
        // Line 501 (the 500th row) names a category that does not exist.
        let category = if n == 499 { "residential" } else { "non_residential" };
        file.push_str(&format!(
            "\r\n{}",
            row(10_000 + n, &format!("赤水市用水单位{n}"), category, "3.45", 2026, 12_000)
        ));
    }
    let r = upload(&app, &o, file, "text/csv").await;
    r.assert_problem(400, "validation_failed");
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", r.text);
    assert_eq!((errors[0]["line"].as_i64(), errors[0]["field"].as_str()), (Some(501), Some("category")));
    assert!(errors[0]["message"].as_str().unwrap().contains("non_residential"), "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().starts_with("第 501 行 category"), "{}", r.text);
    assert_eq!(counts(&app), before);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'water_user_created'"), 0);

    // Every bad row is reported, each with its line and column, in English when asked.
    let file = [
        HEADER.to_string(),
        row(20_001, "赤水市甲单位", "non_residential", "3.45", 2026, 1200),
        "91520381MA6DKQ1X2X,赤水市乙单位,non_residential,public_network,3.45,2026,1200".into(),
        row(20_003, "", "non_residential", "3.455555", 1999, -5),
        row(20_001, "赤水市甲单位", "non_residential", "3.45", 2026, 1300),
        row(20_001, "赤水市甲单位（改名）", "non_residential", "3.45", 2027, 1300),
        format!("{},赤水市丙单位,non_residential,public_network,3.45,2026,12.5", credit_code(20_006)),
    ]
    .join("\n");
    let r = app
        .post("/api/v1/planned-users/import")
        .bearer(&o.saving)
        .header("accept-language", "en")
        .raw(file, "text/csv")
        .send()
        .await;
    r.assert_problem(400, "validation_failed");
    let found: Vec<(i64, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (3, "credit_code"),
            (4, "name"),
            (4, "base_price_yuan_per_m3"),
            (4, "year"),
            (4, "annual_m3"),
            (5, "credit_code"),
            (6, "credit_code"),
            (7, "annual_m3"),
        ],
        "{}",
        r.text
    );
    assert!(r.body["errors"][5]["message"].as_str().unwrap().contains("line 2"), "{}", r.text);
    assert_eq!(counts(&app), before);
}

/// An Excel workbook as staff fill it in: numbers typed as numbers, Chinese category names, a blank row.
fn workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADER.split(',').enumerate() {
        sheet.write_string(0, c as u16, h).unwrap();
    }
    let rows = [
        (601, "赤水市天岛湖酒店有限公司", "非居民用水户", "自备水源", Some(3.45), 120_000.0),
        (602, "赤水市第二中学", "non_residential", "public_network", None, 2_400.0),
    ];
    for (i, (n, name, category, supply, price, annual)) in rows.iter().enumerate() {
        let r = if i == 0 { 1 } else { 3 };
        sheet.write_string(r, 0, credit_code(*n)).unwrap();
        sheet.write_string(r, 1, *name).unwrap();
        sheet.write_string(r, 2, *category).unwrap();
        sheet.write_string(r, 3, *supply).unwrap();
        if let Some(p) = price {
            sheet.write_number(r, 4, *p).unwrap();
        }
        sheet.write_number(r, 5, 2026.0).unwrap();
        sheet.write_number(r, 6, *annual).unwrap();
    }
    book.add_worksheet().write_string(0, 0, "second sheet: ignored").unwrap();
    book.save_to_buffer().unwrap()
}

async fn an_excel_workbook_and_the_templates(app: TestApp) {
    let o = office(&app);
    let r = upload(&app, &o, workbook(), XLSX).await;
    assert_eq!(summary(&r), [2, 2, 2, 0, 2, 0]);
    let users = app.get(&format!("/api/v1/planned-users?q={}", credit_code(601))).bearer(&o.saving).send().await;
    let u = &users.body["items"][0];
    assert_eq!((u["supply"].as_str(), u["base_price_yuan_per_m3"].as_str()), (Some("own_source"), Some("3.4500")));
    assert_eq!(plans_of(&app, &o, &credit_code(602)).await[0]["annual_m3"], 2400);
    // The same workbook sent as an unspecified binary is recognised as one; again it creates nothing.
    let again = upload(&app, &o, workbook(), "application/octet-stream").await;
    assert_eq!(summary(&again), [2, 0, 0, 0, 0, 2]);
    // A bad cell in a workbook is reported at its spreadsheet row.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADER.split(',').enumerate() {
        sheet.write_string(0, c as u16, h).unwrap();
    }
    for (c, v) in
        [credit_code(603), "单位".into(), "non_residential".into(), "public_network".into()].iter().enumerate()
    {
        sheet.write_string(4, c as u16, v).unwrap();
    }
    sheet.write_number(4, 5, 2026.0).unwrap();
    sheet.write_number(4, 6, 1.5).unwrap();
    let bad = upload(&app, &o, book.save_to_buffer().unwrap(), XLSX).await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(
        (bad.body["errors"][0]["line"].as_i64(), bad.body["errors"][0]["field"].as_str()),
        (Some(5), Some("annual_m3"))
    );

    // The templates: CSV with a BOM and the header; a workbook whose first row is the header.
    let reader = app.token(&[Role::Auditor]);
    let csv = app.get("/api/v1/planned-users/import-template").bearer(&reader).send().await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.header("content-disposition").unwrap().contains("attachment"));
    assert_eq!(csv.bytes, format!("\u{feff}{HEADER}\r\n").into_bytes());
    let xlsx = app.get("/api/v1/planned-users/import-template?format=xlsx").bearer(&reader).send().await;
    assert_eq!((xlsx.status, xlsx.header("content-type").as_deref()), (200, Some(XLSX)));
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(Cursor::new(xlsx.bytes.clone())).unwrap();
    assert_eq!(book.sheet_names(), ["计划用水户", "填写说明"]);
    let range = book.worksheet_range("计划用水户").unwrap();
    let header: Vec<String> = range.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(header.join(","), HEADER);
    // The template itself, sent back empty, has no rows to import.
    let empty = upload(&app, &o, xlsx.bytes, XLSX).await;
    empty.assert_problem(400, "validation_failed");
    assert_eq!(empty.body["errors"][0]["field"], "file");
    app.get("/api/v1/planned-users/import-template?format=pdf")
        .bearer(&reader)
        .send()
        .await
        .assert_problem(400, "validation_failed");
}

async fn bad_uploads_are_refused(app: TestApp) {
    let o = office(&app);
    let before = counts(&app);
    upload(&app, &o, "{}", "application/json").await.assert_problem(415, "unsupported_media_type");
    upload(&app, &o, vec![b'a'; 21 * 1024 * 1024], "text/csv").await.assert_problem(413, "payload_too_large");
    // A header without its columns: refused at line 1, naming what is missing and what is unknown.
    let r = upload(&app, &o, "credit_code,name,category,supply,year,annual,remark\n", "text/csv").await;
    r.assert_problem(400, "validation_failed");
    let fields: Vec<(i64, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [(1, "header"), (1, "header"), (1, "base_price_yuan_per_m3"), (1, "annual_m3")], "{}", r.text);
    // Nothing but a header, nothing at all, and a file that is not text.
    upload(&app, &o, format!("{HEADER}\r\n"), "text/csv").await.assert_problem(400, "validation_failed");
    upload(&app, &o, "", "text/csv").await.assert_problem(400, "validation_failed");
    let garbage = upload(&app, &o, vec![0xff, 0xfe, 0x00, 0x41, 0x2c, 0x0a], "text/csv").await;
    garbage.assert_problem(400, "validation_failed");
    upload(&app, &o, b"PK\x03\x04 not really a workbook".to_vec(), XLSX).await.assert_problem(400, "validation_failed");
    assert_eq!(counts(&app), before);
}

/// An import is an upload: the middleware does not read it, the handler claims the key with the file's digest. A
/// retry of the same file replays, another file under the key is 422, and a file over 1 MiB takes a key too.
async fn an_import_retried_with_its_key_runs_once(app: TestApp) {
    let o = office(&app);
    let file = format!("{HEADER}\r\n{}\r\n", row(601, "赤水市第二中学", "non_residential", "3.1", 2026, 5_000));
    let send = |body: String, key: &'static str| {
        let app = &app;
        let token = o.saving.clone();
        async move {
            app.post("/api/v1/planned-users/import")
                .bearer(&token)
                .header("idempotency-key", key)
                .raw(body, "text/csv")
                .send()
                .await
        }
    };
    let first = send(file.clone(), "imp-1").await;
    assert_eq!(summary(&first), [1, 1, 1, 0, 1, 0]);
    let after = counts(&app);
    // Multipart framing aside, "the same request" is the same file: replayed, nothing written again.
    let again = send(file.clone(), "imp-1").await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    assert_eq!(again.header("idempotency-replayed").as_deref(), Some("true"));
    assert_eq!(counts(&app), after);
    send(file.replace("5000", "6000"), "imp-1").await.assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'planned_users_imported'"), 1);

    // Over 1 MiB with a key: read in full (not 413); a refused file frees the key, so the corrected one runs.
    let mut big = String::from(HEADER);
    big.push_str("\r\n");
    while big.len() < 1_200_000 {
        big.push_str(&row(602, "格式错误的单位", "no_such_category", "3.1", 2026, 1));
        big.push_str("\r\n");
    }
    let bad = send(big, "imp-2").await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(counts(&app), after);
    let fixed = format!("{HEADER}\r\n{}\r\n", row(602, "改正后的单位", "non_residential", "3.1", 2026, 1));
    assert_eq!(summary(&send(fixed, "imp-2").await), [1, 1, 1, 0, 1, 0]);
}
