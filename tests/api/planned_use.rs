//! Planned water use end to end: registering planned users, issuing and adjusting annual plans, recording and
//! correcting monthly usage, coverage, and plans or reports fired together.

use chrono::Datelike;
use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    planned_users_plans_and_usage,
    plans_must_add_up_and_adjustments_keep_history,
    inactive_users_and_missing_plans_are_refused,
    coverage_counts_active_users_with_a_plan,
    plans_and_reports_fired_together_land_once,
    warnings_and_the_key_monitoring_list,
    admin_keeps_the_surcharge_tiers,
    plans_filter_by_category_and_over_plan,
);

pub struct Office {
    pub saving: String,
}

pub fn office(app: &TestApp) -> Office {
    Office { saving: app.token_for("jieshui01", &[Role::WaterSaving]) }
}

/// A year whose months have all passed.
pub fn last_year() -> i32 {
    today().year() - 1
}

pub async fn water_user(app: &TestApp, o: &Office, name: &str, n: u64) -> String {
    let r =
        app.post("/api/v1/water-users").bearer(&o.saving).json(&water_user_body(name, &credit_code(n))).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

pub async fn planned_user(app: &TestApp, o: &Office, water_user_id: &str) -> Value {
    let r = app
        .post("/api/v1/planned-users")
        .bearer(&o.saving)
        .json(&json!({"water_user_id": water_user_id, "category": "non_residential", "supply": "public_network",
                      "base_price_yuan_per_m3": "3.45"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

pub async fn issue(app: &TestApp, o: &Office, user: &str, body: Value) -> Resp {
    app.post(&format!("/api/v1/planned-users/{user}/plans")).bearer(&o.saving).json(&body).send().await
}

pub async fn report(app: &TestApp, token: &str, user: &str, period: &str, volume: i64) -> Resp {
    app.post(&format!("/api/v1/planned-users/{user}/usage"))
        .bearer(token)
        .json(&json!({"period": period, "volume_m3": volume}))
        .send()
        .await
}

async fn planned_users_plans_and_usage(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let wu = water_user(&app, &o, "赤水市天岛湖酒店有限公司", 301).await;
    let pu = planned_user(&app, &o, &wu).await;
    let id = pu["id"].as_str().unwrap();
    assert_eq!(pu["water_user_name"], "赤水市天岛湖酒店有限公司");
    assert_eq!(pu["credit_code"], credit_code(301));
    assert_eq!(pu["base_price_yuan_per_m3"], "3.4500");
    assert_eq!(pu["active"], true);
    assert_eq!(pu["category"], "non_residential");

    // One planned user per water user; the water user must exist; categories are a closed set.
    let again = app
        .post("/api/v1/planned-users")
        .bearer(&o.saving)
        .json(&json!({"water_user_id": wu, "category": "self_supplied", "supply": "own_source"}))
        .send()
        .await;
    again.assert_problem(409, "conflict");
    let missing = app
        .post("/api/v1/planned-users")
        .bearer(&o.saving)
        .json(&json!({"water_user_id": "00000000-0000-7000-8000-000000000000", "category": "self_supplied", "supply": "own_source"}))
        .send()
        .await;
    missing.assert_problem(400, "validation_failed");
    assert_eq!(missing.body["errors"][0]["field"], "water_user_id", "{}", missing.text);
    let bad = app
        .post("/api/v1/planned-users")
        .bearer(&o.saving)
        .json(&json!({"water_user_id": wu, "category": "residential", "supply": "own_source"}))
        .send()
        .await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM planned_users"), 1);
    // Finance reads but does not register.
    let finance = app.token(&[Role::Finance]);
    let refused = app
        .post("/api/v1/planned-users")
        .bearer(&finance)
        .json(&json!({"water_user_id": wu, "category": "self_supplied", "supply": "own_source"}))
        .send()
        .await;
    refused.assert_problem(403, "forbidden");

    // A plan without months is split evenly, the remainder in December.
    let plan = issue(&app, &o, id, json!({"year": y, "annual_m3": 1_200_011})).await;
    assert_eq!(plan.status, 201, "{}", plan.text);
    let mut months = vec![json!(100_000); 11];
    months.push(json!(100_011));
    assert_eq!(plan.body["monthly_m3"], Value::Array(months));
    assert_eq!(plan.body["status"], "issued");
    assert_eq!(plan.body["issued_on"], today().to_string());
    let stored =
        app.text(&format!("SELECT monthly_m3 AS t FROM plans WHERE id = '{}'", plan.body["id"].as_str().unwrap()));
    assert!(stored.unwrap().ends_with("100011]"));

    // Usage, then a correction: a new revision, the first kept, superseded.
    let first = report(&app, &o.saving, id, &format!("{y}-03"), 98_000).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!((first.body["revision"].as_i64(), first.body["source"].as_str()), (Some(1), Some("staff")));
    assert_eq!(first.body["reported_by"], "jieshui01");
    let fixed = report(&app, &o.saving, id, &format!("{y}-03"), 99_500).await;
    assert_eq!(fixed.status, 201, "{}", fixed.text);
    assert_eq!(fixed.body["revision"], 2);
    let old = app.get(&format!("/api/v1/usage/{}", first.body["id"].as_str().unwrap())).bearer(&finance).send().await;
    assert_eq!((old.body["superseded"].as_bool(), old.body["version"].as_i64()), (Some(true), Some(2)));
    let current = app.get(&format!("/api/v1/planned-users/{id}/usage")).bearer(&finance).send().await;
    assert_eq!(current.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(current.body["items"][0]["volume_m3"], 99_500);
    let all =
        app.get(&format!("/api/v1/usage?planned_user_id={id}&include_superseded=true")).bearer(&finance).send().await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2, "{}", all.text);

    // The platform pushes usage; it may not overwrite what staff entered.
    let platform = app.token(&[Role::Platform]);
    let pushed = report(&app, &platform, id, &format!("{y}-04"), 101_000).await;
    assert_eq!(pushed.status, 201, "{}", pushed.text);
    assert_eq!(pushed.body["source"], "platform");
    report(&app, &platform, id, &format!("{y}-03"), 1).await.assert_problem(409, "staff_reading_protected");
    // A month in the future is refused.
    let next = today() + chrono::Months::new(1);
    let future = report(&app, &o.saving, id, &format!("{}-{:02}", next.year(), next.month()), 1).await;
    future.assert_problem(400, "validation_failed");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM planned_usage"), 3);

    // Lists filter; the water user cannot be removed while it is a planned user.
    let by_cat =
        app.get("/api/v1/planned-users?category=non_residential&include_total=true").bearer(&finance).send().await;
    assert_eq!(by_cat.body["total"], 1, "{}", by_cat.text);
    let other = app.get("/api/v1/planned-users?category=self_supplied").bearer(&finance).send().await;
    assert!(other.body["items"].as_array().unwrap().is_empty());
    let by_name = app.get(&format!("/api/v1/planned-users?q={}", enc("天岛湖"))).bearer(&finance).send().await;
    assert_eq!(by_name.body["items"][0]["id"], id);
    let with_plan = app.get(&format!("/api/v1/planned-users?year={y}&has_plan=true")).bearer(&finance).send().await;
    assert_eq!(with_plan.body["items"].as_array().unwrap().len(), 1);
    let without = app.get(&format!("/api/v1/planned-users?year={y}&has_plan=false")).bearer(&finance).send().await;
    assert!(without.body["items"].as_array().unwrap().is_empty());
    let plans = app.get(&format!("/api/v1/plans?year={y}")).bearer(&finance).send().await;
    assert_eq!(plans.body["items"][0]["annual_m3"], 1_200_011);
    let removed = app.delete(&format!("/api/v1/water-users/{wu}")).bearer(&o.saving).send().await;
    removed.assert_problem(409, "referenced");

    // Audited, and in the change feed under its own entity types, each change with the record as GET shows it.
    for action in ["planned_user_created", "plan_issued", "usage_recorded", "usage_superseded", "usage_corrected"] {
        assert!(
            app.count(&format!("SELECT COUNT(*) AS n FROM audit_events WHERE action = '{action}'")) >= 1,
            "{action}"
        );
    }
    let feed = whole_feed(&app, "planned_user,plan,usage").await;
    let count = |t: &str| feed.iter().filter(|i| i["entity_type"] == t).count();
    assert_eq!((count("planned_user"), count("plan"), count("usage")), (1, 1, 4));
    let last_usage = feed.iter().rev().find(|i| i["entity_type"] == "usage").unwrap();
    assert_eq!(last_usage["data"]["source"], "platform");
    assert_eq!(last_usage["entity_id"], pushed.body["id"]);
}

async fn plans_must_add_up_and_adjustments_keep_history(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let wu = water_user(&app, &o, "赤水市红岩纸业有限公司", 302).await;
    let pu = planned_user(&app, &o, &wu).await;
    let id = pu["id"].as_str().unwrap();

    let mut months = vec![10_000; 12];
    let short = issue(&app, &o, id, json!({"year": y, "annual_m3": 120_001, "monthly_m3": months})).await;
    short.assert_problem(400, "validation_failed");
    assert_eq!(short.body["errors"][0]["field"], "monthly_m3", "{}", short.text);
    let eleven = issue(&app, &o, id, json!({"year": y, "annual_m3": 110_000, "monthly_m3": vec![10_000; 11]})).await;
    eleven.assert_problem(400, "validation_failed");
    issue(&app, &o, id, json!({"year": 1999, "annual_m3": 0})).await.assert_problem(400, "validation_failed");
    issue(&app, &o, id, json!({"year": y, "annual_m3": -1})).await.assert_problem(400, "validation_failed");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM plans"), 0);

    months[6] = 20_000;
    let plan = issue(
        &app,
        &o,
        id,
        json!({"year": y, "annual_m3": 130_000, "monthly_m3": months, "effective_date": format!("{y}-01-05")}),
    )
    .await;
    assert_eq!(plan.status, 201, "{}", plan.text);
    assert_eq!(plan.body["issued_on"], format!("{y}-01-05"));
    issue(&app, &o, id, json!({"year": y, "annual_m3": 1})).await.assert_problem(409, "conflict");
    let plan_id = plan.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/plans/{plan_id}/adjust");

    // An adjustment needs If-Match and a reason.
    let body =
        json!({"annual_m3": 150_000, "reason": "新增生产线，经审核调增", "effective_date": format!("{y}-06-30")});
    app.post(&path).bearer(&o.saving).json(&body).send().await.assert_problem(428, "precondition_required");
    let no_reason = app
        .post(&path)
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&json!({"annual_m3": 1, "reason": " "}))
        .send()
        .await;
    no_reason.assert_problem(400, "validation_failed");
    let early = json!({"annual_m3": 150_000, "reason": "调增", "effective_date": format!("{y}-01-01")});
    app.post(&path)
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&early)
        .send()
        .await
        .assert_problem(409, "effective_date_out_of_order");
    // Below what the months passed already planned; a year that is over needs its months; nothing changed.
    let below = json!({"annual_m3": 10, "reason": "调减", "effective_date": format!("{y}-06-30")});
    let r = app.post(&path).bearer(&o.saving).header("if-match", "\"1\"").json(&below).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "annual_m3", "{}", r.text);
    let late = json!({"annual_m3": 140_000, "reason": "年终调整"});
    let r = app.post(&path).bearer(&o.saving).header("if-match", "\"1\"").json(&late).send().await;
    assert_eq!(r.body["errors"][0]["field"], "monthly_m3", "{}", r.text);
    let same = json!({"annual_m3": 130_000, "monthly_m3": months, "reason": "无变化"});
    app.post(&path)
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&same)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    let wrong = json!({"monthly_m3": vec![1; 12], "reason": "调减"});
    app.post(&path)
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&wrong)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    let adjusted = app.post(&path).bearer(&o.saving).header("if-match", "\"1\"").json(&body).send().await;
    assert_eq!(adjusted.status, 200, "{}", adjusted.text);
    assert_eq!(adjusted.body["status"], "adjusted");
    assert_eq!(adjusted.body["annual_m3"], 150_000);
    // January to May keep their 10 000 m³; 100 000 m³ spread over June to December, the remainder in December.
    assert_eq!(adjusted.body["monthly_m3"][4], 10_000);
    assert_eq!(adjusted.body["monthly_m3"][5], 14_285);
    assert_eq!(adjusted.body["monthly_m3"][11], 14_290);
    assert_eq!(adjusted.body["adjusted_on"], format!("{y}-06-30"));
    assert_eq!(adjusted.header("etag").unwrap(), "\"2\"");
    // The same ETag again is stale.
    app.post(&path)
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&body)
        .send()
        .await
        .assert_problem(412, "precondition_failed");

    // Changing only the months keeps the annual figure.
    let mut moved = vec![12_500; 12];
    moved[0] = 2_500;
    moved[11] = 22_500;
    let shifted = app
        .post(&path)
        .bearer(&o.saving)
        .header("if-match", "\"2\"")
        .json(&json!({"monthly_m3": moved, "reason": "季节性调整"}))
        .send()
        .await;
    assert_eq!(shifted.status, 200, "{}", shifted.text);
    assert_eq!(shifted.body["annual_m3"], 150_000);

    let history = app.get(&format!("/api/v1/plans/{plan_id}/history")).bearer(&o.saving).send().await;
    let items = history.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["issued", "adjusted", "adjusted"], "{}", history.text);
    assert_eq!(items[1]["reason"], "新增生产线，经审核调增");
    assert_eq!(items[1]["effective_date"], format!("{y}-06-30"));
    let changed: Vec<&str> =
        items[1]["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert!(changed.contains(&"annual_m3") && changed.contains(&"status"), "{changed:?}");
    assert_eq!(app.count(&format!("SELECT version AS n FROM plans WHERE id = '{plan_id}'")), 3);
}

async fn inactive_users_and_missing_plans_are_refused(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let wu = water_user(&app, &o, "赤水市长江建筑工程有限公司", 303).await;
    let pu = planned_user(&app, &o, &wu).await;
    let id = pu["id"].as_str().unwrap();

    // Usage in a year without a plan is refused.
    report(&app, &o.saving, id, &format!("{y}-05"), 10).await.assert_problem(409, "no_plan");
    assert_eq!(issue(&app, &o, id, json!({"year": y, "annual_m3": 1200})).await.status, 201);
    report(&app, &o.saving, id, &format!("{}-12", y - 1), 10).await.assert_problem(409, "no_plan");
    assert_eq!(report(&app, &o.saving, id, &format!("{y}-05"), 10).await.status, 201);

    // Deactivated: no new plans, usage or adjustments.
    let off = app
        .patch(&format!("/api/v1/planned-users/{id}"))
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&json!({"active": false, "note": "停工"}))
        .send()
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.body["active"], false);
    report(&app, &o.saving, id, &format!("{y}-06"), 10).await.assert_problem(409, "planned_user_inactive");
    issue(&app, &o, id, json!({"year": y + 1, "annual_m3": 1})).await.assert_problem(409, "planned_user_inactive");
    let plan_id = app.text(&format!("SELECT id AS t FROM plans WHERE planned_user_id = '{id}'")).unwrap();
    let adj = app
        .post(&format!("/api/v1/plans/{plan_id}/adjust"))
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&json!({"annual_m3": 1, "reason": "x"}))
        .send()
        .await;
    adj.assert_problem(409, "planned_user_inactive");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM planned_usage"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM plans"), 1);
    let listed = app.get("/api/v1/planned-users?active=false").bearer(&o.saving).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let history = app.get(&format!("/api/v1/planned-users/{id}/history")).bearer(&o.saving).send().await;
    assert_eq!(history.body["items"][1]["action"], "updated", "{}", history.text);
}

async fn coverage_counts_active_users_with_a_plan(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let reader = app.token(&[Role::Leader]);
    let empty = app.get(&format!("/api/v1/planned-use/coverage?year={y}")).bearer(&reader).send().await;
    assert_eq!(empty.body, json!({"year": y, "registered": 0, "with_plan": 0, "coverage_pct": "0.0"}));
    let mut ids = Vec::new();
    for n in 0..3 {
        let wu = water_user(&app, &o, &format!("赤水市用水单位{n}"), 310 + n).await;
        ids.push(planned_user(&app, &o, &wu).await["id"].as_str().unwrap().to_string());
    }
    assert_eq!(issue(&app, &o, &ids[0], json!({"year": y, "annual_m3": 1})).await.status, 201);
    assert_eq!(issue(&app, &o, &ids[1], json!({"year": y + 1, "annual_m3": 1})).await.status, 201);
    let c = app.get(&format!("/api/v1/planned-use/coverage?year={y}")).bearer(&reader).send().await;
    assert_eq!(c.body, json!({"year": y, "registered": 3, "with_plan": 1, "coverage_pct": "33.3"}));
    // An inactive user no longer counts.
    let off = app
        .patch(&format!("/api/v1/planned-users/{}", ids[2]))
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let c = app.get(&format!("/api/v1/planned-use/coverage?year={y}")).bearer(&reader).send().await;
    assert_eq!(c.body["coverage_pct"], "50.0");
    app.get("/api/v1/planned-use/coverage").bearer(&reader).send().await.assert_problem(400, "validation_failed");
    app.get("/api/v1/planned-use/coverage?year=1800")
        .bearer(&reader)
        .send()
        .await
        .assert_problem(400, "validation_failed");
}

async fn plans_and_reports_fired_together_land_once(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let wu = water_user(&app, &o, "赤水市竹业有限公司", 320).await;
    let pu = planned_user(&app, &o, &wu).await;
    let id = pu["id"].as_str().unwrap();

    // Eight clerks issue the same year's plan at once: one plan.
    let issued = join_all((0..8).map(|i| issue(&app, &o, id, json!({"year": y, "annual_m3": 1200 + i})))).await;
    let won: Vec<&Resp> = issued.iter().filter(|r| r.status == 201).collect();
    assert_eq!(won.len(), 1, "{:?}", issued.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(issued.iter().all(|r| r.status == 201 || r.status == 409));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM plans"), 1);
    let plan_id = won[0].body["id"].as_str().unwrap().to_string();

    // Eight adjustments with one ETag: one wins, the stored plan is the one answered.
    let adjusted = join_all((0..8).map(|i| {
        app.post(&format!("/api/v1/plans/{plan_id}/adjust"))
            .bearer(&o.saving)
            .header("if-match", "\"1\"")
            .json(&json!({"annual_m3": 2400 + i, "monthly_m3": [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200 + i],
                          "reason": format!("调整{i}")}))
            .send()
    }))
    .await;
    let ok: Vec<&Resp> = adjusted.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{:?}", adjusted.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(adjusted.iter().all(|r| r.status == 200 || r.status == 412));
    let stored = app.count(&format!("SELECT annual_m3 AS n FROM plans WHERE id = '{plan_id}'"));
    assert_eq!(ok[0].body["annual_m3"].as_i64(), Some(stored));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM audit_events WHERE entity_id = '{plan_id}' AND action = 'plan_adjusted'"
        )),
        1
    );

    // Eight first reports of one month at once: one current record, the rest are told to retry.
    let month = format!("{y}-02");
    let reports = join_all((0..8).map(|i| report(&app, &o.saving, id, &month, 100 + i))).await;
    assert!(
        reports.iter().all(|r| r.status == 201 || r.status == 409),
        "{:?}",
        reports.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM planned_usage WHERE superseded = false"), 1);
    let revisions = app.count("SELECT COUNT(*) AS n FROM planned_usage");
    let created = reports.iter().filter(|r| r.status == 201).count() as i64;
    assert_eq!(revisions, created, "every 201 is a stored revision, nothing else");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_events WHERE entity_type = 'usage'"),
        2 * created - 1,
        "one event for the first, two for each correction"
    );
}

async fn warnings_and_the_key_monitoring_list(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let reader = app.token(&[Role::Platform]);
    let mut ids = Vec::new();
    for n in 0..4 {
        let wu = water_user(&app, &o, &format!("赤水市重点用水单位{n}"), 330 + n).await;
        ids.push(planned_user(&app, &o, &wu).await["id"].as_str().unwrap().to_string());
    }
    // Quarter 1 plans 300 m³ for the first three; the fourth has a plan of nothing.
    for (i, id) in ids.iter().enumerate() {
        let annual = if i == 3 { 0 } else { 1200 };
        assert_eq!(issue(&app, &o, id, json!({"year": y, "annual_m3": annual})).await.status, 201);
    }
    // Exactly 10 % over is no warning; 331 m³ is; anything against a plan of nothing is.
    for (id, month, v) in [(0, 1, 110), (0, 2, 110), (0, 3, 110), (1, 1, 300), (1, 3, 31), (2, 2, 100), (3, 3, 5)] {
        assert_eq!(report(&app, &o.saving, &ids[id], &format!("{y}-{month:02}"), v).await.status, 201);
    }
    let w =
        app.get(&format!("/api/v1/planned-use/warnings?period={y}-Q1&include_total=true")).bearer(&reader).send().await;
    assert_eq!(w.status, 200, "{}", w.text);
    assert_eq!(w.body["total"], 2, "{}", w.text);
    let items = w.body["items"].as_array().unwrap();
    assert_eq!(items[0]["planned_user_id"], ids[1].as_str());
    assert_eq!((items[0]["planned_m3"].as_i64(), items[0]["used_m3"].as_i64()), (Some(300), Some(331)));
    assert_eq!((items[0]["over_m3"].as_i64(), items[0]["over_pct"].as_str()), (Some(31), Some("10.3")));
    assert_eq!(items[0]["water_user_name"], "赤水市重点用水单位1");
    assert_eq!(items[1]["planned_user_id"], ids[3].as_str());
    assert_eq!(items[1]["over_pct"], Value::Null);
    // Paged one at a time, the same two.
    let first = app.get(&format!("/api/v1/planned-use/warnings?period={y}-Q1&limit=1")).bearer(&reader).send().await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .get(&format!("/api/v1/planned-use/warnings?period={y}-Q1&limit=1&cursor={cursor}"))
        .bearer(&reader)
        .send()
        .await;
    assert_eq!(first.body["items"][0]["planned_user_id"], ids[1].as_str());
    assert_eq!(second.body["items"][0]["planned_user_id"], ids[3].as_str());
    assert_eq!(second.body["next_cursor"], Value::Null);
    // A correction counts, not the reading it replaced.
    assert_eq!(report(&app, &o.saving, &ids[1], &format!("{y}-03"), 30).await.status, 201);
    let w = app.get(&format!("/api/v1/planned-use/warnings?period={y}-Q1")).bearer(&reader).send().await;
    assert_eq!(w.body["items"].as_array().unwrap().len(), 1, "{}", w.text);
    // Another quarter has none; a bad period is refused.
    let q2 = app.get(&format!("/api/v1/planned-use/warnings?period={y}-Q2")).bearer(&reader).send().await;
    assert!(q2.body["items"].as_array().unwrap().is_empty());
    app.get("/api/v1/planned-use/warnings?period=2025-Q5")
        .bearer(&reader)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.get("/api/v1/planned-use/warnings").bearer(&reader).send().await.assert_problem(400, "validation_failed");

    // The key-monitoring list for y + 1 comes from the usage of y: 100 000 m³ or more.
    for (id, months) in [(0, [60_000, 40_000]), (1, [60_000, 39_000]), (2, [100_000, 1])] {
        for (m, v) in [5, 6].iter().zip(months) {
            assert_eq!(report(&app, &o.saving, &ids[id], &format!("{y}-{m:02}"), v).await.status, 201);
        }
    }
    let k = app
        .get(&format!("/api/v1/planned-use/key-monitoring?year={}&include_total=true", y + 1))
        .bearer(&reader)
        .send()
        .await;
    assert_eq!(k.status, 200, "{}", k.text);
    let listed: Vec<&str> =
        k.body["items"].as_array().unwrap().iter().map(|i| i["planned_user_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[0].as_str(), ids[2].as_str()], "{}", k.text);
    assert_eq!(k.body["total"], 2);
    assert_eq!(k.body["items"][0]["usage_m3"], 100_330);
    assert_eq!(
        (k.body["items"][0]["year"].as_i64(), k.body["items"][0]["basis_year"].as_i64()),
        (Some(i64::from(y + 1)), Some(i64::from(y)))
    );
    // An inactive user leaves the list.
    let off = app
        .patch(&format!("/api/v1/planned-users/{}", ids[2]))
        .bearer(&o.saving)
        .header("if-match", "\"1\"")
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let k = app.get(&format!("/api/v1/planned-use/key-monitoring?year={}", y + 1)).bearer(&reader).send().await;
    assert_eq!(k.body["items"].as_array().unwrap().len(), 1);
    let none = app.get(&format!("/api/v1/planned-use/key-monitoring?year={y}")).bearer(&reader).send().await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
    app.get("/api/v1/planned-use/key-monitoring").bearer(&reader).send().await.assert_problem(400, "validation_failed");
}

async fn admin_keeps_the_surcharge_tiers(app: TestApp) {
    let admin = app.token_for("admin", &[Role::Admin]);
    let reader = app.token(&[Role::Finance]);
    let start = app.get("/api/v1/surcharge-tiers").bearer(&reader).send().await;
    assert_eq!(start.status, 200, "{}", start.text);
    assert_eq!(
        start.body["tiers"],
        json!([{"over_pct_from": 0, "over_pct_to": 20, "multiplier": "1"},
               {"over_pct_from": 20, "over_pct_to": 40, "multiplier": "2"},
               {"over_pct_from": 40, "over_pct_to": null, "multiplier": "3"}])
    );
    assert_eq!(start.body["category_base_prices"], json!({}));
    assert_eq!(start.etag(), "\"1\"");

    // Weihai's tiers, and a base price for non-residential users.
    let weihai = json!({"tiers": [{"over_pct_from": 0, "over_pct_to": 10, "multiplier": "1"},
                                   {"over_pct_from": 10, "over_pct_to": 30, "multiplier": "2.0"},
                                   {"over_pct_from": 30, "over_pct_to": null, "multiplier": "3"}],
                        "category_base_prices": {"non_residential": "3.45"}});
    let put = |body: Value, etag: Option<&str>| {
        let mut r = app.request(awc::http::Method::PUT, "/api/v1/surcharge-tiers").bearer(&admin).json(&body);
        if let Some(e) = etag {
            r = r.header("if-match", e);
        }
        r.send()
    };
    put(weihai.clone(), None).await.assert_problem(428, "precondition_required");
    let saving = app.token(&[Role::WaterSaving]);
    let refused = app
        .request(awc::http::Method::PUT, "/api/v1/surcharge-tiers")
        .bearer(&saving)
        .header("if-match", "\"1\"")
        .json(&weihai)
        .send()
        .await;
    refused.assert_problem(403, "forbidden");
    // A gap, an open tier in the middle, a bad multiplier, a bad price: 400 naming the tier, nothing changed.
    let mut gap = weihai.clone();
    gap["tiers"][1]["over_pct_from"] = json!(15);
    let r = put(gap, Some("\"1\"")).await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "tiers[1]", "{}", r.text);
    let mut bad = weihai.clone();
    bad["tiers"][2]["multiplier"] = json!("0");
    let r = put(bad, Some("\"1\"")).await;
    assert_eq!(r.body["errors"][0]["field"], "tiers[2].multiplier", "{}", r.text);
    let mut closed = weihai.clone();
    closed["tiers"][2]["over_pct_to"] = json!(100);
    put(closed, Some("\"1\"")).await.assert_problem(400, "validation_failed");
    let mut price = weihai.clone();
    price["category_base_prices"]["non_residential"] = json!("3.45678");
    put(price, Some("\"1\"")).await.assert_problem(400, "validation_failed");
    put(json!({"tiers": [], "category_base_prices": {}}), Some("\"1\"")).await.assert_problem(400, "validation_failed");
    assert_eq!(app.count("SELECT version AS n FROM surcharge_tiers"), 1);

    let saved = put(weihai.clone(), Some("\"1\"")).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_eq!(saved.body["tiers"][1]["multiplier"], "2");
    assert_eq!(saved.body["category_base_prices"], json!({"non_residential": "3.4500"}));
    assert_eq!(saved.etag(), "\"2\"");
    put(weihai, Some("\"1\"")).await.assert_problem(412, "precondition_failed");
    let now = app.get("/api/v1/surcharge-tiers").bearer(&reader).send().await;
    assert_eq!(now.body["tiers"][0]["over_pct_to"], 10);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE entity_type = 'surcharge_tiers'"), 1);
    let feed = whole_feed(&app, "surcharge_tiers").await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["data"]["tiers"][2]["over_pct_from"], 30);
}

async fn plans_filter_by_category_and_over_plan(app: TestApp) {
    let o = office(&app);
    let y = last_year();
    let mut ids = Vec::new();
    for n in 0..3 {
        let wu = water_user(&app, &o, &format!("赤水市用水单位{n}"), 360 + n).await;
        let body = json!({"water_user_id": wu, "category": if n == 2 { "self_supplied" } else { "non_residential" },
                          "supply": "own_source", "base_price_yuan_per_m3": "2"});
        let r = app.post("/api/v1/planned-users").bearer(&o.saving).json(&body).send().await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_string();
        assert_eq!(issue(&app, &o, &id, json!({"year": y, "annual_m3": 1200})).await.status, 201);
        ids.push(id);
    }
    // 100 m³ a month planned. The first used 150 in January (over); the second 100 and 50 (150 against 200:
    // not over); the third reported nothing.
    for (i, month, v) in [(0, 1, 150), (1, 1, 100), (1, 2, 50)] {
        assert_eq!(report(&app, &o.saving, &ids[i], &format!("{y}-{month:02}"), v).await.status, 201);
    }
    let users_of = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"].as_array().unwrap().iter().map(|p| p["planned_user_id"].as_str().unwrap().to_string()).collect()
    };
    let reader = app.token(&[Role::Leader]);
    let over =
        app.get(&format!("/api/v1/plans?year={y}&over_plan=true&include_total=true")).bearer(&reader).send().await;
    assert_eq!(users_of(&over), [ids[0].clone()]);
    assert_eq!(over.body["total"], 1);
    let not = app.get(&format!("/api/v1/plans?year={y}&over_plan=false&limit=1")).bearer(&reader).send().await;
    let mut seen = users_of(&not);
    let cursor = not.body["next_cursor"].as_str().unwrap().to_string();
    let rest = app
        .get(&format!("/api/v1/plans?year={y}&over_plan=false&limit=1&cursor={cursor}"))
        .bearer(&reader)
        .send()
        .await;
    seen.extend(users_of(&rest));
    assert_eq!(rest.body["next_cursor"], Value::Null);
    seen.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(seen, expected);
    let self_supplied = app.get("/api/v1/plans?category=self_supplied").bearer(&reader).send().await;
    assert_eq!(users_of(&self_supplied), [ids[2].clone()]);
    // A correction that takes the second over plan moves it.
    assert_eq!(report(&app, &o.saving, &ids[1], &format!("{y}-02"), 101).await.status, 201);
    let over = app.get(&format!("/api/v1/plans?year={y}&over_plan=true")).bearer(&reader).send().await;
    assert_eq!(users_of(&over).len(), 2);
}
