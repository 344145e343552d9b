//! The summary report (`GET /api/v1/reports/summary`): a known data set for the first half of 2022, built through
//! the API with its historical dates, and every figure checked against a hand-computed expectation — records on the
//! window's edges (in Asia/Shanghai) counted once, records just outside not at all. Also the printable document.

use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::cases::{office as case_office, open as open_case, step as case_step, Office as CaseOffice};
use crate::fees::{add_rate, fee_act, fees_staff, pay, report as withdraw, run, Fees};
use crate::helpers::*;
use crate::inspections::{inspection_body, record, team};
use crate::on_both_databases;
use crate::permits::{act, create, permit_body};
use crate::planned_use::{issue, office as saving_office, report as use_report, water_user};

on_both_databases!(the_half_year_summary_by_hand, the_window_is_checked_and_roles_apply);

const H1: &str = "from=2022-01-01&to=2022-06-30";

async fn zone(app: &TestApp, admin: &str, name: &str, source: &str, cap: i64) -> String {
    let body = json!({"name": name, "source_type": source, "zone_class": "normal", "allowable_m3_per_year": cap});
    let r = app.post("/api/v1/water-zones").bearer(admin).json(&body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

/// A permit approved on `approved` for `from..=to`; returns its id.
async fn permit(
    app: &TestApp,
    f: &Fees,
    zone: Option<&str>,
    source: &str,
    annual: i64,
    (approved, from, to): (&str, &str, &str),
) -> String {
    let p = create(app, &f.s, &permit_body(&f.s.holder, zone, source, annual)).await;
    let id = p["id"].as_str().unwrap().to_string();
    let r = act(app, &f.s.clerk, &id, "submit", json!({"effective_date": approved})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r =
        act(app, &f.s.leader, &id, "approve", json!({"effective_date": approved, "valid_from": from, "valid_to": to}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    id
}

async fn assessment(app: &TestApp, f: &Fees, permit: &str, period: &str) -> String {
    let r = app
        .get(&format!("/api/v1/fee-assessments?permit_id={permit}&period={period}&kind=water_resource_fee"))
        .bearer(&f.finance)
        .send()
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
    r.body["items"][0]["id"].as_str().unwrap().to_string()
}

async fn served(app: &TestApp, f: &Fees, id: &str, on: &str) {
    let r = fee_act(app, &f.finance, id, "notify", json!({"effective_date": on})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn paid(app: &TestApp, f: &Fees, id: &str, amount: i64, on: &str, receipt: &str) -> Value {
    let r = pay(app, f, id, amount, on, receipt).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

/// A case opened on `clue`, filed and investigated from `filed`, notified of `fine` on `notified` (if given) and
/// decided with that fine on `decided` (if given), published on `published` (if given).
async fn case(
    app: &TestApp,
    o: &CaseOffice,
    (clue, filed, investigated): (&str, &str, &str),
    notified: Option<(&str, i64)>,
    decided: Option<&str>,
    published: Option<&str>,
) {
    let c = open_case(
        app,
        o,
        json!({"water_user_id": o.party, "violation_type": "unlicensed_abstraction",
        "facts": "未经许可擅自取水。", "effective_date": clue}),
    )
    .await;
    let c = case_step(
        app,
        &o.enforcement,
        &c,
        "file",
        json!({"effective_date": filed, "officer_ids": [o.officers[0], o.officers[1]]}),
    )
    .await;
    let mut c =
        case_step(app, &o.enforcement, &c, "start-investigation", json!({"effective_date": investigated})).await;
    if let Some((on, fine)) = notified {
        c = case_step(app, &o.enforcement, &c, "notify", json!({"proposed_fine_fen": fine, "effective_date": on}))
            .await;
        if let Some(on) = decided {
            c = case_step(app, &o.leader, &c, "decide", json!({"outcome": "penalty", "fine_fen": fine,
                "penalty_content": "罚款", "legal_basis": "《中华人民共和国水法》第六十九条第一项", "effective_date": on}))
            .await;
            if let Some(on) = published {
                case_step(
                    app,
                    &o.legal,
                    &c,
                    "publish",
                    json!({"url": "https://example.gov.cn/gs/1", "effective_date": on}),
                )
                .await;
            }
        }
    }
}

async fn rectify(app: &TestApp, token: &str, id: &str, on: &str) {
    let r = app
        .post(&format!("/api/v1/rectifications/{id}/complete"))
        .bearer(token)
        .header("if-match", "\"1\"")
        .json(&json!({"note": "已整改", "effective_date": on}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn the_half_year_summary_by_hand(app: TestApp) {
    let admin = app.admin_token().await;
    let f = fees_staff(&app).await;

    // Permits. Zones: deep groundwater capped at 1 000 000 m³, the river at 1 200 000.
    let deep = zone(&app, &admin, "深层地下水区", "groundwater_deep", 1_000_000).await;
    let river = zone(&app, &admin, "赤水河地表水区", "surface", 1_200_000).await;
    // A: approved 2021, in force on 06-30 (500 000 in the deep zone).
    let a =
        permit(&app, &f, Some(&deep), "groundwater_deep", 500_000, ("2021-01-10", "2021-01-01", "2026-12-31")).await;
    // B: approved 03-01 in the window, ends 08-31 — within 90 days after 06-30 (300 000 on the river).
    let b = permit(&app, &f, Some(&river), "surface", 300_000, ("2022-03-01", "2022-03-01", "2022-08-31")).await;
    // C: approved 02-01, revoked 05-10: approved in the window, not in force on 06-30.
    let c =
        permit(&app, &f, Some(&deep), "groundwater_deep", 200_000, ("2022-02-01", "2022-02-01", "2030-01-31")).await;
    let r =
        act(&app, &f.s.leader, &c, "revoke", json!({"reason": "以欺骗手段取得", "effective_date": "2022-05-10"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // D: approved 07-02, after the window. E: ended 06-29, the day before `to`.
    permit(&app, &f, None, "groundwater_deep", 10_000, ("2022-07-02", "2022-07-02", "2027-07-01")).await;
    permit(&app, &f, None, "groundwater_deep", 10_000, ("2021-06-01", "2021-06-01", "2022-06-29")).await;
    // F: approved 01-05 (100 000 on the river), suspended only on 08-01: in force on 06-30.
    let ff = permit(&app, &f, Some(&river), "surface", 100_000, ("2022-01-05", "2022-01-01", "2027-12-31")).await;
    let r =
        act(&app, &f.s.clerk, &ff, "suspend", json!({"reason": "计量设施故障", "effective_date": "2022-08-01"})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Withdrawals: A 10 000 in January and 20 000 in June (88 in December 2021 and 50 000 in July do not count);
    // B 5 000 in March, corrected to 7 000 (the correction counts, once).
    for (permit, period, volume) in
        [(&a, "2021-12", 88), (&a, "2022-01", 10_000), (&a, "2022-06", 20_000), (&a, "2022-07", 50_000)]
    {
        withdraw(&app, &f, permit, period, volume).await;
    }
    withdraw(&app, &f, &b, "2022-03", 5_000).await;
    withdraw(&app, &f, &b, "2022-03", 7_000).await;

    // Fees: deep groundwater at 1.5 yuan, surface water at 0.5. Q1: A 15 000.00, B 3 500.00; Q2: A 30 000.00;
    // Q3 (after the window): A 75 000.00.
    for (source, rate) in [("groundwater_deep", "1.5"), ("surface", "0.5")] {
        let body = json!({"source_type": source, "purpose": "industrial", "zone_class": null, "rate_yuan_per_m3": rate,
            "effective_from": "2020-01-01", "effective_to": null});
        assert_eq!(add_rate(&app, &f, body).await.status, 201);
    }
    for period in ["2022-Q1", "2022-Q2", "2022-Q3"] {
        run(&app, &f, period).await;
    }
    let (a1, b1, a2) = (
        assessment(&app, &f, &a, "2022-Q1").await,
        assessment(&app, &f, &b, "2022-Q1").await,
        assessment(&app, &f, &a, "2022-Q2").await,
    );
    served(&app, &f, &a1, "2022-04-06").await;
    served(&app, &f, &b1, "2022-04-06").await;
    served(&app, &f, &a2, "2022-07-06").await;
    // A's Q1, due 04-13, paid 04-23: 10 days × 2‰ × 15 000 = 300.00 late fee first, then 15 000.00 principal.
    let p = paid(&app, &f, &a1, 1_530_000, "2022-04-23", "SZ-1").await;
    assert_eq!((p["late_fee_fen"].as_i64(), p["principal_fen"].as_i64()), (Some(30_000), Some(1_500_000)));
    // B's Q1, paid 1 000.00 on 05-01: 18 days × 2‰ × 3 500 = 126.00 late fee, 874.00 principal.
    let p = paid(&app, &f, &b1, 100_000, "2022-05-01", "SZ-2").await;
    assert_eq!((p["late_fee_fen"].as_i64(), p["principal_fen"].as_i64()), (Some(12_600), Some(87_400)));
    // A's Q2, paid in July: collected after the window, outstanding on 06-30.
    paid(&app, &f, &a2, 3_000_000, "2022-07-10", "SZ-3").await;

    // Planned use: four users, one deactivated; plans for 2022 for two active ones (and the inactive one).
    let o = saving_office(&app);
    let mut users = Vec::new();
    for (n, (category, supply)) in [
        ("non_residential", "public_network"),
        ("self_supplied", "own_source"),
        ("temporary_construction", "public_network"),
        ("non_residential", "public_network"),
    ]
    .into_iter()
    .enumerate()
    {
        let wu = water_user(&app, &o, &format!("计划用水户{n}"), 900 + n as u64).await;
        let r = app
            .post("/api/v1/planned-users")
            .bearer(&o.saving)
            .json(
                &json!({"water_user_id": wu, "category": category, "supply": supply, "base_price_yuan_per_m3": "3.45"}),
            )
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        users.push(r.body["id"].as_str().unwrap().to_string());
    }
    for (user, year, annual) in [
        (&users[0], 2021, 150_000),
        (&users[0], 2022, 120_000),
        (&users[1], 2022, 60_000),
        (&users[2], 2021, 60_000),
        (&users[3], 2022, 1_200),
    ] {
        let r = issue(&app, &o, user, json!({"year": year, "annual_m3": annual})).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = app
        .patch(&format!("/api/v1/planned-users/{}", users[3]))
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // 2021 usage puts the first user on 2022's key-monitoring list (≥ 100 000 m³), not the third (50 000).
    for (user, period, volume) in [(&users[0], "2021-03", 120_000), (&users[2], "2021-03", 50_000)] {
        let r = use_report(&app, &o.saving, user, period, volume).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // Q1 2022: the first user planned 30 000 and used 36 000 — exactly 20 % over, all at ×1: 6 000 × 3.45 = 20 700.00.
    assert_eq!(use_report(&app, &o.saving, &users[0], "2022-01", 36_000).await.status, 201);
    let r = app.post("/api/v1/plan-settlements").bearer(&o.saving).json(&json!({"period": "2022-Q1"})).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get(&format!("/api/v1/fee-assessments?planned_user_id={}", users[0])).bearer(&f.finance).send().await;
    let surcharge = r.body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["items"][0]["amount_fen"], 2_070_000);
    served(&app, &f, &surcharge, "2022-04-08").await;
    paid(&app, &f, &surcharge, 500_000, "2022-04-12", "JJ-1").await;

    // Inspections, on the window's edges in Shanghai.
    let t = team(&app).await;
    let inspect = |at: &str, kind: &str, findings: Value| {
        let mut body = inspection_body(&t, findings);
        body["inspected_at"] = json!(at);
        body["kind"] = json!(kind);
        body
    };
    let finding =
        |due: &str| json!({"type": "meter_not_working", "description": "计量设施损坏", "rectification_due": due});
    // 00:00 on 1 January in Shanghai: inside, with three findings.
    let first = record(
        &app,
        &t.me_token,
        &inspect(
            "2021-12-31T16:00:00Z",
            "water_permit",
            json!([finding("2022-03-01"), finding("2022-06-01"), finding("2022-06-30")]),
        ),
    )
    .await;
    // 23:59:59 on 30 June in Shanghai: inside, one finding completed only after the window.
    let last =
        record(&app, &t.me_token, &inspect("2022-06-30T15:59:59Z", "river", json!([finding("2022-07-15")]))).await;
    // 00:10 on 1 July, and 23:59:59 on 31 December 2021, in Shanghai: outside.
    record(&app, &t.me_token, &inspect("2022-06-30T16:10:00Z", "river", json!([finding("2022-07-20")]))).await;
    record(&app, &t.me_token, &inspect("2021-12-31T15:59:59Z", "water_saving", json!([]))).await;
    let finding_id = |i: &Value, n: usize| i["findings"][n]["rectification_id"].as_str().unwrap().to_string();
    rectify(&app, &t.me_token, &finding_id(&first, 0), "2022-02-20").await;
    rectify(&app, &t.me_token, &finding_id(&last, 0), "2022-07-10").await;

    // Cases.
    let co = case_office(&app).await;
    // K1: filed 02-10, decided 04-20 (500.00), published 04-25 — on time.
    case(
        &app,
        &co,
        ("2022-02-01", "2022-02-10", "2022-02-11"),
        Some(("2022-03-01", 50_000)),
        Some("2022-04-20"),
        Some("2022-04-25"),
    )
    .await;
    // K2: filed 04-01, decided 06-20 (300.00), published only on 07-20.
    case(
        &app,
        &co,
        ("2022-03-20", "2022-04-01", "2022-04-02"),
        Some(("2022-05-01", 30_000)),
        Some("2022-06-20"),
        Some("2022-07-20"),
    )
    .await;
    // K3: filed 05-05, still under investigation. K4: filed 06-01, decided only on 07-05.
    case(&app, &co, ("2022-05-01", "2022-05-05", "2022-05-06"), None, None, None).await;
    case(&app, &co, ("2022-05-20", "2022-06-01", "2022-06-02"), Some(("2022-06-10", 20_000)), Some("2022-07-05"), None)
        .await;
    // K5: filed in 2021, decided 01-25 in the window (100.00), published 02-20 — late (due 02-08, after the
    // Spring Festival).
    case(
        &app,
        &co,
        ("2021-12-01", "2021-12-20", "2021-12-21"),
        Some(("2022-01-05", 10_000)),
        Some("2022-01-25"),
        Some("2022-02-20"),
    )
    .await;

    let leader = app.token_for("juzhang", &[Role::Leader]);
    let r = app.get(&format!("/api/v1/reports/summary?{H1}")).bearer(&leader).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let expected = json!({
        "from": "2022-01-01", "to": "2022-06-30",
        "permits": {
            "active": 3, "approved_in_period": 3, "expiring_within_90_days": 1,
            "zones": [
                {"zone_id": deep, "name": "深层地下水区", "approved_m3_per_year": 500_000,
                 "allowable_m3_per_year": 1_000_000, "utilization_pct": "50.0"},
                {"zone_id": river, "name": "赤水河地表水区", "approved_m3_per_year": 400_000,
                 "allowable_m3_per_year": 1_200_000, "utilization_pct": "33.3"},
            ]
        },
        "withdrawals": {"volume_m3": 37_000, "by_source_type": {"groundwater_deep": 30_000, "groundwater_shallow": 0,
            "karst": 0, "mine_drainage": 0, "reclaimed": 0, "surface": 7_000}},
        "inspections": {"count": 2, "by_kind": {"other": 0, "river": 1, "soil_conservation": 0, "water_permit": 1,
            "water_saving": 0}, "findings": 4, "rectified": 1, "open": 3, "overdue": 1},
        "fees": {"assessed_fen": 1_500_000 + 350_000 + 3_000_000, "collected_fen": 1_500_000 + 87_400,
            "late_fee_collected_fen": 30_000 + 12_600, "outstanding_fen": 262_600 + 3_000_000},
        "planned_use": {"registered": 3, "with_plan": 2, "by_category": {"non_residential": 1, "self_supplied": 1,
            "temporary_construction": 0}, "coverage_pct": "66.7", "key_monitoring_users": 1,
            "surcharge_assessed_fen": 2_070_000, "surcharge_collected_fen": 500_000},
        "enforcement": {"cases_filed": 4, "under_investigation": 2, "decided_with_penalty": 2, "fines_fen": 80_000,
            "published": 2, "published_on_time": 1}
    });
    assert_eq!(r.body, expected, "{}", serde_json::to_string_pretty(&r.body).unwrap());

    // The same figures as the lists give them.
    let list = |path: String| {
        let token = admin.clone();
        let app = &app;
        async move {
            let r = app.get(&path).bearer(&token).send().await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            r.body
        }
    };
    let coverage = list("/api/v1/planned-use/coverage?year=2022".into()).await;
    assert_eq!((coverage["registered"].as_i64(), coverage["with_plan"].as_i64()), (Some(3), Some(2)));
    let key = list("/api/v1/planned-use/key-monitoring?year=2022&include_total=true".into()).await;
    assert_eq!(key["total"], 1);
    let q1 = list("/api/v1/fee-assessments?period=2022-Q1&kind=water_resource_fee&as_of=2022-06-30".into()).await;
    let q2 = list("/api/v1/fee-assessments?period=2022-Q2&kind=water_resource_fee&as_of=2022-06-30".into()).await;
    let sum = |k: &str| q1["totals"][k].as_i64().unwrap() + q2["totals"][k].as_i64().unwrap();
    assert_eq!((sum("assessed_fen"), sum("outstanding_fen")), (4_850_000, 3_262_600));

    // A year: the second half adds July's withdrawals, Q3's assessment, the July payments and cases.
    let r = app.get("/api/v1/reports/summary?from=2022-01-01&to=2022-12-31").bearer(&leader).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["withdrawals"]["volume_m3"], 37_000 + 50_000);
    assert_eq!(r.body["fees"]["assessed_fen"], 4_850_000 + 7_500_000);
    assert_eq!(r.body["fees"]["collected_fen"], 1_587_400 + 3_000_000);
    // On 2022-12-31: B's Q1 still owes 2 626.00, A's Q3 75 000.00 (never served).
    assert_eq!(r.body["fees"]["outstanding_fen"], 262_600 + 7_500_000);
    assert_eq!(r.body["permits"]["active"], 2); // A and D (B ended 08-31, F suspended 08-01)
    assert_eq!(r.body["inspections"]["count"], 3);
    assert_eq!(r.body["enforcement"]["cases_filed"], 4);
    assert_eq!(r.body["enforcement"]["decided_with_penalty"], 3);
    assert_eq!(r.body["enforcement"]["published"], 3);

    // The printable document: the figures as Chinese sentences, tables and two SVG charts.
    let doc = app.get(&format!("/api/v1/reports/summary/document?{H1}")).bearer(&leader).send().await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    assert!(doc.header("content-type").unwrap().starts_with("text/html"));
    // `SHUIWU_TEST_DOCUMENTS=DIR` keeps the page, to look at it in a browser (docs/img/ has its screenshot).
    if let Some(dir) = std::env::var_os("SHUIWU_TEST_DOCUMENTS") {
        std::fs::write(std::path::Path::new(&dir).join(format!("summary-{:?}.html", app.backend)), &doc.text).unwrap();
    }
    for text in [
        "2022年上半年工作总结数据",
        "全县有效取水许可证3件",
        "新批准取水许可3件",
        "深层地下水区",
        "50.0%",
        "取水量合计37000 立方米（3.7 万立方米）",
        "开展各类检查2次（取水许可检查1，河道巡查1）",
        "核定水资源费48,500.00元，征收水资源费15,874.00元，另收滞纳金426.00元",
        "尚有32,626.00元水资源费未缴纳",
        "计划用水覆盖率66.7%",
        "立案查处水事违法案件4起",
        "按期（决定后7个工作日内）公示1件",
        "2022年第一季度",
    ] {
        assert!(doc.text.contains(text), "{text} missing from the document");
    }
    assert_eq!(doc.text.matches("<svg").count(), 2, "two charts");
}

async fn the_window_is_checked_and_roles_apply(app: TestApp) {
    let leader = app.token_for("juzhang", &[Role::Leader]);
    for query in [
        "from=2022-07-01&to=2022-06-30",
        "from=2022-01-01",
        "from=2022-02-30&to=2022-06-30",
        "from=2015-01-01&to=2022-06-30",
    ] {
        for path in ["/api/v1/reports/summary", "/api/v1/reports/summary/document"] {
            app.get(&format!("{path}?{query}")).bearer(&leader).send().await.assert_problem(400, "validation_failed");
        }
    }
    // An empty database: every figure zero, every map complete.
    let r = app.get(&format!("/api/v1/reports/summary?{H1}")).bearer(&leader).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["permits"],
        json!({"active": 0, "approved_in_period": 0, "expiring_within_90_days": 0, "zones": []})
    );
    assert_eq!(r.body["planned_use"]["coverage_pct"], "0.0");
    assert_eq!(r.body["inspections"]["by_kind"].as_object().unwrap().len(), 5);
    let doc = app.get(&format!("/api/v1/reports/summary/document?{H1}")).bearer(&leader).send().await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    // Who may read it: everyone but field inspectors.
    for role in [Role::Finance, Role::Legal, Role::Platform, Role::Auditor, Role::WaterSaving] {
        let r = app.get(&format!("/api/v1/reports/summary?{H1}")).bearer(&app.token(&[role])).send().await;
        assert_eq!(r.status, 200, "{role:?}");
    }
    app.get(&format!("/api/v1/reports/summary?{H1}"))
        .bearer(&app.token(&[Role::Inspector]))
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.get(&format!("/api/v1/reports/summary?{H1}")).send().await.assert_problem(401, "unauthorized");
}
