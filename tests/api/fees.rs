//! Water-resource fees end to end: the rate table, the quarterly run, notices, payments and late fees, deferrals
//! and waivers, the tax cut-over, the printable notice, and payments or runs fired together.

use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;
use crate::permits::{act, create, permit_body, staff, Staff};

on_both_databases!(
    the_rate_table_refuses_overlaps,
    the_run_prices_months_once_and_never_duplicates,
    corrections_recalculate_until_served_then_show_as_differences,
    payments_settle_late_fees_first_and_never_overpay,
    deferrals_and_waivers_need_a_leader,
    the_tax_cut_over_splits_a_straddling_quarter,
    the_payment_notice_prints_in_chinese,
    racing_payments_never_overpay_and_retries_pay_once,
    runs_fired_together_assess_once,
    pending_requests_hold_payments_and_nobody_decides_their_own,
    rates_racing_for_one_key_never_overlap,
    a_run_of_many_batches_chains_every_event_once,
);

pub struct Fees {
    pub s: Staff,
    pub admin: String,
    pub finance: String,
}

pub async fn fees_staff(app: &TestApp) -> Fees {
    Fees {
        s: staff(app).await,
        admin: app.token_for("admin", &[Role::Admin]),
        finance: app.token_for("finance", &[Role::Finance]),
    }
}

pub async fn add_rate(app: &TestApp, f: &Fees, body: Value) -> Resp {
    app.post("/api/v1/fee-rates").bearer(&f.admin).json(&body).send().await
}

fn rate(source: &str, purpose: &str, class: Option<&str>, rate: &str, from: &str, to: Option<&str>) -> Value {
    json!({"source_type": source, "purpose": purpose, "zone_class": class, "rate_yuan_per_m3": rate,
        "effective_from": from, "effective_to": to})
}

/// A groundwater permit for industry, approved in January 2021 for ten years (a shorter term would end, and the
/// permit expire, while these tests still run), in zone `zone` if given.
pub async fn old_permit(app: &TestApp, f: &Fees, zone: Option<&str>, purpose: &str) -> String {
    let mut body = permit_body(&f.s.holder, zone, "groundwater_deep", 500_000);
    body["purpose"] = json!(purpose);
    let p = create(app, &f.s, &body).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(act(app, &f.s.clerk, &id, "submit", json!({"effective_date": "2021-01-05"})).await.status, 200);
    let approve = json!({"effective_date": "2021-01-10", "valid_from": "2021-01-01", "valid_to": "2030-12-31"});
    let r = act(app, &f.s.leader, &id, "approve", approve).await;
    assert_eq!(r.status, 200, "{}", r.text);
    id
}

pub async fn report(app: &TestApp, f: &Fees, permit: &str, period: &str, volume: i64) {
    let r = app
        .post(&format!("/api/v1/permits/{permit}/withdrawals"))
        .bearer(&f.s.clerk)
        .json(&json!({"period": period, "volume_m3": volume, "method": "manual_reading"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

pub async fn run(app: &TestApp, f: &Fees, period: &str) -> Value {
    let r = app.post("/api/v1/fee-assessments/run").bearer(&f.finance).json(&json!({"period": period})).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The assessments of a permit (all kinds), oldest first.
pub async fn assessments_of(app: &TestApp, f: &Fees, permit: &str, query: &str) -> Value {
    let r = app.get(&format!("/api/v1/fee-assessments?permit_id={permit}{query}")).bearer(&f.finance).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Runs an action with the assessment's current ETag.
pub async fn fee_act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Resp {
    let etag = app.get(&format!("/api/v1/fee-assessments/{id}")).bearer(token).send().await.etag();
    app.post(&format!("/api/v1/fee-assessments/{id}/{action}"))
        .bearer(token)
        .header("if-match", &etag)
        .json(&body)
        .send()
        .await
}

pub async fn pay(app: &TestApp, f: &Fees, id: &str, amount: i64, on: &str, receipt: &str) -> Resp {
    app.post(&format!("/api/v1/fee-assessments/{id}/payments"))
        .bearer(&f.finance)
        .json(&json!({"amount_fen": amount, "paid_on": on, "method": "bank_transfer", "receipt_no": receipt}))
        .send()
        .await
}

/// The worked example of docs/api.md: 24 000 m³ in 2022-Q1 at 1.5 yuan = 36 000 yuan, served 2022-04-06, due
/// 2022-04-13. Returns the fee assessment's id.
pub async fn served_36000(app: &TestApp, f: &Fees) -> (String, String) {
    let r = add_rate(app, f, rate("groundwater_deep", "industrial", None, "1.5", "2020-01-01", None)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let permit = old_permit(app, f, None, "industrial").await;
    for m in ["2022-01", "2022-02", "2022-03"] {
        report(app, f, &permit, m, 8000).await;
    }
    run(app, f, "2022-Q1").await;
    let list = assessments_of(app, f, &permit, "").await;
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    let served = fee_act(app, &f.finance, &id, "notify", json!({"effective_date": "2022-04-06"})).await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(served.body["due_date"], "2022-04-13");
    (id, permit)
}

fn version_of(app: &TestApp, table: &str, id: &str) -> i64 {
    app.count(&format!("SELECT version AS n FROM {table} WHERE id = '{id}'"))
}

async fn the_rate_table_refuses_overlaps(app: TestApp) {
    let f = fees_staff(&app).await;
    let first =
        add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.2", "2020-01-01", Some("2022-12-31"))).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["rate_yuan_per_m3"], "1.2000");
    // Overlapping the same key: refused, nothing stored.
    add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.5", "2022-12-01", None))
        .await
        .assert_problem(409, "rate_overlap");
    // Rates price whole months: a first day to a last day.
    for (from, to, field) in
        [("2023-01-15", None, "effective_from"), ("2023-01-01", Some("2023-06-15"), "effective_to")]
    {
        let r = add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.5", from, to)).await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
    }
    // The next day, another class, another purpose: fine.
    for body in [
        rate("groundwater_deep", "industrial", None, "1.5", "2023-01-01", None),
        rate("groundwater_deep", "industrial", Some("restricted"), "2.4", "2020-01-01", None),
        rate("surface", "industrial", None, "0.3333", "2020-01-01", None),
    ] {
        assert_eq!(add_rate(&app, &f, body).await.status, 201);
    }
    // An open-ended row overlaps everything after it.
    add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.8", "2030-01-01", Some("2030-12-31")))
        .await
        .assert_problem(409, "rate_overlap");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_rates"), 4);
    // Exact decimals only, at most four places; never a JSON number.
    for bad in [json!("0.33333"), json!("-1"), json!(0.3), json!("1e2"), json!("1001")] {
        let mut body = rate("karst", "industrial", None, "1", "2020-01-01", None);
        body["rate_yuan_per_m3"] = bad.clone();
        let r = add_rate(&app, &f, body).await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "rate_yuan_per_m3", "{bad}: {}", r.text);
    }
    add_rate(&app, &f, rate("karst", "industrial", None, "1", "2022-01-01", Some("2021-12-31")))
        .await
        .assert_problem(400, "validation_failed");
    // Finance reads but may not write.
    app.post("/api/v1/fee-rates")
        .bearer(&f.finance)
        .json(&rate("karst", "industrial", None, "1", "2020-01-01", None))
        .send()
        .await
        .assert_problem(403, "forbidden");
    let in_force = app
        .get("/api/v1/fee-rates?in_force_on=2024-06-01&source_type=groundwater_deep&include_total=true")
        .bearer(&f.finance)
        .send()
        .await;
    assert_eq!(in_force.status, 200, "{}", in_force.text);
    assert_eq!(in_force.body["total"], 2, "{}", in_force.text);

    // Closing a row and extending another into its days: the overlap check holds for changes too.
    let id = first.body["id"].as_str().unwrap();
    let path = format!("/api/v1/fee-rates/{id}");
    app.patch(&path)
        .bearer(&f.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"effective_to": null}))
        .send()
        .await
        .assert_problem(409, "rate_overlap");
    let closed = app
        .patch(&path)
        .bearer(&f.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"effective_to": "2021-12-31", "note": "调整"}))
        .send()
        .await;
    assert_eq!(closed.status, 200, "{}", closed.text);
    assert_eq!((closed.body["effective_to"].as_str(), closed.body["version"].as_i64()), (Some("2021-12-31"), Some(2)));
    assert_eq!(version_of(&app, "fee_rates", id), 2);
}

async fn the_run_prices_months_once_and_never_duplicates(app: TestApp) {
    let f = fees_staff(&app).await;
    let zone = app
        .post("/api/v1/water-zones")
        .bearer(&f.admin)
        .json(&json!({"name": "超采区", "source_type": "groundwater_deep", "zone_class": "restricted", "allowable_m3_per_year": 10_000_000}))
        .send()
        .await;
    let zone = zone.body["id"].as_str().unwrap().to_string();
    // A general rate, and a higher one for restricted zones from March on.
    for body in [
        rate("groundwater_deep", "industrial", None, "1.5", "2020-01-01", None),
        rate("groundwater_deep", "industrial", Some("restricted"), "2.0", "2022-03-01", None),
        rate("groundwater_deep", "agricultural", None, "0.3333", "2020-01-01", None),
    ] {
        assert_eq!(add_rate(&app, &f, body).await.status, 201);
    }
    let plain = old_permit(&app, &f, None, "industrial").await;
    // The zone became restricted after the permit: approve it while normal, then reclassify.
    let zoned = {
        let z = app.get(&format!("/api/v1/water-zones/{zone}")).bearer(&f.admin).send().await;
        app.patch(&format!("/api/v1/water-zones/{zone}"))
            .bearer(&f.admin)
            .header("if-match", &z.etag())
            .json(&json!({"zone_class": "normal"}))
            .send()
            .await;
        let id = old_permit(&app, &f, Some(&zone), "industrial").await;
        let z = app.get(&format!("/api/v1/water-zones/{zone}")).bearer(&f.admin).send().await;
        app.patch(&format!("/api/v1/water-zones/{zone}"))
            .bearer(&f.admin)
            .header("if-match", &z.etag())
            .json(&json!({"zone_class": "restricted"}))
            .send()
            .await;
        id
    };
    let farm = old_permit(&app, &f, None, "agricultural").await;
    let unpriced = old_permit(&app, &f, None, "service").await;
    let silent = old_permit(&app, &f, None, "industrial").await; // no withdrawals in the quarter
    for (permit, volumes) in
        [(&plain, [8000, 8000, 8000]), (&zoned, [1000, 1000, 1000]), (&farm, [1, 1, 1]), (&unpriced, [5, 5, 5])]
    {
        for (m, v) in ["2022-01", "2022-02", "2022-03"].iter().zip(volumes) {
            report(&app, &f, permit, m, v).await;
        }
    }
    report(&app, &f, &silent, "2022-04", 100).await;

    let summary = run(&app, &f, "2022-Q1").await;
    assert_eq!(summary["period"], "2022-Q1");
    assert_eq!(summary["permits"], 4, "{summary}");
    assert_eq!(summary["fee_assessments_created"], 3, "{summary}");
    assert_eq!(summary["unpriced_count"], 1);
    assert_eq!(summary["unpriced"][0]["permit_id"], unpriced.as_str());
    assert_eq!(summary["unpriced"][0]["month"], "2022-01");

    let a = &assessments_of(&app, &f, &plain, "").await["items"][0];
    assert_eq!((a["kind"].as_str(), a["status"].as_str()), (Some("water_resource_fee"), Some("assessed")));
    assert_eq!((a["volume_m3"].as_i64(), a["amount_fen"].as_i64()), (Some(24_000), Some(3_600_000)));
    assert_eq!(a["months"], json!(["2022-01", "2022-02", "2022-03"]));
    assert_eq!(a["payer_name"], "赤水市化工有限公司");
    assert!(a["permit_no"].as_str().unwrap().starts_with('D'));
    assert_eq!(a["lines"].as_array().unwrap().len(), 3);
    assert_eq!(
        (a["lines"][0]["rate_yuan_per_m3"].as_str(), a["lines"][0]["amount_yuan"].as_str()),
        (Some("1.5000"), Some("12000.0000"))
    );
    // The zone's class decides from March: 1000 × 1.5 × 2 + 1000 × 2.0 = 5 000 yuan.
    let z = &assessments_of(&app, &f, &zoned, "").await["items"][0];
    assert_eq!(z["amount_fen"], 500_000, "{z}");
    assert_eq!(z["lines"][2]["rate_yuan_per_m3"], "2.0000");
    // Rounded once: 3 × 0.3333 yuan = 0.9999 yuan → 100 fen (line by line it would be 99).
    assert_eq!(assessments_of(&app, &f, &farm, "").await["items"][0]["amount_fen"], 100);

    // Running again creates nothing and changes nothing.
    let again = run(&app, &f, "2022-Q1").await;
    assert_eq!(
        (again["fee_assessments_created"].as_i64(), again["unchanged"].as_i64(), again["recalculated"].as_i64()),
        (Some(0), Some(3), Some(0))
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments"), 3);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'fee_assessment_created'"), 3);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'fee_assessment_run'"), 2);

    // Once a rate exists for the service permit, the next run prices it.
    assert_eq!(
        add_rate(&app, &f, rate("groundwater_deep", "service", None, "4", "2020-01-01", None)).await.status,
        201
    );
    let third = run(&app, &f, "2022-Q1").await;
    assert_eq!((third["fee_assessments_created"].as_i64(), third["unpriced_count"].as_i64()), (Some(1), Some(0)));
    // The zone reclassified later does not reprice the quarter: the class it was assessed at is kept.
    let z = app.get(&format!("/api/v1/water-zones/{zone}")).bearer(&f.admin).send().await;
    let reclassified = app
        .patch(&format!("/api/v1/water-zones/{zone}"))
        .bearer(&f.admin)
        .header("if-match", &z.etag())
        .json(&json!({"zone_class": "normal"}))
        .send()
        .await;
    assert_eq!(reclassified.status, 200, "{}", reclassified.text);
    let kept = &assessments_of(&app, &f, &zoned, "").await["items"][0];
    assert_eq!((kept["amount_fen"].as_i64(), &kept["reassessment"]), (Some(500_000), &Value::Null), "{kept}");
    let fourth = run(&app, &f, "2022-Q1").await;
    assert_eq!((fourth["unchanged"].as_i64(), fourth["recalculated"].as_i64()), (Some(4), Some(0)), "{fourth}");

    // Filters and totals: the quarter's assessed total in one request.
    let q1 =
        app.get("/api/v1/fee-assessments?period=2022-Q1&include_total=true&limit=2").bearer(&f.finance).send().await;
    assert_eq!(q1.status, 200, "{}", q1.text);
    assert_eq!(q1.body["total"], 4);
    assert_eq!(q1.body["totals"]["assessed_fen"], 3_600_000 + 500_000 + 100 + 6_000);
    assert_eq!(q1.body["totals"]["outstanding_fen"], 3_600_000 + 500_000 + 100 + 6_000);
    assert_eq!(q1.body["items"].as_array().unwrap().len(), 2);
    let next = q1.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/api/v1/fee-assessments?period=2022-Q1&limit=2&cursor={next}"))
        .bearer(&f.finance)
        .send()
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    let found = app.get(&format!("/api/v1/fee-assessments?q={}", enc("化工"))).bearer(&f.finance).send().await;
    assert_eq!(found.body["totals"]["count"], 4);
    for bad in ["period=2022-1", "period=Q1", "kind=fee", "as_of=2022-02-30", "overdue=maybe"] {
        app.get(&format!("/api/v1/fee-assessments?{bad}"))
            .bearer(&f.finance)
            .send()
            .await
            .assert_problem(400, "validation_failed");
    }
    // The quarter must have ended; roles.
    let this_quarter =
        format!("{}-Q{}", today().format("%Y"), (today().format("%m").to_string().parse::<u32>().unwrap() - 1) / 3 + 1);
    app.post("/api/v1/fee-assessments/run")
        .bearer(&f.finance)
        .json(&json!({"period": this_quarter}))
        .send()
        .await
        .assert_problem(409, "period_not_ended");
    app.post("/api/v1/fee-assessments/run")
        .bearer(&f.finance)
        .json(&json!({"period": "2022-Q5"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.post("/api/v1/fee-assessments/run")
        .bearer(&f.s.clerk)
        .json(&json!({"period": "2022-Q1"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    let auditor = app.token(&[Role::Auditor]);
    assert_eq!(app.get("/api/v1/fee-assessments").bearer(&auditor).send().await.status, 200);
    app.get("/api/v1/fee-assessments").bearer(&f.s.clerk).send().await.assert_problem(403, "forbidden");

    // Every record is in the change feed.
    let feed = whole_feed(&app, "fee_rate,fee_assessment").await;
    assert_eq!(feed.iter().filter(|e| e["entity_type"] == "fee_assessment").count(), 4);
    assert_eq!(feed.iter().filter(|e| e["entity_type"] == "fee_rate").count(), 4);
}

async fn corrections_recalculate_until_served_then_show_as_differences(app: TestApp) {
    let f = fees_staff(&app).await;
    assert_eq!(
        add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.5", "2020-01-01", None)).await.status,
        201
    );
    let permit = old_permit(&app, &f, None, "industrial").await;
    for m in ["2022-01", "2022-02", "2022-03"] {
        report(&app, &f, &permit, m, 8000).await;
    }
    run(&app, &f, "2022-Q1").await;
    let id = assessments_of(&app, &f, &permit, "").await["items"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/fee-assessments/{id}");

    // A correction before service: the record shows it, the next run recalculates it (audited).
    report(&app, &f, &permit, "2022-02", 9000).await;
    let shown = app.get(&path).bearer(&f.finance).send().await;
    assert_eq!(shown.body["amount_fen"], 3_600_000);
    assert_eq!(shown.body["reassessment"]["amount_fen"], 3_750_000, "{}", shown.text);
    assert_eq!(shown.body["reassessment"]["difference_fen"], 150_000);
    // Not served with figures the withdrawals no longer support: run the quarter again first.
    let stale = fee_act(&app, &f.finance, &id, "notify", json!({"effective_date": "2022-04-06"})).await;
    stale.assert_problem(409, "reassessment_due");
    assert!(stale.body["detail"].as_str().unwrap().contains("1,500.00"), "{}", stale.text);
    assert_eq!(version_of(&app, "fee_assessments", &id), 1);
    let again = run(&app, &f, "2022-Q1").await;
    assert_eq!(again["recalculated"], 1, "{again}");
    let recalculated = app.get(&path).bearer(&f.finance).send().await;
    assert_eq!(
        (recalculated.body["amount_fen"].as_i64(), recalculated.body["volume_m3"].as_i64()),
        (Some(3_750_000), Some(25_000))
    );
    assert_eq!(recalculated.body["reassessment"], Value::Null);
    assert_eq!(recalculated.etag(), "\"2\"");
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'fee_assessment_recalculated' AND entity_id = '{id}'")), 1);

    // Not served before the quarter is over.
    fee_act(&app, &f.finance, &id, "notify", json!({"effective_date": "2022-03-31"}))
        .await
        .assert_problem(409, "effective_date_out_of_order");
    // Served: a later correction never changes the notice; it shows as a difference, and runs count it.
    let served = fee_act(&app, &f.finance, &id, "notify", json!({"effective_date": "2022-04-06"})).await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(
        (served.body["notice_no"].as_str(), served.body["status"].as_str()),
        (Some("2022-00001"), Some("notified"))
    );
    // The notice fixes the late-fee rate it states.
    assert_eq!(
        app.text(&format!("SELECT late_fee_rate AS t FROM fee_assessments WHERE id = '{id}'")),
        Some("0.002".into())
    );
    report(&app, &f, &permit, "2022-03", 10_000).await;
    let after = run(&app, &f, "2022-Q1").await;
    assert_eq!((after["recalculated"].as_i64(), after["with_difference"].as_i64()), (Some(0), Some(1)), "{after}");
    let shown = app.get(&path).bearer(&f.finance).send().await;
    assert_eq!(shown.body["amount_fen"], 3_750_000);
    assert_eq!(shown.body["version"], 3);
    assert_eq!(shown.body["reassessment"]["difference_fen"], 300_000);
    assert_eq!(shown.body["reassessment"]["lines"][2]["volume_m3"], 10_000);
    // Serving before the quarter ended is refused; serving twice is out of order.
    fee_act(&app, &f.finance, &id, "notify", json!({})).await.assert_problem(409, "invalid_transition");
    let history = app.get(&format!("{path}/history")).bearer(&f.finance).send().await;
    let actions: Vec<&str> =
        history.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "recalculated", "notify"]);
}

async fn payments_settle_late_fees_first_and_never_overpay(app: TestApp) {
    let f = fees_staff(&app).await;
    let (id, _) = served_36000(&app, &f).await;
    let path = format!("/api/v1/fee-assessments/{id}");
    // As of 04-23: 10 days late at 2‰ of 36 000 yuan = 720 yuan.
    let late = app.get(&format!("{path}?as_of=2022-04-23")).bearer(&f.finance).send().await;
    assert_eq!(late.status, 200, "{}", late.text);
    let figures = |v: &Value| {
        ["outstanding_fen", "late_fee_fen", "late_fee_outstanding_fen", "paid_fen"].map(|k| v[k].as_i64().unwrap())
    };
    assert_eq!(figures(&late.body), [3_600_000, 72_000, 72_000, 0]);
    assert_eq!((late.body["overdue"].as_bool(), late.body["as_of"].as_str()), (Some(true), Some("2022-04-23")));
    let on_time = app.get(&format!("{path}?as_of=2022-04-13")).bearer(&f.finance).send().await;
    assert_eq!((on_time.body["late_fee_fen"].as_i64(), on_time.body["overdue"].as_bool()), (Some(0), Some(false)));

    // Refusals change nothing.
    pay(&app, &f, &id, 3_672_001, "2022-04-23", "R-1").await.assert_problem(409, "overpayment");
    pay(&app, &f, &id, 100, "2022-04-05", "R-1").await.assert_problem(409, "effective_date_out_of_order");
    pay(&app, &f, &id, 100, &(today() + chrono::TimeDelta::days(1)).to_string(), "R-1")
        .await
        .assert_problem(400, "validation_failed");
    pay(&app, &f, &id, 0, "2022-04-23", "R-1").await.assert_problem(400, "validation_failed");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM payments"), 0);
    assert_eq!(version_of(&app, "fee_assessments", &id), 2);

    // A partial payment on 04-18: 5 days × 72 yuan = 360 yuan late fee first, the rest principal.
    let first = pay(&app, &f, &id, 1_036_000, "2022-04-18", "R-1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(
        (first.body["late_fee_fen"].as_i64(), first.body["principal_fen"].as_i64()),
        (Some(36_000), Some(1_000_000))
    );
    assert_eq!(first.body["outstanding_after_fen"], 2_600_000);
    assert_eq!(first.body["payer_name"], "赤水市化工有限公司");
    assert!(first.body["permit_no"].as_str().unwrap().starts_with('D'), "{}", first.text);
    let location = first.header("location").unwrap();
    let stored = app.get(&location).bearer(&f.finance).send().await;
    assert_eq!(stored.body["receipt_no"], "R-1");
    // The audit trail keeps the payment as GET shows it, and the assessment after it with the payment counted.
    let after: Value = serde_json::from_str(
        &app.text(&format!(
            "SELECT after_data AS t FROM audit_events WHERE action = 'fee_assessment_paid' AND entity_id = '{id}'"
        ))
        .unwrap(),
    )
    .unwrap();
    let now = app.get(&path).bearer(&f.finance).send().await;
    assert_eq!(after["paid_fen"], now.body["paid_fen"], "{after}");
    assert_eq!((after["paid_fen"].as_i64(), after["status"].as_str()), (Some(1_000_000), Some("partially_paid")));
    assert_eq!(after["version"], now.body["version"]);
    let recorded: Value = serde_json::from_str(
        &app.text("SELECT after_data AS t FROM audit_events WHERE action = 'payment_recorded'").unwrap(),
    )
    .unwrap();
    assert_eq!(recorded, stored.body);
    let part = app.get(&format!("{path}?as_of=2022-04-23")).bearer(&f.finance).send().await;
    assert_eq!(part.body["status"], "partially_paid");
    // 04-19..04-23 at 2‰ of 26 000 yuan = 5 × 52 = 260 yuan more: 620 in all, 360 paid.
    assert_eq!(figures(&part.body), [2_600_000, 62_000, 26_000, 1_000_000]);
    // As of the day before the payment, it had not been made.
    let before = app.get(&format!("{path}?as_of=2022-04-17")).bearer(&f.finance).send().await;
    assert_eq!(figures(&before.body), [3_600_000, 28_800, 28_800, 0]);

    // A receipt number once; not before the last payment.
    pay(&app, &f, &id, 100, "2022-04-23", "R-1").await.assert_problem(409, "receipt_no_taken");
    pay(&app, &f, &id, 100, "2022-04-17", "R-2").await.assert_problem(409, "effective_date_out_of_order");
    // Paying off on 04-23: 260 yuan late fee + 26 000 principal; then nothing more is taken.
    pay(&app, &f, &id, 2_626_001, "2022-04-23", "R-2").await.assert_problem(409, "overpayment");
    let last = pay(&app, &f, &id, 2_626_000, "2022-04-23", "R-2").await;
    assert_eq!(last.status, 201, "{}", last.text);
    let paid = app.get(&format!("{path}?as_of=2023-01-01")).bearer(&f.finance).send().await;
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(figures(&paid.body), [0, 62_000, 0, 3_600_000]);
    assert_eq!(paid.body["overdue"], false);
    pay(&app, &f, &id, 1, "2022-04-24", "R-3").await.assert_problem(409, "invalid_transition");
    assert_eq!(app.count(&format!("SELECT paid_fen AS n FROM fee_assessments WHERE id = '{id}'")), 3_600_000);
    assert_eq!(app.count(&format!("SELECT late_fee_paid_fen AS n FROM fee_assessments WHERE id = '{id}'")), 62_000);

    // Lists: payments by day, totals as of a day.
    let payments = app.get("/api/v1/payments?paid_from=2022-04-20&include_total=true").bearer(&f.finance).send().await;
    assert_eq!(payments.body["total"], 1, "{}", payments.text);
    let of = app.get(&format!("{path}/payments")).bearer(&f.finance).send().await;
    assert_eq!(of.body["items"].as_array().unwrap().len(), 2);
    let totals = app.get("/api/v1/fee-assessments?period=2022-Q1&as_of=2022-04-20").bearer(&f.finance).send().await;
    assert_eq!(totals.body["totals"]["paid_fen"], 1_000_000, "{}", totals.text);
    assert_eq!(totals.body["totals"]["late_fee_fen"], 36_000 + 2 * 52_00);
    let overdue = app.get("/api/v1/fee-assessments?overdue=true&as_of=2022-04-20").bearer(&f.finance).send().await;
    assert_eq!(overdue.body["items"].as_array().unwrap().len(), 1);
    let overdue_now = app.get("/api/v1/fee-assessments?overdue=true").bearer(&f.finance).send().await;
    assert_eq!(overdue_now.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(overdue_now.body["totals"]["count"], 0);
    let feed = whole_feed(&app, "payment").await;
    assert_eq!(feed.len(), 2);
}

async fn deferrals_and_waivers_need_a_leader(app: TestApp) {
    let f = fees_staff(&app).await;
    let (id, _) = served_36000(&app, &f).await;
    let path = format!("/api/v1/fee-assessments/{id}");
    let leader = &f.s.leader;
    let version = || version_of(&app, "fee_assessments", &id);

    // Requested by finance, by the due date, for at most 90 days, with a reason.
    fee_act(
        &app,
        &f.finance,
        &id,
        "defer",
        json!({"until": "2022-06-30", "reason": "困难", "effective_date": "2022-04-14"}),
    )
    .await
    .assert_problem(409, "deferral_too_late");
    fee_act(
        &app,
        &f.finance,
        &id,
        "defer",
        json!({"until": "2022-07-10", "reason": "困难", "effective_date": "2022-04-10"}),
    )
    .await
    .assert_problem(409, "deferral_too_long");
    fee_act(
        &app,
        &f.finance,
        &id,
        "defer",
        json!({"until": "2022-04-12", "reason": "困难", "effective_date": "2022-04-10"}),
    )
    .await
    .assert_problem(400, "validation_failed");
    fee_act(
        &app,
        &f.finance,
        &id,
        "defer",
        json!({"until": "2022-06-30", "reason": " ", "effective_date": "2022-04-10"}),
    )
    .await
    .assert_problem(400, "validation_failed");
    fee_act(&app, leader, &id, "approve-deferral", json!({})).await.assert_problem(409, "invalid_transition");
    assert_eq!(version(), 2);
    let asked = fee_act(
        &app,
        &f.finance,
        &id,
        "defer",
        json!({"until": "2022-07-09", "reason": "资金周转困难", "effective_date": "2022-04-10"}),
    )
    .await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert_eq!(asked.body["pending_request"]["kind"], "deferral");
    assert_eq!(asked.body["status"], "notified");
    // While it is pending: no payment, no second request; only a leader decides.
    pay(&app, &f, &id, 100, "2022-04-12", "D-1").await.assert_problem(409, "invalid_transition");
    fee_act(&app, &f.finance, &id, "waive", json!({"reason": "x"})).await.assert_problem(409, "invalid_transition");
    fee_act(&app, &f.finance, &id, "approve-deferral", json!({})).await.assert_problem(403, "forbidden");
    let approved = fee_act(&app, leader, &id, "approve-deferral", json!({"effective_date": "2022-04-20"})).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(
        (approved.body["status"].as_str(), approved.body["deferred_until"].as_str()),
        (Some("deferred"), Some("2022-07-09"))
    );
    assert_eq!(approved.body["pending_request"], Value::Null);
    // No late fee while deferred; from the day after, 2‰ a day.
    let during = app.get(&format!("{path}?as_of=2022-07-09")).bearer(&f.finance).send().await;
    assert_eq!((during.body["late_fee_fen"].as_i64(), during.body["overdue"].as_bool()), (Some(0), Some(false)));
    let after = app.get(&format!("{path}?as_of=2022-07-11")).bearer(&f.finance).send().await;
    assert_eq!((after.body["late_fee_fen"].as_i64(), after.body["overdue"].as_bool()), (Some(14_400), Some(true)));
    fee_act(
        &app,
        &f.finance,
        &id,
        "defer",
        json!({"until": "2022-07-30", "reason": "再次", "effective_date": "2022-04-21"}),
    )
    .await
    .assert_problem(409, "invalid_transition");

    // A waiver: requested, rejected (reason required), requested again, approved.
    let v = version();
    fee_act(&app, leader, &id, "reject-waiver", json!({"reason": "无"}))
        .await
        .assert_problem(409, "invalid_transition");
    assert_eq!(
        fee_act(&app, &f.finance, &id, "waive", json!({"reason": "企业受灾停产", "effective_date": "2022-05-01"}))
            .await
            .status,
        200
    );
    fee_act(&app, leader, &id, "reject-waiver", json!({})).await.assert_problem(400, "validation_failed");
    let rejected = fee_act(
        &app,
        leader,
        &id,
        "reject-waiver",
        json!({"reason": "不符合减免条件", "effective_date": "2022-05-02"}),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(rejected.body["pending_request"], Value::Null);
    assert_eq!(version(), v + 2);
    let paid = pay(&app, &f, &id, 600_000, "2022-05-03", "D-2").await;
    assert_eq!((paid.status, paid.body["late_fee_fen"].as_i64()), (201, Some(0)));
    assert_eq!(
        fee_act(&app, &f.finance, &id, "waive", json!({"reason": "企业受灾停产", "effective_date": "2022-05-04"}))
            .await
            .status,
        200
    );
    let waived = fee_act(&app, leader, &id, "approve-waiver", json!({"effective_date": "2022-05-05"})).await;
    assert_eq!(waived.status, 200, "{}", waived.text);
    assert_eq!(waived.body["status"], "waived");
    let later = app.get(&format!("{path}?as_of=2023-01-01")).bearer(&f.finance).send().await;
    assert_eq!(
        (
            later.body["outstanding_fen"].as_i64(),
            later.body["waived_fen"].as_i64(),
            later.body["late_fee_fen"].as_i64()
        ),
        (Some(0), Some(3_000_000), Some(0))
    );
    // Settled: nothing more happens to it.
    pay(&app, &f, &id, 100, "2022-05-06", "D-3").await.assert_problem(409, "invalid_transition");
    fee_act(&app, &f.finance, &id, "waive", json!({"reason": "x"})).await.assert_problem(409, "invalid_transition");
    app.get(&format!("{path}/notice")).bearer(&f.finance).send().await.assert_problem(409, "notice_unavailable");
    // The history keeps every step with its reason.
    let history = app.get(&format!("{path}/history")).bearer(&f.finance).send().await;
    let steps: Vec<&str> =
        history.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        ["created", "notify", "defer", "approve_deferral", "waive", "reject_waiver", "paid", "waive", "approve_waiver"]
    );
}

async fn the_tax_cut_over_splits_a_straddling_quarter(app: TestApp) {
    let f = fees_staff(&app).await;
    assert_eq!(
        add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.5", "2020-01-01", None)).await.status,
        201
    );
    let permit = old_permit(&app, &f, None, "industrial").await;
    for (m, v) in [("2024-10", 100), ("2024-11", 200), ("2024-12", 300), ("2025-01", 400)] {
        report(&app, &f, &permit, m, v).await;
    }
    // A permit without a rate: its bill waits for one, its December goes to the tax office all the same.
    let unpriced = old_permit(&app, &f, None, "service").await;
    for m in ["2024-11", "2024-12"] {
        report(&app, &f, &unpriced, m, 50).await;
    }
    let summary = run(&app, &f, "2024-Q4").await;
    assert_eq!(
        (
            summary["fee_assessments_created"].as_i64(),
            summary["tax_referrals_created"].as_i64(),
            summary["unpriced_count"].as_i64()
        ),
        (Some(1), Some(2), Some(1)),
        "{summary}"
    );
    let waiting = assessments_of(&app, &f, &unpriced, "").await;
    assert_eq!(waiting["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (waiting["items"][0]["kind"].as_str(), waiting["items"][0]["volume_m3"].as_i64()),
        (Some("tax_referral"), Some(50))
    );
    let items = assessments_of(&app, &f, &permit, "&period=2024-Q4").await["items"].as_array().unwrap().clone();
    let fee = items.iter().find(|a| a["kind"] == "water_resource_fee").unwrap();
    let referral = items.iter().find(|a| a["kind"] == "tax_referral").unwrap();
    assert_eq!(
        (fee["months"].clone(), fee["volume_m3"].as_i64(), fee["amount_fen"].as_i64()),
        (json!(["2024-10", "2024-11"]), Some(300), Some(45_000))
    );
    assert_eq!(
        (referral["months"].clone(), referral["volume_m3"].as_i64(), referral["amount_fen"].as_i64()),
        (json!(["2024-12"]), Some(300), Some(0))
    );
    assert_eq!((referral["status"].as_str(), referral["period"].as_str()), (Some("referred"), Some("2024-Q4")));
    assert_eq!(referral["lines"][0]["rate_yuan_per_m3"], Value::Null);
    // A referral is not a bill: no notice, no payment, no action.
    let rid = referral["id"].as_str().unwrap();
    fee_act(&app, &f.finance, rid, "notify", json!({})).await.assert_problem(409, "invalid_transition");
    pay(&app, &f, rid, 1, "2025-01-10", "T-1").await.assert_problem(409, "invalid_transition");
    app.get(&format!("/api/v1/fee-assessments/{rid}/notice"))
        .bearer(&f.finance)
        .send()
        .await
        .assert_problem(409, "notice_unavailable");
    // After the cut-over, only referrals.
    let q1 = run(&app, &f, "2025-Q1").await;
    assert_eq!((q1["fee_assessments_created"].as_i64(), q1["tax_referrals_created"].as_i64()), (Some(0), Some(1)));
    let referred =
        app.get("/api/v1/fee-assessments?kind=tax_referral&include_total=true").bearer(&f.finance).send().await;
    assert_eq!(referred.body["total"], 3);
    assert_eq!(referred.body["totals"]["assessed_fen"], 0);
}

async fn the_payment_notice_prints_in_chinese(app: TestApp) {
    let f = fees_staff(&app).await;
    let (id, _) = served_36000(&app, &f).await;
    let r = app.get(&format!("/api/v1/fee-assessments/{id}/notice")).bearer(&f.finance).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    // `SHUIWU_TEST_DOCUMENTS=DIR` keeps the page, to look at it in a browser (docs/img/ has its screenshot).
    if let Some(dir) = std::env::var_os("SHUIWU_TEST_DOCUMENTS") {
        std::fs::write(std::path::Path::new(&dir).join(format!("notice-{:?}.html", app.backend)), &r.text).unwrap();
    }
    for text in [
        "水资源费缴款通知书",
        "编号：2022-00001",
        "赤水市化工有限公司",
        "91350100M000100Y43",
        "2022年第一季度",
        "2022年1月",
        "12,000.00",
        "叁万陆仟元整",
        "36,000.00",
        "2022年4月6日",
        "2022年4月13日",
        "千分之二",
        "第三十四条",
    ] {
        assert!(r.text.contains(text), "the notice shows {text}");
    }
    // Leaders and auditors may print it; the permits section may not read fees.
    assert_eq!(app.get(&format!("/api/v1/fee-assessments/{id}/notice")).bearer(&f.s.leader).send().await.status, 200);
    app.get(&format!("/api/v1/fee-assessments/{id}/notice"))
        .bearer(&f.s.clerk)
        .send()
        .await
        .assert_problem(403, "forbidden");
}

async fn racing_payments_never_overpay_and_retries_pay_once(app: TestApp) {
    let f = fees_staff(&app).await;
    let (id, _) = served_36000(&app, &f).await;
    // Eight payments of 20 000 yuan each fired together against 36 000 outstanding: exactly one lands.
    let receipts: Vec<String> = (0..8).map(|i| format!("RACE-{i}")).collect();
    let results = join_all(receipts.iter().map(|r| pay(&app, &f, &id, 2_000_000, "2022-04-10", r))).await;
    let landed: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(landed.len(), 1, "{:?}", results.iter().map(|r| (r.status, &r.text)).collect::<Vec<_>>());
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "overpayment");
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM payments"), 1);
    assert_eq!(app.count(&format!("SELECT paid_fen AS n FROM fee_assessments WHERE id = '{id}'")), 2_000_000);

    // One payment retried five times at once with one Idempotency-Key: paid once.
    let body = json!({"amount_fen": 500_000, "paid_on": "2022-04-11", "method": "cash", "receipt_no": "RETRY-1"});
    let path = format!("/api/v1/fee-assessments/{id}/payments");
    let retries = join_all(
        (0..5).map(|_| app.post(&path).bearer(&f.finance).header("idempotency-key", "pay-1").json(&body).send()),
    )
    .await;
    for r in &retries {
        assert!(r.status == 201 || r.status == 409, "{} {}", r.status, r.text);
        if r.status == 409 {
            assert_eq!(r.body["code"], "idempotency_key_in_flight");
        }
    }
    let replay = app.post(&path).bearer(&f.finance).header("idempotency-key", "pay-1").json(&body).send().await;
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM payments WHERE receipt_no = 'RETRY-1'"), 1);
    assert_eq!(app.count(&format!("SELECT paid_fen AS n FROM fee_assessments WHERE id = '{id}'")), 2_500_000);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'payment_recorded'"), 2);
}

async fn runs_fired_together_assess_once(app: TestApp) {
    let f = fees_staff(&app).await;
    assert_eq!(
        add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.5", "2020-01-01", None)).await.status,
        201
    );
    let mut permits = Vec::new();
    for _ in 0..4 {
        let p = old_permit(&app, &f, None, "industrial").await;
        report(&app, &f, &p, "2023-02", 1000).await;
        permits.push(p);
    }
    let results = join_all((0..4).map(|_| {
        app.post("/api/v1/fee-assessments/run").bearer(&f.finance).json(&json!({"period": "2023-Q1"})).send()
    }))
    .await;
    let created: i64 = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["fee_assessments_created"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(created, 4, "each permit assessed by exactly one run");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments WHERE period = '2023-Q1'"), 4);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'fee_assessment_created'"), 4);
}

async fn pending_requests_hold_payments_and_nobody_decides_their_own(app: TestApp) {
    let f = fees_staff(&app).await;
    let (id, _) = served_36000(&app, &f).await;
    // A head of finance who is also a leader: may ask, may not decide what they asked.
    let head = app.token_for("head", &[Role::Finance, Role::Leader]);
    let asked =
        fee_act(&app, &head, &id, "waive", json!({"reason": "企业受灾停产", "effective_date": "2022-04-08"})).await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert_eq!(
        app.text(&format!("SELECT request_by AS t FROM fee_assessments WHERE id = '{id}'")),
        Some("head".into())
    );
    // While a waiver is pending, a payment (even one settling everything) waits for the decision.
    pay(&app, &f, &id, 3_600_000, "2022-04-10", "W-1").await.assert_problem(409, "invalid_transition");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM payments"), 0);
    for action in ["approve-waiver", "reject-waiver"] {
        fee_act(&app, &head, &id, action, json!({"reason": "自批", "effective_date": "2022-04-09"}))
            .await
            .assert_problem(409, "own_request");
    }
    assert_eq!(version_of(&app, "fee_assessments", &id), 3);
    let rejected = fee_act(
        &app,
        &f.s.leader,
        &id,
        "reject-waiver",
        json!({"reason": "不符合条件", "effective_date": "2022-04-09"}),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(app.text(&format!("SELECT request_by AS t FROM fee_assessments WHERE id = '{id}'")), None);
    // Decided: the payment dated while it was pending is taken now.
    let paid = pay(&app, &f, &id, 3_600_000, "2022-04-08", "W-1").await;
    assert_eq!((paid.status, paid.body["outstanding_after_fen"].as_i64()), (201, Some(0)), "{}", paid.text);
    assert_eq!(
        app.get(&format!("/api/v1/fee-assessments/{id}")).bearer(&f.finance).send().await.body["status"],
        "paid"
    );

    // A quarter of zero volumes is settled on service; the planned-user filter has nothing to match yet.
    let permit = old_permit(&app, &f, None, "industrial").await;
    report(&app, &f, &permit, "2023-01", 0).await;
    run(&app, &f, "2023-Q1").await;
    let zero = assessments_of(&app, &f, &permit, "").await["items"][0]["id"].as_str().unwrap().to_string();
    let served = fee_act(&app, &f.finance, &zero, "notify", json!({"effective_date": "2023-04-03"})).await;
    assert_eq!(
        (served.status, served.body["status"].as_str(), served.body["amount_fen"].as_i64()),
        (200, Some("paid"), Some(0)),
        "{}",
        served.text
    );
    let planned =
        app.get("/api/v1/fee-assessments?planned_user_id=x&include_total=true").bearer(&f.finance).send().await;
    assert_eq!((planned.status, planned.body["total"].as_i64()), (200, Some(0)), "{}", planned.text);
}

async fn rates_racing_for_one_key_never_overlap(app: TestApp) {
    let f = fees_staff(&app).await;
    // Eight administrators' screens saving overlapping rates of one key at once: one is stored.
    let bodies: Vec<Value> = (1..=8)
        .map(|i| rate("groundwater_deep", "industrial", None, &format!("1.{i}"), &format!("2022-{i:02}-01"), None))
        .collect();
    let results = join_all(bodies.iter().map(|b| add_rate(&app, &f, b.clone()))).await;
    assert_eq!(
        results.iter().filter(|r| r.status == 201).count(),
        1,
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "rate_overlap");
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_rates"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'fee_rate_created'"), 1);
}

/// 2 600 permits: three batches, on two connections on PostgreSQL. Two runs of the quarter and writes of other
/// kinds are fired together: each permit is assessed once, every event is numbered once in one intact chain, and
/// the feed shows each assessment once, in order.
async fn a_run_of_many_batches_chains_every_event_once(app: TestApp) {
    const BULK: i64 = 2600;
    let f = fees_staff(&app).await;
    assert_eq!(
        add_rate(&app, &f, rate("groundwater_deep", "industrial", None, "1.5", "2020-01-01", None)).await.status,
        201
    );
    let template = old_permit(&app, &f, None, "industrial").await;
    report(&app, &f, &template, "2023-02", 1000).await;
    app.sql(&format!(
        "INSERT INTO permits (id, permit_no, holder_id, source_type, purpose, annual_volume_m3, daily_max_volume_m3,
                              meter_status, valid_from, valid_to, status, submitted_on, approved_on, last_step_on,
                              created_at, updated_at, version)
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {BULK})
         SELECT 'bulk-' || (10000 + i), 'BULK-' || (10000 + i), p.holder_id, p.source_type, p.purpose,
                p.annual_volume_m3, p.daily_max_volume_m3, p.meter_status, p.valid_from, p.valid_to, p.status,
                p.submitted_on, p.approved_on, p.last_step_on, p.created_at, p.updated_at, 1
         FROM permits p CROSS JOIN s WHERE p.id = '{template}';
         INSERT INTO withdrawals (id, permit_id, period, revision, superseded, volume_m3, method, reported_by, source,
                                  over_capacity, created_at, updated_at, version)
         SELECT 'bulk-w-' || substr(id, 6), id, '2023-03', 1, false, 100 + length(id), 'online_meter', 'seed',
                'platform', false, '2023-04-01 00:00:00', '2023-04-01 00:00:00', 1
         FROM permits WHERE id LIKE 'bulk-%';"
    ));
    let run = || app.post("/api/v1/fee-assessments/run").bearer(&f.finance).json(&json!({"period": "2023-Q1"})).send();
    let others = (0..12).map(|n| {
        app.post("/api/v1/water-users")
            .bearer(&f.s.clerk)
            .json(&water_user_body(&format!("并发写入{n}"), &credit_code(7000 + n)))
            .send()
    });
    let (runs, writes) = futures_util::join!(join_all([run(), run()]), join_all(others));
    assert!(writes.iter().all(|w| w.status == 201), "{:?}", writes.iter().map(|w| &w.text).collect::<Vec<_>>());
    let created: Vec<i64> = runs
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["permits"], BULK + 1, "{}", r.text);
            r.body["fee_assessments_created"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(created.iter().sum::<i64>(), BULK + 1, "each permit assessed by exactly one of the runs");
    assert!(created.contains(&0), "the runs did not interleave: {created:?}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM fee_assessments WHERE period = '2023-Q1'"), BULK + 1);
    let verify = app.get("/api/v1/audit-events/verify").bearer(&app.token(&[Role::Auditor])).send().await;
    assert_eq!(verify.status, 200);
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
    let events = app.count("SELECT COUNT(*) AS n FROM audit_events");
    assert_eq!(verify.body["checked"], events, "every event numbered: {}", verify.text);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'fee_assessment_created'"), BULK + 1);
    assert_eq!(app.count("SELECT COUNT(DISTINCT seq) AS n FROM audit_events"), events);
    let feed = whole_feed(&app, "fee_assessment").await;
    assert_eq!(feed.len() as i64, BULK + 1);
    let ids: std::collections::HashSet<&str> = feed.iter().map(|i| i["entity_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len() as i64, BULK + 1, "each assessment once in the feed");
    // The summary lists nothing unpriced, and its amounts are the permits' own: 1.5 yuan × (100 + length of id).
    let one = app.text("SELECT CAST(amount_fen AS TEXT) AS t FROM fee_assessments WHERE permit_id = 'bulk-12600'");
    assert_eq!(one.as_deref(), Some("16500"));
}
