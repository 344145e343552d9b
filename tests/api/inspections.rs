//! Field inspections end to end: recording one with its findings, the own-records rule of field inspectors,
//! rectifications (overdue, completed), escalation into a case, and mobile retries and double-clicks fired
//! together.

use chrono::{Duration, Utc};
use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    an_inspection_with_findings_and_its_rectifications,
    field_inspectors_see_only_their_own,
    bad_inspections_are_refused_and_change_nothing,
    escalation_opens_one_case_with_the_findings,
    retries_and_double_clicks_write_once,
);

pub struct Team {
    pub me: String,
    pub me_token: String,
    pub partner: String,
    pub partner_token: String,
    pub stranger_token: String,
    pub enforcement: String,
    pub legal: String,
    pub target: String,
}

/// A real inspector account (so that it can be listed as a co-inspector) and a token for it.
async fn inspector(app: &TestApp, admin: &str, username: &str) -> (String, String) {
    let r = app
        .post("/api/v1/accounts")
        .bearer(admin)
        .json(&json!({"username": username, "display_name": username, "department": "office",
                      "roles": ["inspector"], "password": "a long passphrase"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let token = app.token_for(&id, &[Role::Inspector]);
    (id, token)
}

pub async fn team(app: &TestApp) -> Team {
    let admin = app.admin_token().await;
    let (me, me_token) = inspector(app, &admin, "xuncha01").await;
    let (partner, partner_token) = inspector(app, &admin, "xuncha02").await;
    let (_, stranger_token) = inspector(app, &admin, "xuncha03").await;
    let enforcement = app.token_for("zhifa01", &[Role::Enforcement]);
    let r = app
        .post("/api/v1/water-users")
        .bearer(&enforcement)
        .json(&water_user_body("赤水市化工有限公司", &credit_code(701)))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Team {
        me,
        me_token,
        partner,
        partner_token,
        stranger_token,
        enforcement,
        legal: app.token_for("fagui01", &[Role::Legal]),
        target: r.body["id"].as_str().unwrap().to_string(),
    }
}

fn days_ago(n: i64) -> String {
    (today() - Duration::days(n)).to_string()
}

/// An instant `n` days ago at 10:00 in Shanghai.
fn at_days_ago(n: i64) -> String {
    format!("{}T02:00:00Z", days_ago(n))
}

pub fn inspection_body(t: &Team, findings: Value) -> Value {
    json!({"kind": "water_permit", "target_water_user_id": t.target, "inspected_at": at_days_ago(10),
           "location": {"lat": 28.5901, "lng": 105.6932}, "inspector_ids": [t.partner],
           "notes": "现场检查取水口及计量设施", "findings": findings})
}

fn two_findings() -> Value {
    json!([
        {"type": "meter_not_working", "description": "取水计量设施损坏，读数停止", "rectification_due": days_ago(5)},
        {"type": "records_incomplete", "description": "取水台账缺 9 月、10 月记录", "rectification_due": days_ago(-20)},
    ])
}

pub async fn record(app: &TestApp, token: &str, body: &Value) -> Value {
    let r = app.post("/api/v1/inspections").bearer(token).json(body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

fn count(app: &TestApp, table: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) AS n FROM {table}"))
}

async fn an_inspection_with_findings_and_its_rectifications(app: TestApp) {
    let t = team(&app).await;
    let created =
        app.post("/api/v1/inspections").bearer(&t.me_token).json(&inspection_body(&t, two_findings())).send().await;
    assert_eq!(created.status, 201, "{}", created.text);
    let i = &created.body;
    let id = i["id"].as_str().unwrap();
    assert_eq!(created.header("location").unwrap(), format!("/api/v1/inspections/{id}"));
    assert_eq!(created.etag(), "\"1\"");
    // The creator first, then the co-inspector.
    assert_eq!(i["inspector_ids"], json!([t.me, t.partner]));
    assert_eq!(i["created_by"], t.me.as_str());
    assert_eq!(i["target_name"], "赤水市化工有限公司");
    assert_eq!(i["target_credit_code"], credit_code(701));
    assert_eq!(i["location"], json!({"lat": 28.5901, "lng": 105.6932}));
    assert_eq!(i["inspected_at"], at_days_ago(10));
    assert_eq!(i["case_id"], Value::Null);
    let findings = i["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    // Due five days ago and still open: overdue; due in twenty days: open.
    assert_eq!(findings[0]["status"], "overdue");
    assert_eq!(findings[1]["status"], "open");
    assert_eq!(i["open_findings"], 2);
    assert_eq!(count(&app, "rectifications"), 2);
    assert_eq!(count(&app, "inspection_inspectors"), 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'inspection_created'"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'rectification_created'"), 2);

    // The rectification list: by status (overdue as of a day), by inspection, the soonest due first.
    let r1 = findings[0]["rectification_id"].as_str().unwrap().to_string();
    let r2 = findings[1]["rectification_id"].as_str().unwrap().to_string();
    let staff = app.token_for("shuiziyuan01", &[Role::WaterResources]);
    let list = |q: String| {
        let staff = staff.clone();
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/rectifications?{q}")).bearer(&staff).send().await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(format!("inspection_id={id}")).await, vec![r1.clone(), r2.clone()]);
    assert_eq!(list("status=overdue".into()).await, vec![r1.clone()]);
    assert_eq!(list(format!("status=overdue&as_of={}", days_ago(5))).await, Vec::<String>::new());
    assert_eq!(list(format!("status=overdue&as_of={}", days_ago(-30))).await, vec![r1.clone(), r2.clone()]);
    assert_eq!(list("status=open".into()).await, vec![r1.clone(), r2.clone()]);
    assert_eq!(list(format!("due_before={}", days_ago(0))).await, vec![r1.clone()]);
    assert_eq!(list("type=records_incomplete".into()).await, vec![r2.clone()]);
    assert_eq!(list(format!("target_water_user_id={}", t.target)).await.len(), 2);

    // Completing: If-Match required, not before the inspection, once.
    let path = format!("/api/v1/rectifications/{r1}/complete");
    let note = json!({"note": "已更换合格的电磁流量计", "effective_date": days_ago(1)});
    app.post(&path).bearer(&t.partner_token).json(&note).send().await.assert_problem(428, "precondition_required");
    app.post(&path)
        .bearer(&t.partner_token)
        .header("if-match", "\"1\"")
        .json(&json!({"note": "已更换", "effective_date": days_ago(11)}))
        .send()
        .await
        .assert_problem(409, "effective_date_out_of_order");
    app.post(&path)
        .bearer(&t.partner_token)
        .header("if-match", "\"1\"")
        .json(&json!({"note": "  "}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    let done = app.post(&path).bearer(&t.partner_token).header("if-match", "\"1\"").json(&note).send().await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], "rectified");
    assert_eq!(done.body["completed_on"], days_ago(1));
    assert_eq!(done.body["completion_note"], "已更换合格的电磁流量计");
    assert_eq!(done.etag(), "\"2\"");
    app.post(&path)
        .bearer(&t.partner_token)
        .header("if-match", "\"2\"")
        .json(&note)
        .send()
        .await
        .assert_problem(409, "invalid_transition");
    assert_eq!(list("status=rectified".into()).await, vec![r1.clone()]);
    assert_eq!(list("status=overdue".into()).await, Vec::<String>::new());
    // As it stood two days ago: not rectified yet, so overdue then; eleven days ago nothing had been found.
    assert_eq!(list(format!("status=rectified&as_of={}", days_ago(2))).await, Vec::<String>::new());
    assert_eq!(list(format!("status=overdue&as_of={}", days_ago(2))).await, vec![r1.clone()]);
    let then = app
        .get(&format!("/api/v1/rectifications?inspection_id={id}&as_of={}", days_ago(2)))
        .bearer(&staff)
        .send()
        .await;
    assert_eq!(then.body["items"][0]["status"], "overdue");
    assert_eq!(list(format!("as_of={}", days_ago(11))).await, Vec::<String>::new());
    let i = app.get(&format!("/api/v1/inspections/{id}")).bearer(&staff).send().await;
    assert_eq!(i.body["open_findings"], 1);
    assert_eq!(i.body["findings"][0]["status"], "rectified");
    // Completing a finding is a step of the inspection too (its view shows it): next version, in its history.
    assert_eq!(i.etag(), "\"2\"");

    // A finding added later; an update of the inspection (the creator stays one of the inspectors).
    let added = app
        .post(&format!("/api/v1/inspections/{id}/findings"))
        .bearer(&t.me_token)
        .json(&json!({"type": "other", "description": "取水口标识牌缺失", "rectification_due": days_ago(-10)}))
        .send()
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["position"], 3);
    assert_eq!(added.body["inspection_id"], id);
    let patched = app
        .patch(&format!("/api/v1/inspections/{id}"))
        .bearer(&t.partner_token)
        .header("if-match", "\"3\"")
        .json(&json!({"notes": "企业负责人在场", "inspector_ids": [t.partner], "location": null}))
        .send()
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["inspector_ids"], json!([t.me, t.partner]));
    assert_eq!(patched.body["notes"], "企业负责人在场");
    assert_eq!(patched.body["location"], Value::Null);
    assert_eq!(patched.body["findings"].as_array().unwrap().len(), 3);
    assert_eq!(patched.etag(), "\"4\"");
    app.patch(&format!("/api/v1/inspections/{id}"))
        .bearer(&t.partner_token)
        .header("if-match", "\"3\"")
        .json(&json!({"notes": "stale"}))
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    // Moving the inspection after a finding's deadline is refused.
    app.patch(&format!("/api/v1/inspections/{id}"))
        .bearer(&t.partner_token)
        .header("if-match", "\"4\"")
        .json(&json!({"inspected_at": at_days_ago(2)}))
        .send()
        .await
        .assert_problem(400, "validation_failed");

    // Lists: latest first, by target, open findings, date range (inclusive days in Shanghai).
    let older = record(
        &app,
        &t.me_token,
        &json!({"kind": "water_saving", "target_water_user_id": t.target,
        "inspected_at": format!("{}T16:30:00Z", days_ago(41)), "findings": []}),
    )
    .await;
    let ids = |r: &Resp| r.body["items"].as_array().unwrap().iter().map(|x| x["id"].clone()).collect::<Vec<_>>();
    let all = app.get(&format!("/api/v1/inspections?target_water_user_id={}", t.target)).bearer(&staff).send().await;
    assert_eq!(ids(&all), vec![json!(id), older["id"].clone()]);
    let open = app.get("/api/v1/inspections?has_open_findings=true").bearer(&staff).send().await;
    assert_eq!(ids(&open), vec![json!(id)]);
    let none_open = app.get("/api/v1/inspections?has_open_findings=false").bearer(&staff).send().await;
    assert_eq!(ids(&none_open), vec![older["id"].clone()]);
    let window = app
        .get(&format!("/api/v1/inspections?from={}&to={}&include_total=true", days_ago(40), days_ago(40)))
        .bearer(&staff)
        .send()
        .await;
    // 16:30 UTC on day 41 is 00:30 on day 40 in Shanghai: that day's, not the day before's.
    assert_eq!((ids(&window), window.body["total"].clone()), (vec![older["id"].clone()], json!(1)));
    let before =
        app.get(&format!("/api/v1/inspections?from={}&to={}", days_ago(41), days_ago(41))).bearer(&staff).send().await;
    assert_eq!(ids(&before), Vec::<Value>::new());
    app.get(&format!("/api/v1/inspections?from={}&to={}", days_ago(40), days_ago(41)))
        .bearer(&staff)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    let by_kind = app.get("/api/v1/inspections?kind=water_saving").bearer(&staff).send().await;
    assert_eq!(ids(&by_kind), vec![older["id"].clone()]);
    let by_partner = app.get(&format!("/api/v1/inspections?inspector_id={}", t.partner)).bearer(&staff).send().await;
    assert_eq!(ids(&by_partner), vec![json!(id)]);
    let paged = app.get("/api/v1/inspections?limit=1").bearer(&staff).send().await;
    let cursor = paged.body["next_cursor"].as_str().unwrap();
    let next = app.get(&format!("/api/v1/inspections?limit=1&cursor={cursor}")).bearer(&staff).send().await;
    assert_eq!((ids(&paged), ids(&next)), (vec![json!(id)], vec![older["id"].clone()]));

    // History, and everything in the change feed.
    let h = app.get(&format!("/api/v1/inspections/{id}/history")).bearer(&staff).send().await;
    let actions: Vec<&str> =
        h.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["created", "finding_rectified", "finding_added", "updated"]);
    let feed = whole_feed(&app, "inspection,rectification").await;
    assert_eq!(feed.iter().filter(|c| c["entity_type"] == "inspection").count(), 5);
    assert_eq!(feed.iter().filter(|c| c["entity_type"] == "rectification").count(), 4);
}

async fn field_inspectors_see_only_their_own(app: TestApp) {
    let t = team(&app).await;
    let mine = record(&app, &t.me_token, &inspection_body(&t, two_findings())).await;
    let id = mine["id"].as_str().unwrap();
    let rect = mine["findings"][0]["rectification_id"].as_str().unwrap();
    let theirs = record(
        &app,
        &t.stranger_token,
        &json!({"kind": "river", "target_water_user_id": t.target,
        "inspected_at": at_days_ago(3), "findings": []}),
    )
    .await;

    // Someone else's inspection is absent for a field inspector: 404 on every endpoint, missing from lists.
    let s = &t.stranger_token;
    for path in [
        format!("/api/v1/inspections/{id}"),
        format!("/api/v1/inspections/{id}/history"),
        format!("/api/v1/rectifications/{rect}"),
        format!("/api/v1/rectifications/{rect}/history"),
    ] {
        app.get(&path).bearer(s).send().await.assert_problem(404, "not_found");
    }
    app.patch(&format!("/api/v1/inspections/{id}"))
        .bearer(s)
        .header("if-match", "\"9\"")
        .json(&json!({"notes": "x"}))
        .send()
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/rectifications/{rect}/complete"))
        .bearer(s)
        .header("if-match", "\"9\"")
        .json(&json!({"note": "x"}))
        .send()
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/inspections/{id}/findings"))
        .bearer(s)
        .json(&json!({"type": "other", "description": "x", "rectification_due": days_ago(0)}))
        .send()
        .await
        .assert_problem(404, "not_found");
    let listed = app.get("/api/v1/inspections?include_total=true").bearer(s).send().await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], theirs["id"]);
    let rects = app.get("/api/v1/rectifications?include_total=true").bearer(s).send().await;
    assert_eq!(rects.body["total"], 0);
    // 404 before any other check (a stale ETag would otherwise say it exists), and nothing written.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action LIKE 'inspection_%' AND action <> 'inspection_created'"), 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action LIKE 'rectification_%' AND action <> 'rectification_created'"), 0);
    assert_eq!(count(&app, "rectifications"), 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM rectifications WHERE status = 'rectified'"), 0);
    // Filters never widen what an inspector sees.
    for q in [
        format!("inspector_id={}", t.me),
        format!("target_water_user_id={}", t.target),
        "has_open_findings=true".into(),
    ] {
        let r = app.get(&format!("/api/v1/inspections?{q}&include_total=true")).bearer(s).send().await;
        let seen: Vec<&Value> = r.body["items"].as_array().unwrap().iter().map(|x| &x["id"]).collect();
        assert!(seen.iter().all(|x| **x == theirs["id"]), "{q}: {}", r.text);
    }

    // The co-inspector sees and updates it; staff of the inspecting sections and legal see all.
    let p = app.get(&format!("/api/v1/inspections/{id}")).bearer(&t.partner_token).send().await;
    assert_eq!(p.status, 200);
    assert_eq!(
        app.get("/api/v1/rectifications").bearer(&t.partner_token).send().await.body["items"].as_array().unwrap().len(),
        2
    );
    for token in [&t.enforcement, &t.legal, &app.token(&[Role::Leader]), &app.token(&[Role::Platform])] {
        let all = app.get("/api/v1/inspections?include_total=true").bearer(token).send().await;
        assert_eq!(all.body["total"], 2, "{}", all.text);
    }
    // An inspector who is also section staff sees all.
    let both = app.token_for("dual", &[Role::Inspector, Role::WaterSaving]);
    assert_eq!(app.get("/api/v1/inspections?include_total=true").bearer(&both).send().await.body["total"], 2);
    // Legal reads but does not write; finance has no business here.
    app.patch(&format!("/api/v1/inspections/{id}"))
        .bearer(&t.legal)
        .header("if-match", "\"1\"")
        .json(&json!({"notes": "x"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/inspections").bearer(&app.token(&[Role::Finance])).send().await.assert_problem(403, "forbidden");
    // A co-inspector taken off the list loses sight of it; the creator cannot be taken off.
    let r = app
        .patch(&format!("/api/v1/inspections/{id}"))
        .bearer(&t.me_token)
        .header("if-match", "\"1\"")
        .json(&json!({"inspector_ids": []}))
        .send()
        .await;
    assert_eq!((r.status, r.body["inspector_ids"].clone()), (200, json!([t.me])));
    app.get(&format!("/api/v1/inspections/{id}"))
        .bearer(&t.partner_token)
        .send()
        .await
        .assert_problem(404, "not_found");
}

async fn bad_inspections_are_refused_and_change_nothing(app: TestApp) {
    let t = team(&app).await;
    let post = |body: Value| {
        let app = &app;
        let token = t.me_token.clone();
        async move { app.post("/api/v1/inspections").bearer(&token).json(&body).send().await }
    };
    let fields = |r: &Resp| {
        r.assert_problem(400, "validation_failed");
        r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // A finding due before the inspection; a location off the globe; an unknown co-inspector; in the future.
    let mut body =
        inspection_body(&t, json!([{"type": "other", "description": "x", "rectification_due": days_ago(11)}]));
    body["location"] = json!({"lat": 91.0, "lng": 105.0});
    let r = post(body).await;
    assert_eq!(fields(&r), vec!["location.lat".to_string(), "findings[0].rectification_due".to_string()], "{}", r.text);
    let mut stranger = inspection_body(&t, json!([]));
    stranger["inspector_ids"] = json!([t.partner, "no-such-account", t.partner]);
    assert_eq!(fields(&post(stranger).await), vec!["inspector_ids[2]".to_string()]);
    let mut stranger = inspection_body(&t, json!([]));
    stranger["inspector_ids"] = json!([t.partner, "no-such-account"]);
    assert_eq!(fields(&post(stranger).await), vec!["inspector_ids[1]".to_string()]);
    let mut future = inspection_body(&t, json!([]));
    future["inspected_at"] = json!((Utc::now() + Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string());
    assert_eq!(fields(&post(future).await), vec!["inspected_at".to_string()]);
    // The bureau's day: 16:30 UTC is the next day in Shanghai, so a finding due "that" UTC day is before it.
    let mut midnight =
        inspection_body(&t, json!([{"type": "other", "description": "x", "rectification_due": days_ago(12)}]));
    midnight["inspected_at"] = json!(format!("{}T16:30:00Z", days_ago(12)));
    assert_eq!(fields(&post(midnight.clone()).await), vec!["findings[0].rectification_due".to_string()]);
    midnight["inspected_at"] = json!(format!("{}T15:30:00Z", days_ago(12)));
    assert_eq!(post(midnight).await.status, 201);
    // Unknown target, a permit that does not exist, an unknown kind, an unknown field.
    let mut unknown = inspection_body(&t, json!([]));
    unknown["target_water_user_id"] = json!("nobody");
    assert_eq!(fields(&post(unknown).await), vec!["target_water_user_id".to_string()]);
    let mut no_permit = inspection_body(&t, json!([]));
    no_permit["permit_id"] = json!("no-such-permit");
    assert_eq!(fields(&post(no_permit).await), vec!["permit_id".to_string()]);
    let mut kind = inspection_body(&t, json!([]));
    kind["kind"] = json!("fishing");
    post(kind).await.assert_problem(400, "validation_failed");
    let mut extra = inspection_body(&t, json!([]));
    extra["colour"] = json!("red");
    post(extra).await.assert_problem(400, "validation_failed");
    // Only the one good inspection above was written.
    assert_eq!(count(&app, "inspections"), 1);
    assert_eq!(count(&app, "rectifications"), 1);
    assert_eq!(count(&app, "inspection_inspectors"), 2);
    // Roles: the platform and finance do not record inspections.
    for role in [Role::Platform, Role::Finance, Role::Legal, Role::Admin] {
        app.post("/api/v1/inspections")
            .bearer(&app.token(&[role]))
            .json(&inspection_body(&t, json!([])))
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
}

async fn escalation_opens_one_case_with_the_findings(app: TestApp) {
    let t = team(&app).await;
    let body = inspection_body(
        &t,
        json!([
            {"type": "meter_not_working", "description": "计量设施损坏。", "rectification_due": days_ago(5)},
            {"type": "unlicensed_abstraction", "description": "未办理取水许可擅自取水", "rectification_due": days_ago(-5)},
        ]),
    );
    let i = record(&app, &t.me_token, &body).await;
    let id = i["id"].as_str().unwrap();
    let path = format!("/api/v1/inspections/{id}/escalate");
    // Only enforcement escalates; If-Match is required; not dated before the inspection.
    app.post(&path).bearer(&t.me_token).header("if-match", "\"1\"").send().await.assert_problem(403, "forbidden");
    app.post(&path).bearer(&t.enforcement).send().await.assert_problem(428, "precondition_required");
    app.post(&path)
        .bearer(&t.enforcement)
        .header("if-match", "\"1\"")
        .json(&json!({"effective_date": days_ago(11)}))
        .send()
        .await
        .assert_problem(409, "effective_date_out_of_order");
    let case = app
        .post(&path)
        .bearer(&t.enforcement)
        .header("if-match", "\"1\"")
        .json(&json!({"reason": "擅自取水，移送立案", "effective_date": days_ago(8)}))
        .send()
        .await;
    assert_eq!(case.status, 201, "{}", case.text);
    let c = &case.body;
    let case_id = c["id"].as_str().unwrap();
    assert_eq!(case.header("location").unwrap(), format!("/api/v1/cases/{case_id}"));
    assert_eq!(c["stage"], "clue");
    assert_eq!(c["case_no"], Value::Null);
    assert_eq!(c["water_user_id"], t.target.as_str());
    assert_eq!(c["party_name"], "赤水市化工有限公司");
    assert_eq!(c["party_id_number"], credit_code(701));
    assert_eq!(c["party_kind"], "organisation");
    assert_eq!(c["violation_type"], "unlicensed_abstraction");
    assert_eq!(c["facts"], "巡查发现：1. 计量设施损坏；2. 未办理取水许可擅自取水。");
    assert_eq!(c["source_inspection_id"], id);
    assert_eq!(c["clue_on"], days_ago(8));
    assert_eq!(c["findings"].as_array().unwrap().len(), 2);
    assert_eq!(c["findings"][1]["type"], "unlicensed_abstraction");
    // The inspection shows its case; a second escalation is refused.
    let now = app.get(&format!("/api/v1/inspections/{id}")).bearer(&t.enforcement).send().await;
    assert_eq!(now.body["case_id"], case_id);
    assert_eq!(now.etag(), "\"2\"");
    app.post(&path)
        .bearer(&t.enforcement)
        .header("if-match", "\"2\"")
        .send()
        .await
        .assert_problem(409, "already_escalated");
    app.post(&path)
        .bearer(&t.enforcement)
        .header("if-match", "\"1\"")
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    assert_eq!(count(&app, "cases"), 1);
    // The case reads for enforcement and legal, not for field inspectors; lists filter by source.
    let got = app.get(&format!("/api/v1/cases/{case_id}")).bearer(&t.legal).send().await;
    assert_eq!((got.status, got.body.clone()), (200, c.clone()));
    app.get(&format!("/api/v1/cases/{case_id}")).bearer(&t.me_token).send().await.assert_problem(403, "forbidden");
    let listed =
        app.get(&format!("/api/v1/cases?source_inspection_id={id}&stage=clue")).bearer(&t.enforcement).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let none = app.get("/api/v1/cases?stage=filed").bearer(&t.enforcement).send().await;
    assert_eq!(none.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'case_opened'"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'inspection_escalated'"), 1);
    let feed = whole_feed(&app, "case").await;
    assert_eq!(feed.len(), 1);
    // The inspection cannot move past what followed it: here the case's clue date (the deadlines would allow it).
    let move_to = |at: String, etag: &'static str| {
        app.patch(&format!("/api/v1/inspections/{id}"))
            .bearer(&t.enforcement)
            .header("if-match", etag)
            .json(&json!({"inspected_at": at}))
            .send()
    };
    let late = move_to(at_days_ago(6), "\"2\"").await;
    late.assert_problem(400, "validation_failed");
    assert_eq!(late.body["errors"][0]["field"], "inspected_at");
    let earlier = move_to(at_days_ago(9), "\"2\"").await;
    assert_eq!(
        (earlier.status, earlier.body["inspected_at"].clone()),
        (200, json!(at_days_ago(9))),
        "{}",
        earlier.text
    );
}

/// A mobile app on a poor connection retries with one Idempotency-Key; two clerks click at once with one ETag.
async fn retries_and_double_clicks_write_once(app: TestApp) {
    let t = team(&app).await;
    let body = inspection_body(&t, two_findings());
    let results = join_all((0..6).map(|_| {
        app.post("/api/v1/inspections").bearer(&t.me_token).header("idempotency-key", "insp-1").json(&body).send()
    }))
    .await;
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "idempotency_key_in_flight");
    }
    let again = app
        .post("/api/v1/inspections")
        .bearer(&t.me_token)
        .header("idempotency-key", "insp-1")
        .json(&body)
        .send()
        .await;
    assert_eq!((again.status, &again.body), (201, &created[0].body));
    assert_eq!(count(&app, "inspections"), 1);
    assert_eq!(count(&app, "rectifications"), 2);
    let id = created[0].body["id"].as_str().unwrap().to_string();
    let rect = created[0].body["findings"][1]["rectification_id"].as_str().unwrap().to_string();

    // Completions, escalations and findings added at once: one winner each, nothing doubled.
    let done = join_all((0..6).map(|_| {
        app.post(&format!("/api/v1/rectifications/{rect}/complete"))
            .bearer(&t.partner_token)
            .header("if-match", "\"1\"")
            .json(&json!({"note": "已补齐台账"}))
            .send()
    }))
    .await;
    assert_eq!(
        done.iter().filter(|r| r.status == 200).count(),
        1,
        "{:?}",
        done.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in done.iter().filter(|r| r.status != 200) {
        r.assert_problem(412, "precondition_failed");
    }
    let etag = app.get(&format!("/api/v1/inspections/{id}")).bearer(&t.enforcement).send().await.etag();
    assert_eq!(etag, "\"2\"", "the completion was a step of the inspection");
    let escalations = join_all((0..6).map(|_| {
        app.post(&format!("/api/v1/inspections/{id}/escalate"))
            .bearer(&t.enforcement)
            .header("if-match", etag.as_str())
            .send()
    }))
    .await;
    assert_eq!(escalations.iter().filter(|r| r.status == 201).count(), 1);
    for r in escalations.iter().filter(|r| r.status != 201) {
        r.assert_problem(412, "precondition_failed");
    }
    assert_eq!(count(&app, "cases"), 1);
    let added = join_all((0..5).map(|n| {
        app.post(&format!("/api/v1/inspections/{id}/findings"))
            .bearer(&t.me_token)
            .json(&json!({"type": "other", "description": format!("补充问题 {n}"), "rectification_due": days_ago(-3)}))
            .send()
    }))
    .await;
    assert!(added.iter().all(|r| r.status == 201), "{:?}", added.iter().map(|r| &r.text).collect::<Vec<_>>());
    let mut positions: Vec<i64> = added.iter().map(|r| r.body["position"].as_i64().unwrap()).collect();
    positions.sort();
    assert_eq!(positions, vec![3, 4, 5, 6, 7]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'rectification_completed'"), 1);
}
