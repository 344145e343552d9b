use chrono::{Datelike, Duration as Days, NaiveDate};
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    lifecycle_numbers_and_history,
    every_state_and_action,
    term_renewal_and_date_rules,
    zone_rules_and_utilisation,
    expired_reads_filters_and_search,
    withdrawals_revisions_and_activity,
    concurrent_withdrawal_reports_keep_one_current_revision,
);

pub struct Staff {
    pub clerk: String,
    pub leader: String,
    pub holder: String,
}

fn d(date: NaiveDate) -> String {
    date.to_string()
}

pub async fn staff(app: &TestApp) -> Staff {
    let clerk = app.token_for("clerk", &[Role::WaterResources]);
    let leader = app.token_for("leader", &[Role::Leader]);
    let r = app
        .post("/api/v1/water-users")
        .bearer(&clerk)
        .json(&water_user_body("赤水市化工有限公司", REAL_CODES[0]))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Staff { clerk, leader, holder: r.body["id"].as_str().unwrap().to_string() }
}

pub fn permit_body(holder: &str, zone: Option<&str>, source: &str, annual: i64) -> Value {
    json!({
        "holder_id": holder, "zone_id": zone, "source_type": source, "intake_method": "机井", "purpose": "industrial",
        "intake_location": {"lat": 28.59, "lng": 105.69, "address": "赤水市工业园区"},
        "annual_volume_m3": annual, "daily_max_volume_m3": 1800, "return_location": "赤水河", "return_method": "达标排放",
        "meter_status": "ok"
    })
}

pub async fn create(app: &TestApp, s: &Staff, body: &Value) -> Value {
    let r = app.post("/api/v1/permits").bearer(&s.clerk).json(body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

/// Runs an action with the permit's current ETag.
pub async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Resp {
    let etag = app.get(&format!("/api/v1/permits/{id}")).bearer(token).send().await.etag();
    app.post(&format!("/api/v1/permits/{id}/{action}")).bearer(token).header("if-match", &etag).json(&body).send().await
}

/// A term that began 90 days ago: tests report for months up to two back (`today() - 40 days`, and the month before
/// `today() - 20 days`), which a term begun 30 days ago covered only late in a month.
pub fn approve_body() -> Value {
    json!({"valid_from": d(today() - Days::days(90)), "valid_to": d(today() + Days::days(730))})
}

/// A new permit brought into `state` through the API.
pub async fn permit_in(app: &TestApp, s: &Staff, state: &str) -> Value {
    let p = create(app, s, &permit_body(&s.holder, None, "groundwater_deep", 10_000)).await;
    let id = p["id"].as_str().unwrap().to_string();
    let ok = |r: Resp| {
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    };
    if state == "draft" {
        return p;
    }
    if state == "expired" {
        ok(act(app, &s.clerk, &id, "submit", json!({"effective_date": "2020-01-05"})).await);
        let body = json!({"effective_date": "2020-01-10", "valid_from": "2020-02-01", "valid_to": "2021-01-31"});
        return ok(act(app, &s.leader, &id, "approve", body).await);
    }
    let mut last = ok(act(app, &s.clerk, &id, "submit", json!({})).await);
    match state {
        "submitted" => {}
        "rejected" => last = ok(act(app, &s.leader, &id, "reject", json!({"reason": "材料不全"})).await),
        _ => {
            last = ok(act(app, &s.leader, &id, "approve", approve_body()).await);
            match state {
                "approved" => {}
                "suspended" => last = ok(act(app, &s.clerk, &id, "suspend", json!({"reason": "计量设施故障"})).await),
                "revoked" => last = ok(act(app, &s.leader, &id, "revoke", json!({"reason": "严重违法"})).await),
                "cancelled" => last = ok(act(app, &s.clerk, &id, "cancel", json!({"reason": "连续两年未取水"})).await),
                other => panic!("{other}"),
            }
        }
    }
    assert_eq!(last["status"], state);
    last
}

async fn lifecycle_numbers_and_history(app: TestApp) {
    let s = staff(&app).await;
    let p = create(&app, &s, &permit_body(&s.holder, None, "groundwater_deep", 500_000)).await;
    assert_eq!(p["status"], "draft");
    assert_eq!(p["permit_no"], Value::Null);
    assert_eq!(p["intake_location"]["address"], "赤水市工业园区");
    let id = p["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/permits/{id}");

    // Edit while draft.
    let edited = app
        .patch(&path)
        .bearer(&s.clerk)
        .header("if-match", "\"1\"")
        .json(&json!({"annual_volume_m3": 450_000, "return_method": null}))
        .send()
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["annual_volume_m3"], 450_000);
    assert_eq!(edited.body["return_method"], Value::Null);

    let submitted = act(&app, &s.clerk, &id, "submit", json!({"effective_date": d(today() - Days::days(3))})).await;
    assert_eq!(submitted.status, 200, "{}", submitted.text);
    assert_eq!(submitted.body["submitted_on"], d(today() - Days::days(3)));
    assert_eq!(submitted.etag(), "\"3\"");
    // No more edits once submitted.
    app.patch(&path)
        .bearer(&s.clerk)
        .header("if-match", "\"3\"")
        .json(&json!({"annual_volume_m3": 1}))
        .send()
        .await
        .assert_problem(409, "not_editable");

    let approved = act(
        &app,
        &s.leader,
        &id,
        "approve",
        json!({"reason": "符合要求", "valid_from": d(today()), "valid_to": d(today() + Days::days(5 * 365))}),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["approved_on"], d(today()));
    let no = approved.body["permit_no"].as_str().unwrap();
    assert_eq!(no, format!("D520381G{}-0001", today().year()));

    // A second approval the same year takes the next serial; surface water is `S`.
    let p2 = create(&app, &s, &permit_body(&s.holder, None, "surface", 1000)).await;
    let id2 = p2["id"].as_str().unwrap();
    act(&app, &s.clerk, id2, "submit", json!({})).await;
    let a2 = act(&app, &s.leader, id2, "approve", approve_body()).await;
    assert_eq!(a2.body["permit_no"], format!("D520381S{}-0001", today().year()));
    let p3 = create(&app, &s, &permit_body(&s.holder, None, "karst", 1000)).await;
    let id3 = p3["id"].as_str().unwrap();
    act(&app, &s.clerk, id3, "submit", json!({})).await;
    let a3 = act(&app, &s.leader, id3, "approve", approve_body()).await;
    assert_eq!(a3.body["permit_no"], format!("D520381G{}-0002", today().year()));

    assert_eq!(
        act(&app, &s.clerk, &id, "suspend", json!({"reason": "计量设施故障"})).await.body["status"],
        "suspended"
    );
    assert_eq!(act(&app, &s.clerk, &id, "reinstate", json!({})).await.body["status"], "approved");
    let revoked = act(&app, &s.leader, &id, "revoke", json!({"reason": "以欺骗手段取得"})).await;
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(revoked.body["revoked_on"], d(today()));

    // History: every step with actor, dates, reason and the fields it changed.
    let h = app.get(&format!("{path}/history")).bearer(&app.token(&[Role::Auditor])).send().await;
    assert_eq!(h.status, 200, "{}", h.text);
    let items = h.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "updated", "submit", "approve", "suspend", "reinstate", "revoke"]);
    let upd = &items[1];
    assert_eq!(upd["actor"]["sub"], "clerk");
    let vol = upd["changes"].as_array().unwrap().iter().find(|c| c["field"] == "annual_volume_m3").unwrap();
    assert_eq!((vol["from"].as_i64(), vol["to"].as_i64()), (Some(500_000), Some(450_000)));
    assert_eq!(items[2]["effective_date"], d(today() - Days::days(3)));
    assert_eq!(items[3]["actor"]["sub"], "leader");
    assert_eq!(items[3]["reason"], "符合要求");
    assert!(items[3]["changes"].as_array().unwrap().iter().any(|c| c["field"] == "permit_no" && c["to"] == no));
    assert_eq!(items[6]["reason"], "以欺骗手段取得");
    assert!(items.iter().all(|i| i["at"].as_str().unwrap().ends_with('Z')));
    app.get("/api/v1/permits/nope/history").bearer(&s.clerk).send().await.assert_problem(404, "not_found");

    // Rejection path, with the reason required.
    let p4 = create(&app, &s, &permit_body(&s.holder, None, "surface", 1000)).await;
    let id4 = p4["id"].as_str().unwrap();
    act(&app, &s.clerk, id4, "submit", json!({})).await;
    act(&app, &s.leader, id4, "reject", json!({})).await.assert_problem(400, "validation_failed");
    let rej = act(&app, &s.leader, id4, "reject", json!({"reason": "取水口位于饮用水源保护区"})).await;
    assert_eq!(rej.body["status"], "rejected");
    assert_eq!(rej.body["permit_no"], Value::Null);

    // Actions need If-Match; a stale one changes nothing.
    let etag = app.get(&format!("/api/v1/permits/{id2}")).bearer(&s.clerk).send().await.etag();
    app.post(&format!("/api/v1/permits/{id2}/suspend"))
        .bearer(&s.clerk)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.post(&format!("/api/v1/permits/{id2}/suspend"))
        .bearer(&s.clerk)
        .header("if-match", "\"1\"")
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    assert_eq!(app.get(&format!("/api/v1/permits/{id2}")).bearer(&s.clerk).send().await.etag(), etag);
    // A body-less submit works (all its fields are optional).
    let p5 = create(&app, &s, &permit_body(&s.holder, None, "surface", 1000)).await;
    let r = app
        .post(&format!("/api/v1/permits/{}/submit", p5["id"].as_str().unwrap()))
        .bearer(&s.clerk)
        .header("if-match", "\"1\"")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

const STATES: [&str; 8] =
    ["draft", "submitted", "approved", "rejected", "suspended", "revoked", "cancelled", "expired"];

fn allowed(state: &str, action: &str) -> Option<&'static str> {
    match (state, action) {
        ("draft", "submit") => Some("submitted"),
        ("submitted", "approve") => Some("approved"),
        ("submitted", "reject") => Some("rejected"),
        ("approved", "renew") => Some("approved"),
        ("approved", "suspend") => Some("suspended"),
        ("suspended", "reinstate") => Some("approved"),
        ("approved" | "suspended", "revoke") => Some("revoked"),
        ("approved" | "suspended", "cancel") => Some("cancelled"),
        _ => None,
    }
}

async fn every_state_and_action(app: TestApp) {
    let s = staff(&app).await;
    let actions = [
        ("submit", false, json!({"reason": "申请"})),
        ("approve", true, approve_body()),
        ("reject", true, json!({"reason": "不符合"})),
        ("renew", false, json!({"valid_to": d(today() + Days::days(4 * 365))})),
        ("suspend", false, json!({"reason": "暂停"})),
        ("reinstate", false, json!({"reason": "恢复"})),
        ("revoke", true, json!({"reason": "吊销"})),
        ("cancel", false, json!({"reason": "注销"})),
    ];
    for state in STATES {
        for (action, by_leader, body) in &actions {
            let p = permit_in(&app, &s, state).await;
            let id = p["id"].as_str().unwrap();
            let token = if *by_leader { &s.leader } else { &s.clerk };
            let r = act(&app, token, id, action, body.clone()).await;
            match allowed(state, action) {
                Some(to) => {
                    assert_eq!(r.status, 200, "{state} + {action}: {}", r.text);
                    assert_eq!(r.body["status"], to, "{state} + {action}");
                    assert_eq!(r.body["version"].as_i64().unwrap(), p["version"].as_i64().unwrap() + 1);
                }
                None => {
                    r.assert_problem(409, "invalid_transition");
                    let after = app.get(&format!("/api/v1/permits/{id}")).bearer(&s.clerk).send().await;
                    assert_eq!(after.body, p, "{state} + {action} changed nothing");
                }
            }
        }
    }
}

async fn term_renewal_and_date_rules(app: TestApp) {
    let s = staff(&app).await;
    let sub = permit_in(&app, &s, "submitted").await;
    let id = sub["id"].as_str().unwrap();
    let t0 = today() - Days::days(100);
    let bad = act(&app, &s.leader, id, "approve", json!({"valid_from": d(t0), "valid_to": d(t0)})).await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "valid_to");
    let ten_years = NaiveDate::from_ymd_opt(t0.year() + 10, t0.month(), t0.day()).unwrap();
    act(&app, &s.leader, id, "approve", json!({"valid_from": d(t0), "valid_to": d(ten_years + Days::days(1))}))
        .await
        .assert_problem(400, "validation_failed");
    act(&app, &s.leader, id, "approve", json!({"valid_from": d(t0)})).await.assert_problem(400, "validation_failed");
    // Dates: not in the future, not before the previous step.
    act(
        &app,
        &s.leader,
        id,
        "approve",
        json!({"valid_from": d(t0), "valid_to": d(ten_years), "effective_date": d(today() + Days::days(1))}),
    )
    .await
    .assert_problem(400, "validation_failed");
    act(
        &app,
        &s.leader,
        id,
        "approve",
        json!({"valid_from": d(t0), "valid_to": d(ten_years), "effective_date": d(today() - Days::days(1))}),
    )
    .await
    .assert_problem(409, "effective_date_out_of_order");
    let ok = act(&app, &s.leader, id, "approve", json!({"valid_from": d(t0), "valid_to": d(ten_years)})).await;
    assert_eq!(ok.status, 200, "exactly ten years is allowed: {}", ok.text);

    // Renewal: applied ≥ 45 days before valid_to; new term ≤ 10 years from the renewal.
    let p = permit_in(&app, &s, "submitted").await;
    let id = p["id"].as_str().unwrap();
    let end = today() + Days::days(44);
    act(&app, &s.leader, id, "approve", json!({"valid_from": d(today() - Days::days(300)), "valid_to": d(end)})).await;
    let late = act(&app, &s.clerk, id, "renew", json!({"valid_to": d(end + Days::days(365))})).await;
    late.assert_problem(409, "renewal_too_late");
    // Filed on paper 46 days before expiry, entered today.
    let on_time = act(&app, &s.clerk, id, "renew", json!({"valid_to": d(end + Days::days(365)), "effective_date": d(end - Days::days(46)), "annual_volume_m3": 12_000})).await;
    on_time.assert_problem(409, "effective_date_out_of_order");
    let p = create(&app, &s, &permit_body(&s.holder, None, "surface", 10_000)).await;
    let id = p["id"].as_str().unwrap();
    act(&app, &s.clerk, id, "submit", json!({"effective_date": d(today() - Days::days(100))})).await;
    let a = act(&app, &s.leader, id, "approve", json!({"effective_date": d(today() - Days::days(60)), "valid_from": d(today() - Days::days(300)), "valid_to": d(end)})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let too_long = act(
        &app,
        &s.clerk,
        id,
        "renew",
        json!({"valid_to": d(today() + Days::days(3653 + 2)), "effective_date": d(end - Days::days(45))}),
    )
    .await;
    too_long.assert_problem(400, "validation_failed");
    let renewed = act(&app, &s.clerk, id, "renew", json!({"valid_to": d(end + Days::days(365)), "effective_date": d(end - Days::days(45)), "annual_volume_m3": 12_000})).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    assert_eq!(renewed.body["valid_to"], d(end + Days::days(365)));
    assert_eq!(renewed.body["annual_volume_m3"], 12_000);
    assert_eq!(renewed.body["renewed_on"], d(end - Days::days(45)));
    act(&app, &s.clerk, id, "renew", json!({"valid_to": d(end)})).await.assert_problem(400, "validation_failed");
}

async fn zone_rules_and_utilisation(app: TestApp) {
    let s = staff(&app).await;
    let admin = app.token(&[Role::Admin]);
    let zone = |name: &str, class: &str, cap: i64| json!({"name": name, "source_type": "groundwater_deep", "zone_class": class, "allowable_m3_per_year": cap});
    let z =
        app.post("/api/v1/water-zones").bearer(&admin).json(&zone("深层地下水区", "normal", 15_150_000)).send().await;
    assert_eq!(z.status, 201, "{}", z.text);
    assert_eq!(z.body["approved_m3_per_year"], 0);
    assert_eq!(z.body["utilization_pct"], "0.0");
    let zid = z.body["id"].as_str().unwrap().to_string();
    app.post("/api/v1/water-zones")
        .bearer(&admin)
        .json(&zone("深层地下水区", "normal", 1))
        .send()
        .await
        .assert_problem(409, "conflict");
    app.post("/api/v1/water-zones")
        .bearer(&s.clerk)
        .json(&zone("x", "normal", 1))
        .send()
        .await
        .assert_problem(403, "forbidden");

    let submit = |body: Value| {
        let app = &app;
        let s = &s;
        async move {
            let p = create(app, s, &body).await;
            let id = p["id"].as_str().unwrap().to_string();
            act(app, &s.clerk, &id, "submit", json!({})).await;
            id
        }
    };
    let a = submit(permit_body(&s.holder, Some(&zid), "groundwater_deep", 5_000_000)).await;
    assert_eq!(act(&app, &s.leader, &a, "approve", approve_body()).await.status, 200);
    let zv = app.get(&format!("/api/v1/water-zones/{zid}")).bearer(&s.clerk).send().await;
    assert_eq!(zv.body["approved_m3_per_year"], 5_000_000);
    assert_eq!(zv.body["utilization_pct"], "33.0");

    let b = submit(permit_body(&s.holder, Some(&zid), "groundwater_deep", 10_200_000)).await;
    let over = act(&app, &s.leader, &b, "approve", approve_body()).await;
    over.assert_problem(409, "zone_cap_exceeded");
    assert_eq!(app.get(&format!("/api/v1/permits/{b}")).bearer(&s.clerk).send().await.body["status"], "submitted");
    let c = submit(permit_body(&s.holder, Some(&zid), "groundwater_deep", 10_150_000)).await;
    assert_eq!(act(&app, &s.leader, &c, "approve", approve_body()).await.status, 200, "exactly at the cap");
    assert_eq!(
        app.get(&format!("/api/v1/water-zones/{zid}")).bearer(&s.clerk).send().await.body["utilization_pct"],
        "100.0"
    );
    // Renewing with more volume is checked too; revoking frees the volume.
    act(
        &app,
        &s.clerk,
        &c,
        "renew",
        json!({"valid_to": d(today() + Days::days(1500)), "annual_volume_m3": 10_150_001}),
    )
    .await
    .assert_problem(409, "zone_cap_exceeded");
    act(&app, &s.leader, &a, "revoke", json!({"reason": "r"})).await;
    assert_eq!(
        app.get(&format!("/api/v1/water-zones/{zid}")).bearer(&s.clerk).send().await.body["approved_m3_per_year"],
        10_150_000
    );
    let list = app.get("/api/v1/water-zones").bearer(&s.clerk).send().await;
    assert_eq!(list.body["items"][0]["approved_m3_per_year"], 10_150_000);

    let p =
        app.post("/api/v1/water-zones").bearer(&admin).json(&zone("岩溶禁采区", "prohibited", 1_000_000)).send().await;
    let pid = p.body["id"].as_str().unwrap().to_string();
    let x = submit(permit_body(&s.holder, Some(&pid), "surface", 10)).await;
    act(&app, &s.leader, &x, "approve", approve_body()).await.assert_problem(409, "zone_prohibited");
    let r =
        app.post("/api/v1/water-zones").bearer(&admin).json(&zone("浅层限采区", "restricted", 1_000_000)).send().await;
    let rid = r.body["id"].as_str().unwrap().to_string();
    let g = submit(permit_body(&s.holder, Some(&rid), "groundwater_shallow", 10)).await;
    act(&app, &s.leader, &g, "approve", approve_body()).await.assert_problem(409, "zone_restricted");
    let sfc = submit(permit_body(&s.holder, Some(&rid), "surface", 10)).await;
    assert_eq!(
        act(&app, &s.leader, &sfc, "approve", approve_body()).await.status,
        200,
        "surface water in a restricted zone is fine"
    );

    // Zone changes by admin, with If-Match.
    let etag = app.get(&format!("/api/v1/water-zones/{zid}")).bearer(&admin).send().await.etag();
    let up = app
        .patch(&format!("/api/v1/water-zones/{zid}"))
        .bearer(&admin)
        .header("if-match", &etag)
        .json(&json!({"allowable_m3_per_year": 20_300_000}))
        .send()
        .await;
    assert_eq!(up.status, 200, "{}", up.text);
    assert_eq!(up.body["utilization_pct"], "50.0");
    // Renaming onto another zone's name is a conflict; without If-Match nothing happens.
    let etag = up.etag();
    let clash = app
        .patch(&format!("/api/v1/water-zones/{zid}"))
        .bearer(&admin)
        .header("if-match", &etag)
        .json(&json!({"name": "岩溶禁采区"}))
        .send()
        .await;
    clash.assert_problem(409, "conflict");
    app.patch(&format!("/api/v1/water-zones/{zid}"))
        .bearer(&admin)
        .json(&json!({"name": "新名"}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    assert_eq!(app.get(&format!("/api/v1/water-zones/{zid}")).bearer(&admin).send().await.body["name"], "深层地下水区");
    let unknown_zone = permit_body(&s.holder, Some("nope"), "surface", 10);
    let r = app.post("/api/v1/permits").bearer(&s.clerk).json(&unknown_zone).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "zone_id");
}

async fn expired_reads_filters_and_search(app: TestApp) {
    let s = staff(&app).await;
    let expired = permit_in(&app, &s, "expired").await;
    assert_eq!(expired["status"], "expired");
    let eid = expired["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/api/v1/permits/{eid}")).bearer(&s.clerk).send().await.body["status"], "expired");
    let approved = permit_in(&app, &s, "approved").await;
    let aid = approved["id"].as_str().unwrap();
    let draft = permit_in(&app, &s, "draft").await;
    let ids = |r: &Resp| {
        r.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };

    let r = app.get("/api/v1/permits?status=expired").bearer(&s.clerk).send().await;
    assert_eq!(ids(&r), vec![eid.to_string()]);
    assert_eq!(r.body["items"][0]["status"], "expired");
    assert_eq!(ids(&app.get("/api/v1/permits?status=approved").bearer(&s.clerk).send().await), vec![aid.to_string()]);
    assert_eq!(
        ids(&app.get("/api/v1/permits?status=draft").bearer(&s.clerk).send().await),
        vec![draft["id"].as_str().unwrap().to_string()]
    );
    // Due for renewal: in force, ending within N days.
    assert_eq!(
        ids(&app.get("/api/v1/permits?expiring_within_days=800").bearer(&s.clerk).send().await),
        vec![aid.to_string()]
    );
    assert!(ids(&app.get("/api/v1/permits?expiring_within_days=100").bearer(&s.clerk).send().await).is_empty());
    // The renewal list comes soonest first, page by page.
    let sooner = create(&app, &s, &permit_body(&s.holder, None, "surface", 10)).await;
    let sid = sooner["id"].as_str().unwrap().to_string();
    act(&app, &s.clerk, &sid, "submit", json!({})).await;
    act(&app, &s.leader, &sid, "approve", json!({"valid_from": d(today()), "valid_to": d(today() + Days::days(400))}))
        .await;
    let page1 = app.get("/api/v1/permits?expiring_within_days=800&limit=1").bearer(&s.clerk).send().await;
    assert_eq!(ids(&page1), vec![sid.clone()]);
    let page2 = app
        .get(&format!(
            "/api/v1/permits?expiring_within_days=800&limit=1&cursor={}",
            page1.body["next_cursor"].as_str().unwrap()
        ))
        .bearer(&s.clerk)
        .send()
        .await;
    assert_eq!(ids(&page2), vec![aid.to_string()]);
    assert_eq!(page2.body["next_cursor"], Value::Null);
    // A cursor from one ordering is refused by the other.
    app.get(&format!("/api/v1/permits?cursor={}", page1.body["next_cursor"].as_str().unwrap()))
        .bearer(&s.clerk)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.get("/api/v1/permits?expiring_within_days=-1")
        .bearer(&s.clerk)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.get("/api/v1/permits?status=bogus").bearer(&s.clerk).send().await.assert_problem(400, "validation_failed");
    // Search by number and by holder name; other filters.
    let no = approved["permit_no"].as_str().unwrap();
    assert_eq!(
        ids(&app.get(&format!("/api/v1/permits?q={}", enc(&no[1..]))).bearer(&s.clerk).send().await),
        vec![aid.to_string()]
    );
    assert_eq!(ids(&app.get(&format!("/api/v1/permits?q={}", enc("化工"))).bearer(&s.clerk).send().await).len(), 4);
    assert!(ids(&app.get(&format!("/api/v1/permits?q={}", enc("不存在"))).bearer(&s.clerk).send().await).is_empty());
    assert_eq!(
        ids(&app
            .get(&format!("/api/v1/permits?holder_id={}&source_type=groundwater_deep&purpose=industrial", s.holder))
            .bearer(&s.clerk)
            .send()
            .await)
        .len(),
        3
    );
    assert!(ids(&app.get("/api/v1/permits?purpose=agricultural").bearer(&s.clerk).send().await).is_empty());
    // Pages.
    let first = app.get("/api/v1/permits?limit=3").bearer(&s.clerk).send().await;
    assert_eq!(ids(&first).len(), 3);
    let next = app
        .get(&format!("/api/v1/permits?limit=3&cursor={}", first.body["next_cursor"].as_str().unwrap()))
        .bearer(&s.clerk)
        .send()
        .await;
    assert_eq!(ids(&next).len(), 1);
    assert_eq!(next.body["next_cursor"], Value::Null);
    // Inspectors and the platform read permits.
    assert_eq!(app.get("/api/v1/permits").bearer(&app.token(&[Role::Inspector])).send().await.status, 200);
}

async fn withdrawals_revisions_and_activity(app: TestApp) {
    let s = staff(&app).await;
    let p = permit_in(&app, &s, "approved").await;
    let id = p["id"].as_str().unwrap();
    let path = format!("/api/v1/permits/{id}/withdrawals");
    let month = shuiwu::domain::dates::Month::of(today() - Days::days(20));
    // The provincial platform reports the online meter's reading; who reported it is the caller.
    let platform = app.token_for("province", &[Role::Platform]);
    let r = app
        .post(&path)
        .bearer(&platform)
        .json(&json!({"period": month.to_string(), "volume_m3": 800, "method": "online_meter"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (&r.body["revision"], &r.body["reported_by"], &r.body["source"]),
        (&json!(1), &json!("province"), &json!("platform"))
    );
    let first_id = r.body["id"].as_str().unwrap().to_string();
    // Staff correct it from a manual reading: a new revision; the old one is kept. `reported_by` is never taken
    // from the body.
    let forged =
        json!({"period": month.to_string(), "volume_m3": 812, "method": "manual_reading", "reported_by": "某人"});
    app.post(&path).bearer(&s.clerk).json(&forged).send().await.assert_problem(400, "validation_failed");
    let c = app
        .post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": month.to_string(), "volume_m3": 812, "method": "manual_reading"}))
        .send()
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    assert_eq!(
        (&c.body["revision"], &c.body["reported_by"], &c.body["source"]),
        (&json!(2), &json!("clerk"), &json!("staff"))
    );
    // The platform may not overwrite a staff reading, nor report anything but online-meter readings.
    app.post(&path)
        .bearer(&platform)
        .json(&json!({"period": month.to_string(), "volume_m3": 1, "method": "online_meter"}))
        .send()
        .await
        .assert_problem(409, "staff_reading_protected");
    app.post(&path)
        .bearer(&platform)
        .json(&json!({"period": month.to_string(), "volume_m3": 1, "method": "manual_reading"}))
        .send()
        .await
        .assert_problem(409, "online_meter_only");
    let current = app.get(&path).bearer(&s.clerk).send().await;
    assert_eq!(current.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(current.body["items"][0]["volume_m3"], 812);
    let all = app.get(&format!("{path}?include_superseded=true")).bearer(&s.clerk).send().await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    let old = app.get(&format!("/api/v1/withdrawals/{first_id}")).bearer(&s.clerk).send().await;
    assert_eq!(old.body["superseded"], true);
    assert_eq!(old.body["volume_m3"], 800);
    let hist = app.get("/api/v1/audit-events?entity_type=withdrawal").bearer(&app.token(&[Role::Auditor])).send().await;
    let actions: Vec<&str> =
        hist.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["withdrawal_recorded", "withdrawal_superseded", "withdrawal_corrected"]);

    // Faulty meter: daily maximum × days of the month.
    let prev = shuiwu::domain::dates::Month::of(month.first_day() - Days::days(1));
    let m = app
        .post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": prev.to_string(), "method": "max_capacity"}))
        .send()
        .await;
    assert_eq!(m.status, 201, "{}", m.text);
    let active_from =
        NaiveDate::parse_from_str(p["valid_from"].as_str().unwrap(), "%Y-%m-%d").unwrap().max(prev.first_day());
    let days = (prev.last_day() - active_from).num_days() + 1;
    assert_eq!(m.body["volume_m3"], 1800 * days);
    app.post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": prev.to_string(), "method": "max_capacity", "volume_m3": 5}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": prev.to_string(), "method": "manual_reading"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");

    // A permit that states no daily maximum cannot be charged by capacity.
    let mut body = permit_body(&s.holder, None, "surface", 1000);
    body["daily_max_volume_m3"] = Value::Null;
    let nd = create(&app, &s, &body).await;
    let ndid = nd["id"].as_str().unwrap().to_string();
    act(&app, &s.clerk, &ndid, "submit", json!({})).await;
    assert_eq!(act(&app, &s.leader, &ndid, "approve", approve_body()).await.status, 200);
    app.post(&format!("/api/v1/permits/{ndid}/withdrawals"))
        .bearer(&s.clerk)
        .json(&json!({"period": month.to_string(), "method": "max_capacity"}))
        .send()
        .await
        .assert_problem(409, "no_daily_maximum");
    // Not active: before the term, a draft, the future, a bad month.
    let before = app
        .post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": "2019-01", "volume_m3": 1, "method": "manual_reading"}))
        .send()
        .await;
    before.assert_problem(409, "permit_not_active");
    let draft = permit_in(&app, &s, "draft").await;
    app.post(&format!("/api/v1/permits/{}/withdrawals", draft["id"].as_str().unwrap()))
        .bearer(&s.clerk)
        .json(&json!({"period": month.to_string(), "volume_m3": 1, "method": "manual_reading"}))
        .send()
        .await
        .assert_problem(409, "permit_not_active");
    let future = shuiwu::domain::dates::Month::of(today() + Days::days(40));
    app.post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": future.to_string(), "volume_m3": 1, "method": "manual_reading"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": "2024-13", "volume_m3": 1, "method": "manual_reading"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.post("/api/v1/permits/nope/withdrawals")
        .bearer(&s.clerk)
        .json(&json!({"period": month.to_string(), "volume_m3": 1, "method": "manual_reading"}))
        .send()
        .await
        .assert_problem(404, "not_found");
    // Revoked permits keep their past months but take none after revocation.
    let expired = permit_in(&app, &s, "expired").await;
    let ep = format!("/api/v1/permits/{}/withdrawals", expired["id"].as_str().unwrap());
    assert_eq!(
        app.post(&ep)
            .bearer(&s.clerk)
            .json(&json!({"period": "2020-06", "volume_m3": 5, "method": "manual_reading"}))
            .send()
            .await
            .status,
        201
    );
    app.post(&ep)
        .bearer(&s.clerk)
        .json(&json!({"period": "2021-02", "volume_m3": 5, "method": "manual_reading"}))
        .send()
        .await
        .assert_problem(409, "permit_not_active");
    // Across permits, with filters.
    let across =
        app.get(&format!("/api/v1/withdrawals?period_from={}&period_to={}", prev, month)).bearer(&s.clerk).send().await;
    assert_eq!(across.body["items"].as_array().unwrap().len(), 2);
    let periods: Vec<&str> =
        across.body["items"].as_array().unwrap().iter().map(|i| i["period"].as_str().unwrap()).collect();
    assert_eq!(periods, [prev.to_string(), month.to_string()]);
    app.get("/api/v1/withdrawals?period_from=2024")
        .bearer(&s.clerk)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.get("/api/v1/permits/nope/withdrawals").bearer(&s.clerk).send().await.assert_problem(404, "not_found");

    // An optional If-Match names the permit version the reporter saw: a stale one is refused, nothing written.
    let count = || app.count(&format!("SELECT COUNT(*) AS n FROM withdrawals WHERE permit_id = '{id}'"));
    let before = count();
    let audited = app.count("SELECT COUNT(*) AS n FROM audit_events");
    let seen =
        app.get(&format!("/api/v1/permits/{id}")).bearer(&s.clerk).send().await.body["version"].as_i64().unwrap();
    let report = json!({"period": month.to_string(), "volume_m3": 820, "method": "manual_reading"});
    app.post(&path)
        .bearer(&s.clerk)
        .header("if-match", &format!("\"{}\"", seen + 1))
        .json(&report)
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    assert_eq!((count(), app.count("SELECT COUNT(*) AS n FROM audit_events")), (before, audited));
    let ok = app.post(&path).bearer(&s.clerk).header("if-match", &format!("\"{seen}\"")).json(&report).send().await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(count(), before + 1);
}

/// Creates and submits `n` applications from `body`, then sends all their approvals at once.
async fn approve_at_once(app: &TestApp, s: &Staff, n: usize, body: &Value) -> Vec<Resp> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = create(app, s, body).await["id"].as_str().unwrap().to_string();
        act(app, &s.clerk, &id, "submit", json!({})).await;
        ids.push(id);
    }
    let reqs = ids.iter().map(|id| {
        app.post(&format!("/api/v1/permits/{id}/approve"))
            .bearer(&s.leader)
            .header("if-match", "\"2\"")
            .json(&approve_body())
            .send()
    });
    futures_util::future::join_all(reqs).await
}

#[actix_rt::test]
async fn concurrent_approvals_cannot_both_pass_the_cap() {
    let app = spawn_app_with(Backend::Postgres, |s| s.db_pool_size = Some(8)).await;
    let s = staff(&app).await;
    let admin = app.token(&[Role::Admin]);
    let z = app
        .post("/api/v1/water-zones")
        .bearer(&admin)
        .json(&json!({"name": "z", "source_type": "surface", "zone_class": "normal", "allowable_m3_per_year": 1000}))
        .send()
        .await;
    let zid = z.body["id"].as_str().unwrap().to_string();
    for round in 0..5 {
        let results = approve_at_once(&app, &s, 2, &permit_body(&s.holder, Some(&zid), "surface", 600)).await;
        let ok = results.iter().filter(|r| r.status == 200).count();
        let capped = results.iter().filter(|r| r.status == 409 && r.body["code"] == "zone_cap_exceeded").count();
        assert_eq!(
            (ok, capped),
            (if round == 0 { 1 } else { 0 }, if round == 0 { 1 } else { 2 }),
            "round {round}: {:?}",
            results.iter().map(|r| &r.text).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/water-zones/{zid}")).bearer(&admin).send().await.body["approved_m3_per_year"],
        600
    );

    // Permit numbers under concurrent approvals: unique and gapless.
    let results = approve_at_once(&app, &s, 12, &permit_body(&s.holder, None, "groundwater_deep", 10)).await;
    let mut numbers: Vec<String> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["permit_no"].as_str().unwrap().to_string()
        })
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=12).map(|n| format!("D520381G{}-{n:04}", today().year())).collect();
    assert_eq!(numbers, expected);
}

/// Many reports for one permit and month at once: each is recorded as the next revision or refused with 409
/// `conflict` (never a 500 or a second current record); revisions run 1..n without gaps, each recorded one audited.
async fn concurrent_withdrawal_reports_keep_one_current_revision(app: TestApp) {
    let s = staff(&app).await;
    let p = permit_in(&app, &s, "approved").await;
    let id = p["id"].as_str().unwrap().to_string();
    let month = shuiwu::domain::dates::Month::of(today() - Days::days(20)).to_string();
    let path = format!("/api/v1/permits/{id}/withdrawals");
    for round in 0..3 {
        let reqs: Vec<_> = (0..8)
            .map(|i| {
                app.post(&path)
                    .bearer(&s.clerk)
                    .json(&json!({"period": month, "volume_m3": 100 * round + i, "method": "manual_reading"}))
                    .send()
            })
            .collect();
        for r in futures_util::future::join_all(reqs).await {
            assert!(
                r.status == 201 || (r.status == 409 && r.body["code"] == "conflict"),
                "round {round}: {} {}",
                r.status,
                r.text
            );
        }
    }
    let recorded = app.count(&format!("SELECT COUNT(*) AS n FROM withdrawals WHERE permit_id = '{id}'"));
    assert!(recorded >= 3, "at least one report per round is recorded, got {recorded}");
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) AS n FROM withdrawals WHERE permit_id = '{id}' AND NOT superseded")),
        1
    );
    assert_eq!(
        app.count(&format!("SELECT CAST(MAX(revision) AS BIGINT) AS n FROM withdrawals WHERE permit_id = '{id}'")),
        recorded,
        "revisions run 1..n"
    );
    let current = app.get(&path).bearer(&s.clerk).send().await;
    assert_eq!(current.body["items"][0]["revision"], recorded);
    // The first report and every correction are audited once; each correction also audits the superseded record.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM audit_events WHERE action IN ('withdrawal_recorded', 'withdrawal_corrected')"
        ),
        recorded
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'withdrawal_superseded'"),
        recorded - 1
    );
}
