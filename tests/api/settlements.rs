//! Plan settlements end to end: over-plan use billed band by band as `over_plan_surcharge` fee assessments, run
//! again without duplicates, recalculated before service and only reported after, printed, paid; a year and its
//! quarters exclude each other; settlements fired together make one record per user.

use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;
use crate::planned_use::{issue, last_year, office, planned_user, report, water_user, Office};

on_both_databases!(
    a_year_settled_billed_and_collected,
    quarters_settled_together_once,
    a_year_and_its_quarter_fired_together
);

async fn settle(app: &TestApp, o: &Office, body: Value) -> Resp {
    app.post("/api/v1/plan-settlements").bearer(&o.saving).json(&body).send().await
}

async fn settled(app: &TestApp, o: &Office, body: Value) -> Value {
    let r = settle(app, o, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The surcharges of a planned user, as finance lists them.
async fn surcharges_of(app: &TestApp, finance: &str, user: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/fee-assessments?planned_user_id={user}")).bearer(finance).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

fn counts(s: &Value) -> [i64; 7] {
    ["planned_users", "over_plan", "created", "recalculated", "unchanged", "with_difference", "unpriced_count"]
        .map(|k| s[k].as_i64().unwrap_or_else(|| panic!("{k} in {s}")))
}

async fn a_year_settled_billed_and_collected(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let finance = app.token_for("caiwu01", &[Role::Finance]);
    let jan = format!("{y}-01");
    // A (its own price 3.45) and B plan 1 200 m³ (100 a month); C, temporary construction with no price of its own
    // (and none for its category yet), plans nothing.
    let a_wu = water_user(&app, &o, "赤水市天岛湖酒店有限公司", 401).await;
    let a = planned_user(&app, &o, &a_wu).await["id"].as_str().unwrap().to_string();
    let b = planned_user(&app, &o, &water_user(&app, &o, "赤水市第一中学", 402).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c_wu = water_user(&app, &o, "赤水市城南安置房项目部", 403).await;
    let c = app
        .post("/api/v1/planned-users")
        .bearer(&o.saving)
        .json(&json!({"water_user_id": c_wu, "category": "temporary_construction", "supply": "public_network"}))
        .send()
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let c = c.body["id"].as_str().unwrap().to_string();
    for (user, annual) in [(&a, 1200), (&b, 1200), (&c, 0)] {
        assert_eq!(issue(&app, &o, user, json!({"year": y, "annual_m3": annual})).await.status, 201);
    }
    for (user, v) in [(&a, 1800), (&b, 1000), (&c, 10)] {
        assert_eq!(report(&app, &o.saving, user, &jan, v).await.status, 201);
    }

    // Who may settle, and what.
    let refused = app.post("/api/v1/plan-settlements").bearer(&finance).json(&json!({"year": y})).send().await;
    refused.assert_problem(403, "forbidden");
    settle(&app, &o, json!({"year": y + 1})).await.assert_problem(409, "period_not_ended");
    settle(&app, &o, json!({})).await.assert_problem(400, "validation_failed");
    settle(&app, &o, json!({"year": y, "period": format!("{y}-Q1")})).await.assert_problem(400, "validation_failed");
    settle(&app, &o, json!({"period": format!("{y}-Q5")})).await.assert_problem(400, "validation_failed");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments"), 0);

    // A used 1 800 m³ against 1 200: 50 % over = 240 m³ at ×1, 240 at ×2, 120 at ×3 → 1 080 × 3.45 = 3 726.00 yuan.
    // B stayed within its plan; C is over but has no price: listed, not charged. Eleven months unreported each.
    let first = settled(&app, &o, json!({"year": y})).await;
    assert_eq!(first["period"], y.to_string());
    assert_eq!(counts(&first), [3, 2, 1, 0, 0, 0, 1], "{first}");
    assert_eq!(first["incomplete"], 3);
    assert_eq!(first["unpriced"][0]["planned_user_id"], c.as_str());
    assert_eq!(first["unpriced"][0]["water_user_name"], "赤水市城南安置房项目部");
    assert_eq!(first["unpriced"][0]["excess_m3"], 10);
    let items = surcharges_of(&app, &finance, &a).await;
    assert_eq!(items.len(), 1);
    let s = &items[0];
    assert_eq!(s["kind"], "over_plan_surcharge");
    assert_eq!(
        (s["payer_id"].as_str(), s["payer_name"].as_str()),
        (Some(a_wu.as_str()), Some("赤水市天岛湖酒店有限公司"))
    );
    assert_eq!((s["permit_id"].clone(), s["planned_user_id"].as_str()), (Value::Null, Some(a.as_str())));
    assert_eq!(
        (s["period"].as_str(), s["volume_m3"].as_i64(), s["amount_fen"].as_i64()),
        (Some(&*y.to_string()), Some(600), Some(372_600))
    );
    assert_eq!(s["months"].as_array().unwrap().len(), 12);
    assert_eq!(s["status"], "assessed");
    let basis = &s["surcharge"];
    assert_eq!(
        (basis["planned_m3"].as_i64(), basis["used_m3"].as_i64(), basis["excess_m3"].as_i64()),
        (Some(1200), Some(1800), Some(600))
    );
    assert_eq!(
        (basis["base_price_yuan_per_m3"].as_str(), basis["price_source"].as_str()),
        (Some("3.4500"), Some("planned_user"))
    );
    let bands: Vec<(i64, &str, &str)> = basis["bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (b["volume_m3"].as_i64().unwrap(), b["multiplier"].as_str().unwrap(), b["amount_yuan"].as_str().unwrap())
        })
        .collect();
    assert_eq!(bands, [(240, "1", "828.0000"), (240, "2", "1656.0000"), (120, "3", "1242.0000")]);
    assert_eq!(basis["months"][0], json!({"month": jan, "planned_m3": 100, "used_m3": 1800}));
    assert_eq!(basis["months"][1]["used_m3"], Value::Null);
    assert!(surcharges_of(&app, &finance, &b).await.is_empty());
    assert!(surcharges_of(&app, &finance, &c).await.is_empty());

    // Again: nothing new.
    let again = settled(&app, &o, json!({"year": y})).await;
    assert_eq!(counts(&again), [3, 2, 0, 0, 1, 0, 1], "{again}");
    // A correction before the notice is served: recalculated (800 over: 240 + 480 + 960 = 1 680 × 3.45).
    assert_eq!(report(&app, &o.saving, &a, &jan, 2000).await.status, 201);
    let third = settled(&app, &o, json!({"year": y})).await;
    assert_eq!(counts(&third), [3, 2, 0, 1, 0, 0, 1], "{third}");
    let s = &surcharges_of(&app, &finance, &a).await[0];
    assert_eq!(
        (s["amount_fen"].as_i64(), s["volume_m3"].as_i64(), s["version"].as_i64()),
        (Some(579_600), Some(800), Some(2))
    );
    // A price for C's category: C's 10 m³ over a plan of nothing all fall in the top band, 10 × 3 × 2.00.
    let put = app
        .request(awc::http::Method::PUT, "/api/v1/surcharge-tiers")
        .bearer(&app.token_for("admin", &[Role::Admin]))
        .header("if-match", "\"1\"")
        .json(&json!({"tiers": [{"over_pct_from": 0, "over_pct_to": 20, "multiplier": "1"},
                                {"over_pct_from": 20, "over_pct_to": 40, "multiplier": "2"},
                                {"over_pct_from": 40, "over_pct_to": null, "multiplier": "3"}],
                      "category_base_prices": {"temporary_construction": "2"}}))
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let fourth = settled(&app, &o, json!({"year": y})).await;
    assert_eq!(counts(&fourth), [3, 2, 1, 0, 1, 0, 0], "{fourth}");
    let cs = &surcharges_of(&app, &finance, &c).await[0];
    assert_eq!((cs["amount_fen"].as_i64(), cs["surcharge"]["price_source"].as_str()), (Some(6000), Some("category")));

    // Finance serves A's notice; a later correction no longer changes it: the settlement reports the difference.
    let id = s["id"].as_str().unwrap().to_string();
    let etag = app.get(&format!("/api/v1/fee-assessments/{id}")).bearer(&finance).send().await.etag();
    let served = app
        .post(&format!("/api/v1/fee-assessments/{id}/notify"))
        .bearer(&finance)
        .header("if-match", &etag)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(report(&app, &o.saving, &a, &jan, 2100).await.status, 201);
    let fifth = settled(&app, &o, json!({"year": y})).await;
    assert_eq!(counts(&fifth), [3, 2, 0, 0, 1, 1, 0], "{fifth}");
    // 900 over: 240 + 480 + 1 260 = 1 980 × 3.45 = 6 831.00 yuan, 1 035.00 more than served.
    assert_eq!(
        fifth["differences"][0],
        json!({"assessment_id": id, "planned_user_id": a, "assessed_fen": 579_600, "amount_fen": 683_100, "difference_fen": 103_500})
    );
    let now = app.get(&format!("/api/v1/fee-assessments/{id}")).bearer(&finance).send().await;
    assert_eq!((now.body["amount_fen"].as_i64(), now.body["status"].as_str()), (Some(579_600), Some("notified")));
    // A surcharge names its payer and has no permit.
    assert_eq!((&now.body["payer_name"], &now.body["permit_no"]), (&json!("赤水市天岛湖酒店有限公司"), &Value::Null));

    // The notice says what it charges and how.
    let notice = app.get(&format!("/api/v1/fee-assessments/{id}/notice")).bearer(&finance).send().await;
    assert_eq!(notice.status, 200, "{}", notice.text);
    // `SHUIWU_TEST_DOCUMENTS=DIR` keeps the page, to look at it in a browser (docs/img/ has its screenshot).
    if let Some(dir) = std::env::var_os("SHUIWU_TEST_DOCUMENTS") {
        let path = std::path::Path::new(&dir).join(format!("surcharge-notice-{:?}.html", app.backend));
        std::fs::write(path, &notice.text).unwrap();
    }
    for text in [
        "超计划用水累进加价费缴款通知书",
        &format!("{y}年度计划用水量为 1200 立方米"),
        "超计划用水 800 立方米",
        "20% 以内（含）",
        "40% 以上",
        "伍仟柒佰玖拾陆元整",
        "5,796.00",
    ] {
        assert!(notice.text.contains(text), "{text} in the notice");
    }
    assert!(!notice.text.contains("取水许可证号"));

    // A year settled as a year cannot be settled by quarter too.
    settle(&app, &o, json!({"period": format!("{y}-Q1")})).await.assert_problem(409, "settled_by_other_period");

    // Finance collects it like a fee.
    let paid = app
        .post(&format!("/api/v1/fee-assessments/{id}/payments"))
        .bearer(&finance)
        .json(&json!({"amount_fen": 579_600, "paid_on": today().to_string(), "method": "bank_transfer", "receipt_no": "JS-0001"}))
        .send()
        .await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    let after = app.get(&format!("/api/v1/fee-assessments/{id}")).bearer(&finance).send().await;
    assert_eq!((after.body["status"].as_str(), after.body["outstanding_fen"].as_i64()), (Some("paid"), Some(0)));
    let totals = app.get("/api/v1/fee-assessments?kind=over_plan_surcharge").bearer(&finance).send().await;
    assert_eq!(totals.body["totals"]["assessed_fen"], 579_600 + 6000, "{}", totals.text);
    assert_eq!(totals.body["totals"]["paid_fen"], 579_600);
    let of_year = app.get(&format!("/api/v1/fee-assessments?period={y}")).bearer(&finance).send().await;
    assert_eq!(of_year.body["totals"]["count"], 2, "{}", of_year.text);

    // Two records, each audited and in the feed; five runs recorded.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments WHERE kind = 'over_plan_surcharge'"), 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'plan_settlement_run'"), 5);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM audit_events WHERE entity_id = '{id}' AND action LIKE 'fee_assessment_%'"
        )),
        4,
        "created, recalculated, notify, paid"
    );
    let feed = whole_feed(&app, "fee_assessment").await;
    assert!(feed.iter().any(|c| c["entity_id"] == id.as_str()));
}

async fn quarters_settled_together_once(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let finance = app.token(&[Role::Finance]);
    let mut users = Vec::new();
    for n in 0..3 {
        let wu = water_user(&app, &o, &format!("赤水市计划用水单位{n}"), 420 + n).await;
        let id = planned_user(&app, &o, &wu).await["id"].as_str().unwrap().to_string();
        assert_eq!(issue(&app, &o, &id, json!({"year": y, "annual_m3": 1200})).await.status, 201);
        users.push(id);
    }
    // Quarter 1 plans 300 m³ each: the first two run over, the third does not.
    for (i, v) in [(0, 330), (1, 500), (2, 300)] {
        assert_eq!(report(&app, &o.saving, &users[i], &format!("{y}-02"), v).await.status, 201);
    }
    // Five settlements of the quarter at once (a double-click, a retry, two clerks): one record per user.
    let q1 = format!("{y}-Q1");
    let runs = join_all((0..5).map(|_| settle(&app, &o, json!({"period": q1})))).await;
    let mut created = 0;
    for r in &runs {
        assert_eq!(r.status, 200, "{}", r.text);
        created += r.body["created"].as_i64().unwrap();
    }
    assert_eq!(created, 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments WHERE kind = 'over_plan_surcharge'"), 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'fee_assessment_created'"), 2);
    // 30 m³ over 300 (10 %) at ×1 × 3.45 = 103.50 yuan; 200 over (66.7 %): 60 + 60 × 2 + 80 × 3 = 420 × 3.45.
    let amounts: Vec<i64> = join_all(users[..2].iter().map(|u| surcharges_of(&app, &finance, u)))
        .await
        .iter()
        .map(|items| items[0]["amount_fen"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [10_350, 144_900]);
    let s = &surcharges_of(&app, &finance, &users[1]).await[0];
    assert_eq!((s["period"].as_str(), s["months"].as_array().unwrap().len()), (Some(q1.as_str()), 3));
    // Another quarter of the same year is fine; the year as a whole is not.
    let q2 = settled(&app, &o, json!({"period": format!("{y}-Q2")})).await;
    assert_eq!(counts(&q2), [3, 0, 0, 0, 0, 0, 0], "{q2}");
    assert_eq!(q2["incomplete"], 3);
    settle(&app, &o, json!({"year": y})).await.assert_problem(409, "settled_by_other_period");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments"), 2);
}

async fn a_year_and_its_quarter_fired_together(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    for n in 0..2 {
        let wu = water_user(&app, &o, &format!("赤水市用水大户{n}"), 440 + n).await;
        let id = planned_user(&app, &o, &wu).await["id"].as_str().unwrap().to_string();
        assert_eq!(issue(&app, &o, &id, json!({"year": y, "annual_m3": 1200})).await.status, 201);
        assert_eq!(report(&app, &o.saving, &id, &format!("{y}-01"), 1500).await.status, 201);
    }
    // Two clerks: one settles the year, the other its first quarter, at the same moment. One wins; the excess is
    // never charged twice.
    let both =
        join_all([settle(&app, &o, json!({"year": y})), settle(&app, &o, json!({"period": format!("{y}-Q1")}))]).await;
    let ok: Vec<&Resp> = both.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{} / {}", both[0].text, both[1].text);
    assert_eq!(ok[0].body["created"], 2);
    let refused = both.iter().find(|r| r.status != 200).unwrap();
    refused.assert_problem(409, "settled_by_other_period");
    assert_eq!(app.count("SELECT COUNT(DISTINCT period) AS n FROM fee_assessments"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments"), 2);
}
