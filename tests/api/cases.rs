//! Penalty cases end to end: every stage with its rules and its own refusal codes, the decision document and the
//! public record, fine payments with their late fee, evidence and the whole process in the history, overdue lists,
//! and case numbers under concurrency.

use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::evidence::{form, PNG};
use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    a_case_through_every_stage,
    major_decisions_hearings_and_deadlines,
    overdue_lists_and_filters,
    case_numbers_under_concurrency,
    rights_reviews_officers_and_closing,
);

pub struct Office {
    pub enforcement: String,
    pub legal: String,
    pub leader: String,
    pub officers: Vec<String>,
    pub party: String,
}

pub async fn office(app: &TestApp) -> Office {
    let admin = app.admin_token().await;
    let mut officers = Vec::new();
    for name in ["zhifa01", "zhifa02"] {
        let r = app
            .post("/api/v1/accounts")
            .bearer(&admin)
            .json(&json!({"username": name, "display_name": format!("执法员{name}"), "department": "office",
                          "roles": ["enforcement"], "password": "a long passphrase"}))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        officers.push(r.body["id"].as_str().unwrap().to_string());
    }
    let enforcement = app.token_for(&officers[0], &[Role::Enforcement]);
    let r = app
        .post("/api/v1/water-users")
        .bearer(&enforcement)
        .json(&water_user_body("赤水市化工有限公司", &credit_code(801)))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Office {
        enforcement,
        legal: app.token_for("fagui01", &[Role::Legal]),
        leader: app.token_for("juzhang", &[Role::Leader]),
        officers,
        party: r.body["id"].as_str().unwrap().to_string(),
    }
}

pub async fn open(app: &TestApp, o: &Office, body: Value) -> Value {
    let r = app.post("/api/v1/cases").bearer(&o.enforcement).json(&body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

/// Runs an action and returns the response.
async fn act(app: &TestApp, token: &str, case: &Value, action: &str, body: Value) -> Resp {
    let id = case["id"].as_str().unwrap();
    let version = case["version"].as_i64().unwrap();
    app.post(&format!("/api/v1/cases/{id}/{action}"))
        .bearer(token)
        .header("if-match", &format!("\"{version}\""))
        .json(&body)
        .send()
        .await
}

/// Runs an action that must succeed; returns the case after it.
pub async fn step(app: &TestApp, token: &str, case: &Value, action: &str, body: Value) -> Value {
    let r = act(app, token, case, action, body).await;
    assert_eq!(r.status, 200, "{action}: {}", r.text);
    assert_eq!(r.etag(), format!("\"{}\"", r.body["version"]));
    r.body
}

/// An action refused with `code`, changing nothing.
async fn refused(app: &TestApp, token: &str, case: &Value, action: &str, body: Value, status: u16, code: &str) {
    act(app, token, case, action, body).await.assert_problem(status, code);
    let id = case["id"].as_str().unwrap();
    let now = app.get(&format!("/api/v1/cases/{id}")).bearer(token).send().await;
    assert_eq!(now.body["version"], case["version"], "{action} changed the case");
    assert_eq!(now.body["stage"], case["stage"]);
}

async fn a_case_through_every_stage(app: TestApp) {
    let o = office(&app).await;
    let case = open(
        &app,
        &o,
        json!({"water_user_id": o.party, "violation_type": "unlicensed_abstraction",
               "facts": "未办理取水许可擅自从赤水河取水。\n日取水量约300立方米。", "effective_date": "2021-12-01"}),
    )
    .await;
    assert_eq!((case["stage"].as_str(), case["party_name"].as_str()), (Some("clue"), Some("赤水市化工有限公司")));
    assert_eq!(case["case_no"], Value::Null);
    // Out of order: every action but `file` is refused from a clue, and nothing changes.
    for action in ["start-investigation", "notify", "decide", "serve", "record-payment", "close", "publish"] {
        let body = match action {
            "notify" => json!({"proposed_fine_fen": 100}),
            "decide" => json!({"outcome": "no_penalty"}),
            "record-payment" => json!({"amount_fen": 1, "paid_on": "2021-12-02", "receipt_no": "X"}),
            "publish" => json!({"url": "https://example.gov.cn/1"}),
            _ => json!({}),
        };
        let token = match action {
            "decide" => &o.leader,
            "publish" => &o.legal,
            _ => &o.enforcement,
        };
        refused(&app, token, &case, action, body, 409, "invalid_transition").await;
    }
    // Roles: legal and leaders do not file; If-Match is required.
    refused(&app, &o.legal, &case, "file", json!({}), 403, "forbidden").await;
    let id = case["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/cases/{id}/file"))
        .bearer(&o.enforcement)
        .send()
        .await
        .assert_problem(428, "precondition_required");

    let case = step(
        &app,
        &o.enforcement,
        &case,
        "file",
        json!({"effective_date": "2021-12-10", "officer_ids": [o.officers[0]]}),
    )
    .await;
    assert_eq!(case["case_no"], "清水罚〔2021〕1号");
    assert_eq!((case["filed_on"].as_str(), case["decision_due"].as_str()), (Some("2021-12-10"), Some("2022-03-10")));
    // One officer cannot investigate; two can.
    refused(
        &app,
        &o.enforcement,
        &case,
        "start-investigation",
        json!({"effective_date": "2021-12-11"}),
        409,
        "officers_required",
    )
    .await;
    refused(
        &app,
        &o.enforcement,
        &case,
        "start-investigation",
        json!({"officer_ids": [o.officers[0], "nobody"]}),
        400,
        "validation_failed",
    )
    .await;
    let case = step(
        &app,
        &o.enforcement,
        &case,
        "start-investigation",
        json!({"effective_date": "2021-12-11", "officer_ids": [o.officers[0], o.officers[1]]}),
    )
    .await;
    assert_eq!(case["officer_ids"], json!([o.officers[0], o.officers[1]]));

    // Evidence, kept with the case and a step of it.
    let (body, ct) = form("file", "现场照片.png", "image/png", PNG);
    let r = app.post(&format!("/api/v1/cases/{id}/evidence")).bearer(&o.enforcement).raw(body, &ct).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["case_id"], id.as_str());
    let eid = r.body["id"].as_str().unwrap().to_string();
    let got = app.get(&format!("/api/v1/cases/{id}/evidence/{eid}")).bearer(&o.legal).send().await;
    assert_eq!((got.status, got.header("content-type").as_deref()), (200, Some("image/png")));
    let case = app.get(&format!("/api/v1/cases/{id}")).bearer(&o.enforcement).send().await.body;
    assert_eq!(case["evidence_count"], 1);

    // Notice of a 50 000 yuan fine on 2022-01-20: the statement period runs to 01-25.
    let case = step(
        &app,
        &o.enforcement,
        &case,
        "notify",
        json!({"proposed_fine_fen": 5_000_000, "effective_date": "2022-01-20"}),
    )
    .await;
    assert_eq!(case["statement_deadline"], "2022-01-25");
    // Below the organisation's hearing threshold (80 000 yuan): no hearing.
    refused(
        &app,
        &o.enforcement,
        &case,
        "request-hearing",
        json!({"effective_date": "2022-01-21"}),
        409,
        "hearing_not_available",
    )
    .await;
    let penalty = |date: &str, fine: i64| {
        json!({"outcome": "penalty", "fine_fen": fine, "penalty_content": "罚款人民币伍万元整",
               "legal_basis": "《中华人民共和国水法》第六十九条第一项", "effective_date": date})
    };
    refused(&app, &o.leader, &case, "decide", penalty("2022-01-25", 5_000_000), 409, "statement_window_open").await;
    refused(&app, &o.enforcement, &case, "decide", penalty("2022-01-28", 5_000_000), 403, "forbidden").await;
    refused(&app, &o.leader, &case, "decide", penalty("2022-01-28", 6_000_000), 409, "fine_exceeds_proposed").await;
    // Decided on Friday 2022-01-28: 29 and 30 January were worked, Spring Festival 31 Jan – 6 Feb, so the 7th
    // working day is 11 February.
    let case = step(&app, &o.leader, &case, "decide", penalty("2022-01-28", 5_000_000)).await;
    assert_eq!(case["stage"], "decided");
    assert_eq!(case["decision_no"], "清水罚决〔2022〕1号");
    assert_eq!((case["publication_due"].as_str(), case["decided_by"].as_str()), (Some("2022-02-11"), Some("juzhang")));
    assert_eq!(case["publication_overdue"], true); // as of today, years later
    assert_eq!(case["penalty_types"], json!(["fine"]));

    // The public record and the printed decision.
    let publication = app.get(&format!("/api/v1/cases/{id}/publication")).bearer(&o.legal).send().await;
    assert_eq!(publication.status, 200, "{}", publication.text);
    let p = &publication.body;
    assert_eq!(
        (p["party_credit_code"].as_str(), p["decision_no"].as_str()),
        (Some(credit_code(801).as_str()), Some("清水罚决〔2022〕1号"))
    );
    assert_eq!((p["fine_amount_wan_yuan"].as_str(), p["penalty_type"].as_str()), (Some("5.000000"), Some("罚款")));
    assert_eq!((p["authority"].as_str(), p["publication_due"].as_str()), (Some("县水务局"), Some("2022-02-11")));
    let doc = app.get(&format!("/api/v1/cases/{id}/decision")).bearer(&o.enforcement).send().await;
    assert_eq!(doc.status, 200);
    for expected in [
        "行政处罚决定书",
        "清水罚决〔2022〕1号",
        "赤水市化工有限公司",
        "伍万元整",
        "50,000.00",
        "现场照片.png",
        "日取水量约300立方米",
        "2022年1月28日",
        "六十日内",
    ] {
        assert!(doc.text.contains(expected), "decision lacks {expected}");
    }
    let cover = app.get(&format!("/api/v1/cases/{id}/cover")).bearer(&o.enforcement).send().await;
    assert!(
        cover.text.contains("清水罚〔2021〕1号") && cover.text.contains("执法员zhifa01、执法员zhifa02"),
        "{}",
        cover.text
    );

    // Served on 2022-02-07: payable by 02-22; paid on 02-24, two days late: 2 × 3 % × 50 000 = 3 000 yuan first.
    let case = step(&app, &o.enforcement, &case, "serve", json!({"effective_date": "2022-02-07"})).await;
    assert_eq!(case["payment_due"], "2022-02-22");
    let pay =
        |amount: i64, receipt: &str| json!({"amount_fen": amount, "paid_on": "2022-02-24", "receipt_no": receipt});
    refused(&app, &o.enforcement, &case, "record-payment", pay(5_300_001, "FS-1"), 409, "overpayment").await;
    let case = step(&app, &o.enforcement, &case, "record-payment", pay(5_000_000, "FS-1")).await;
    assert_eq!(case["stage"], "executing");
    assert_eq!((case["late_fee_paid_fen"].as_i64(), case["fine_paid_fen"].as_i64()), (Some(300_000), Some(4_700_000)));
    assert_eq!(case["fine_outstanding_fen"], 300_000);
    refused(&app, &o.enforcement, &case, "close", json!({"effective_date": "2022-02-24"}), 409, "fine_outstanding")
        .await;
    refused(&app, &o.enforcement, &case, "record-payment", pay(300_000, "FS-1"), 409, "receipt_no_taken").await;
    // The rest the same day: no more late fee accrues on it (payments count from the next day).
    let case = step(&app, &o.enforcement, &case, "record-payment", pay(300_000, "FS-2")).await;
    assert_eq!((case["fine_outstanding_fen"].as_i64(), case["late_fee_due_fen"].as_i64()), (Some(0), Some(0)));
    let case = step(&app, &o.enforcement, &case, "close", json!({"effective_date": "2022-02-25"})).await;
    assert_eq!((case["stage"].as_str(), case["closed_on"].as_str()), (Some("closed"), Some("2022-02-25")));
    let (body, ct) = form("file", "迟到的照片.png", "image/png", PNG);
    app.post(&format!("/api/v1/cases/{id}/evidence"))
        .bearer(&o.enforcement)
        .raw(body, &ct)
        .send()
        .await
        .assert_problem(409, "invalid_transition");

    // Publication by legal, once, in any stage after the decision; not before the decision.
    refused(&app, &o.enforcement, &case, "publish", json!({"url": "https://example.gov.cn/x/1"}), 403, "forbidden")
        .await;
    refused(&app, &o.legal, &case, "publish", json!({"url": "ftp://example.gov.cn/x/1"}), 400, "validation_failed")
        .await;
    refused(
        &app,
        &o.legal,
        &case,
        "publish",
        json!({"url": "https://example.gov.cn/x/1", "effective_date": "2022-01-27"}),
        409,
        "effective_date_out_of_order",
    )
    .await;
    let case = step(
        &app,
        &o.legal,
        &case,
        "publish",
        json!({"url": "https://example.gov.cn/x/1", "effective_date": "2022-02-10"}),
    )
    .await;
    assert_eq!((case["stage"].as_str(), case["published_on"].as_str()), (Some("closed"), Some("2022-02-10")));
    assert_eq!(case["publication_overdue"], false);
    refused(&app, &o.legal, &case, "publish", json!({"url": "https://example.gov.cn/x/2"}), 409, "already_published")
        .await;

    // The whole process, in order (执法全过程记录).
    let h = app.get(&format!("/api/v1/cases/{id}/history?limit=500")).bearer(&o.legal).send().await;
    let actions: Vec<&str> =
        h.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "opened",
            "file",
            "start_investigation",
            "evidence_added",
            "notify",
            "decide",
            "serve",
            "record_payment",
            "record_payment",
            "close",
            "publish"
        ]
    );
    let dates: Vec<&str> =
        h.body["items"].as_array().unwrap().iter().filter_map(|e| e["effective_date"].as_str()).collect();
    assert_eq!(&dates[..2], ["2021-12-10", "2021-12-11"]);
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM case_payments WHERE case_id = '{id}'")), 2);
    // In the change feed: the case, its evidence and the public record.
    let feed = whole_feed(&app, "case,publication,evidence").await;
    let kinds: std::collections::HashSet<&str> = feed.iter().map(|c| c["entity_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["case", "publication", "evidence"].into_iter().collect());
    let published = feed.iter().find(|c| c["entity_type"] == "publication").unwrap();
    assert_eq!(published["data"]["url"], "https://example.gov.cn/x/1");
}

async fn major_decisions_hearings_and_deadlines(app: TestApp) {
    let o = office(&app).await;
    // A person: the identity number is checked, and never published.
    let bad = app
        .post("/api/v1/cases")
        .bearer(&o.enforcement)
        .json(&json!({"party_name": "李某", "party_id_number": "110105194912310021", "party_kind": "person",
                      "violation_type": "illegal_sand_mining", "facts": "河道内擅自采砂。"}))
        .send()
        .await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM cases"), 0);
    let case = open(
        &app,
        &o,
        json!({"party_name": "李某", "party_id_number": "11010519491231002x", "party_kind": "person",
               "violation_type": "illegal_sand_mining", "facts": "河道内擅自采砂。", "effective_date": "2022-01-03"}),
    )
    .await;
    let officers = json!({"effective_date": "2022-01-04", "officer_ids": [o.officers[0], o.officers[1]]});
    let case = step(&app, &o.enforcement, &case, "file", officers.clone()).await;
    assert_eq!(case["decision_due"], "2022-04-04");
    let case = step(&app, &o.enforcement, &case, "start-investigation", json!({"effective_date": "2022-01-05"})).await;
    // 20 000 yuan proposed to a person: a hearing may be requested within 5 days, and the decision is major.
    let case = step(
        &app,
        &o.enforcement,
        &case,
        "notify",
        json!({"proposed_fine_fen": 2_000_000, "effective_date": "2022-03-25"}),
    )
    .await;
    refused(
        &app,
        &o.enforcement,
        &case,
        "request-hearing",
        json!({"effective_date": "2022-03-31"}),
        409,
        "hearing_request_late",
    )
    .await;
    let case = step(&app, &o.enforcement, &case, "request-hearing", json!({"effective_date": "2022-03-30"})).await;
    assert_eq!(case["stage"], "hearing");
    let decision = |date: &str, extension: Option<&str>| {
        json!({"outcome": "penalty", "fine_fen": 2_000_000, "penalty_content": "罚款人民币贰万元整",
               "effective_date": date, "extension_reason": extension})
    };
    refused(&app, &o.leader, &case, "decide", decision("2022-04-01", None), 409, "legal_review_required").await;
    let case = step(&app, &o.enforcement, &case, "submit-legal-review", json!({"effective_date": "2022-04-01"})).await;
    assert_eq!(case["legal_review"]["status"], "pending");
    refused(&app, &o.enforcement, &case, "approve-legal-review", json!({}), 403, "forbidden").await;
    refused(
        &app,
        &o.legal,
        &case,
        "return-legal-review",
        json!({"effective_date": "2022-04-02"}),
        400,
        "validation_failed",
    )
    .await;
    let case = step(
        &app,
        &o.legal,
        &case,
        "return-legal-review",
        json!({"opinion": "证据不足，补充调查。", "effective_date": "2022-04-02"}),
    )
    .await;
    assert_eq!(
        (case["stage"].as_str(), case["legal_review"]["status"].as_str()),
        (Some("investigating"), Some("returned"))
    );
    // Notified again, the party waiving the statement period; reviewed and approved.
    let case = step(
        &app,
        &o.enforcement,
        &case,
        "notify",
        json!({"proposed_fine_fen": 2_000_000, "statement_waived": true, "effective_date": "2022-04-06"}),
    )
    .await;
    assert_eq!(case["legal_review"], Value::Null);
    let case = step(&app, &o.enforcement, &case, "submit-legal-review", json!({"effective_date": "2022-04-06"})).await;
    let case = step(
        &app,
        &o.legal,
        &case,
        "approve-legal-review",
        json!({"opinion": "同意。", "effective_date": "2022-04-06"}),
    )
    .await;
    assert_eq!(
        (case["stage"].as_str(), case["legal_review"]["status"].as_str()),
        (Some("legal_review"), Some("approved"))
    );
    refused(&app, &o.legal, &case, "approve-legal-review", json!({}), 409, "invalid_transition").await;
    // Past 2022-04-04 without a reason: refused; with one, decided (Thursday 04-07 + 7 working days = 04-18).
    refused(&app, &o.leader, &case, "decide", decision("2022-04-07", None), 409, "decision_overdue").await;
    // Without a calendar for the year, no publication deadline can be computed: an explicit error.
    app.sql("UPDATE calendar_years SET year = 1999, id = '1999' WHERE year = 2022");
    refused(
        &app,
        &o.leader,
        &case,
        "decide",
        decision("2022-04-07", Some("案情复杂，经负责人批准延期")),
        409,
        "calendar_missing",
    )
    .await;
    app.sql("UPDATE calendar_years SET year = 2022, id = '2022' WHERE year = 1999");
    let case = step(&app, &o.leader, &case, "decide", decision("2022-04-07", Some("案情复杂，经负责人批准延期"))).await;
    assert_eq!(
        (case["publication_due"].as_str(), case["extension_reason"].as_str()),
        (Some("2022-04-18"), Some("案情复杂，经负责人批准延期"))
    );
    let p =
        app.get(&format!("/api/v1/cases/{}/publication", case["id"].as_str().unwrap())).bearer(&o.legal).send().await;
    assert_eq!((p.body["party_name"].as_str(), &p.body["party_credit_code"]), (Some("李某"), &Value::Null));
    assert!(!p.text.contains("11010519491231002X"));

    // No penalty: numbered, closable at once; its decision document says so; nothing to publish.
    let other = open(&app, &o, json!({"water_user_id": o.party, "violation_type": "no_meter", "facts": "未安装计量设施。", "effective_date": "2022-05-05"})).await;
    let other = step(
        &app,
        &o.enforcement,
        &other,
        "file",
        json!({"effective_date": "2022-05-05", "officer_ids": [o.officers[0], o.officers[1]]}),
    )
    .await;
    let other =
        step(&app, &o.enforcement, &other, "start-investigation", json!({"effective_date": "2022-05-06"})).await;
    refused(
        &app,
        &o.leader,
        &other,
        "decide",
        json!({"outcome": "no_penalty", "fine_fen": 100}),
        400,
        "validation_failed",
    )
    .await;
    refused(
        &app,
        &o.leader,
        &other,
        "decide",
        json!({"outcome": "penalty", "fine_fen": 0, "penalty_content": "警告"}),
        409,
        "invalid_transition",
    )
    .await;
    let other =
        step(&app, &o.enforcement, &other, "notify", json!({"proposed_fine_fen": 0, "effective_date": "2022-05-10"}))
            .await;
    let other = step(&app, &o.leader, &other, "decide", json!({"outcome": "no_penalty", "legal_basis": "《中华人民共和国行政处罚法》第三十三条", "effective_date": "2022-05-16"})).await;
    assert_eq!(
        (other["stage"].as_str(), other["decision_no"].as_str()),
        (Some("no_penalty"), Some("清水罚决〔2022〕2号"))
    );
    let oid = other["id"].as_str().unwrap();
    app.get(&format!("/api/v1/cases/{oid}/publication"))
        .bearer(&o.legal)
        .send()
        .await
        .assert_problem(409, "no_decision");
    let doc = app.get(&format!("/api/v1/cases/{oid}/decision")).bearer(&o.legal).send().await;
    assert!(doc.text.contains("不予行政处罚决定书"), "{}", doc.text);
    let other = step(&app, &o.enforcement, &other, "close", json!({"effective_date": "2022-05-17"})).await;
    assert_eq!(other["stage"], "closed");
}

async fn overdue_lists_and_filters(app: TestApp) {
    let o = office(&app).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let case = open(&app, &o, json!({"water_user_id": o.party, "violation_type": "no_meter", "facts": format!("案件{n}"), "effective_date": "2022-01-03"})).await;
        let case = step(
            &app,
            &o.enforcement,
            &case,
            "file",
            json!({"effective_date": "2022-01-04", "officer_ids": [o.officers[n % 2], o.officers[(n + 1) % 2]]}),
        )
        .await;
        ids.push((case["id"].as_str().unwrap().to_string(), case));
    }
    // Case 0 stays undecided (decision overdue); cases 1 and 2 are decided, 2 is published.
    for (n, (_, case)) in ids.iter_mut().enumerate().skip(1) {
        let c = step(&app, &o.enforcement, case, "start-investigation", json!({"effective_date": "2022-01-05"})).await;
        let c = step(
            &app,
            &o.enforcement,
            &c,
            "notify",
            json!({"proposed_fine_fen": 500_000, "statement_waived": true, "effective_date": "2022-01-10"}),
        )
        .await;
        let c = step(&app, &o.leader, &c, "decide", json!({"outcome": "penalty", "fine_fen": 500_000, "penalty_content": "罚款人民币伍仟元整", "effective_date": format!("2022-01-1{n}")})).await;
        *case = if n == 2 {
            step(
                &app,
                &o.legal,
                &c,
                "publish",
                json!({"url": "https://example.gov.cn/2", "effective_date": "2022-01-20"}),
            )
            .await
        } else {
            c
        };
    }
    let list = |q: &str| {
        let app = &app;
        let token = o.legal.clone();
        let q = q.to_string();
        async move {
            let r = app.get(&format!("/api/v1/cases?{q}")).bearer(&token).send().await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("overdue=decision").await, [ids[0].0.clone()]);
    assert_eq!(list("overdue=publication").await, [ids[1].0.clone()]);
    assert_eq!(list("stage=decided").await, [ids[1].0.clone(), ids[2].0.clone()]);
    assert_eq!(list(&format!("officer_id={}", o.officers[0])).await.len(), 3);
    assert_eq!(list(&format!("q={}", enc("清水罚〔2022〕2号"))).await, [ids[1].0.clone()]);
    assert_eq!(list("decided_from=2022-01-12&decided_to=2022-01-12").await, [ids[2].0.clone()]);
    assert_eq!(list("filed_from=2022-01-05").await.len(), 0);
    let r = app.get("/api/v1/cases?filed_from=2022-02-01&filed_to=2022-01-01").bearer(&o.legal).send().await;
    r.assert_problem(400, "validation_failed");
    app.get("/api/v1/cases?overdue=soon").bearer(&o.legal).send().await.assert_problem(400, "validation_failed");
    let r = app.get(&format!("/api/v1/cases/{}", ids[0].0)).bearer(&o.legal).send().await;
    assert_eq!(
        (r.body["decision_overdue"].as_bool(), r.body["publication_overdue"].as_bool()),
        (Some(true), Some(false))
    );
    // Paged by the deadline: one at a time, both overdue publications in order, no repeat.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app.get(&format!("/api/v1/cases?overdue=decision&limit=1{cursor}")).bearer(&o.legal).send().await;
        seen.extend(r.body["items"].as_array().unwrap().iter().map(|c| c["id"].clone()));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1);
    // Inspectors and finance do not read cases.
    app.get("/api/v1/cases").bearer(&app.token(&[Role::Inspector])).send().await.assert_problem(403, "forbidden");
}

async fn case_numbers_under_concurrency(app: TestApp) {
    let o = office(&app).await;
    let mut cases = Vec::new();
    for n in 0..12 {
        cases.push(open(&app, &o, json!({"water_user_id": o.party, "violation_type": "other", "facts": format!("线索{n}"), "effective_date": "2023-03-01"})).await);
    }
    // Twelve filings at once, each also sent twice (a double-click): one number each, 1..=12, no gap.
    let fired = cases
        .iter()
        .flat_map(|c| [c, c])
        .map(|c| act(&app, &o.enforcement, c, "file", json!({"effective_date": "2023-03-02"})));
    let answers = join_all(fired).await;
    let ok: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 12, "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(answers.iter().all(|r| r.status == 200 || r.status == 412));
    let mut numbers: Vec<String> = ok.iter().map(|r| r.body["case_no"].as_str().unwrap().to_string()).collect();
    numbers.sort_by_key(|n| n.trim_start_matches("清水罚〔2023〕").trim_end_matches('号').parse::<u32>().unwrap());
    let expected: Vec<String> = (1..=12).map(|n| format!("清水罚〔2023〕{n}号")).collect();
    assert_eq!(numbers, expected);
    assert_eq!(app.count("SELECT COUNT(DISTINCT case_no) AS n FROM cases WHERE case_no IS NOT NULL"), 12);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'case_file'"), 12);
}

/// A case filed, investigated by the two officers and notified of `fine_fen` on 2023-06-01 (statement period to
/// 06-06), for the rules that come after the notice.
async fn notified(app: &TestApp, o: &Office, fine_fen: i64, waived: bool) -> Value {
    let case = open(app, o, json!({"water_user_id": o.party, "violation_type": "over_permit_abstraction", "facts": "超许可取水。", "effective_date": "2023-05-02"})).await;
    let case = step(
        app,
        &o.enforcement,
        &case,
        "file",
        json!({"effective_date": "2023-05-04", "officer_ids": [o.officers[0], o.officers[1]]}),
    )
    .await;
    let case = step(app, &o.enforcement, &case, "start-investigation", json!({"effective_date": "2023-05-05"})).await;
    step(
        app,
        &o.enforcement,
        &case,
        "notify",
        json!({"proposed_fine_fen": fine_fen, "statement_waived": waived, "effective_date": "2023-06-01"}),
    )
    .await
}

async fn rights_reviews_officers_and_closing(app: TestApp) {
    let o = office(&app).await;
    let admin = app.admin_token().await;
    // Officers are active accounts of law-enforcement staff (enforcement or inspector role).
    let mut ids = Vec::new();
    for (name, role) in [("xuncha01", "inspector"), ("caiwu01", "finance"), ("tuixiu01", "enforcement")] {
        let r = app
            .post("/api/v1/accounts")
            .bearer(&admin)
            .json(&json!({"username": name, "display_name": name, "department": "office", "roles": [role],
                          "password": "a long passphrase"}))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    app.sql(&format!("UPDATE accounts SET active = FALSE WHERE id = '{}'", ids[2]));
    let case = open(&app, &o, json!({"water_user_id": o.party, "violation_type": "no_meter", "facts": "未安装计量设施。", "effective_date": "2023-05-02"})).await;
    let r = act(&app, &o.enforcement, &case, "file", json!({"officer_ids": [o.officers[0], ids[1], ids[2]]})).await;
    r.assert_problem(400, "validation_failed");
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["officer_ids[1]", "officer_ids[2]"], "{}", r.text);
    let case = step(&app, &o.enforcement, &case, "file", json!({"officer_ids": [o.officers[0], ids[0]]})).await;
    assert_eq!(case["officer_ids"], json!([o.officers[0], ids[0]]));
    // An officer named at filing who has left since (deactivated) cannot investigate: checked again, by name.
    let account = app.get(&format!("/api/v1/accounts/{}", ids[0])).bearer(&admin).send().await;
    let r = app
        .patch(&format!("/api/v1/accounts/{}", ids[0]))
        .bearer(&admin)
        .header("if-match", &account.etag())
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = act(&app, &o.enforcement, &case, "start-investigation", json!({})).await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "officer_ids[1]", "{}", r.text);
    let case = step(
        &app,
        &o.enforcement,
        &case,
        "start-investigation",
        json!({"officer_ids": [o.officers[0], o.officers[1]]}),
    )
    .await;
    assert_eq!(case["officer_ids"], json!([o.officers[0], o.officers[1]]));

    // Legal review starts once the statement and hearing period is over: submitted early, it would take away a
    // hearing the party may still ask for.
    let major = notified(&app, &o, 9_000_000, false).await;
    let early = json!({"effective_date": "2023-06-06"});
    refused(&app, &o.enforcement, &major, "submit-legal-review", early, 409, "statement_window_open").await;
    let major = step(&app, &o.enforcement, &major, "request-hearing", json!({"effective_date": "2023-06-05"})).await;
    let major =
        step(&app, &o.enforcement, &major, "submit-legal-review", json!({"effective_date": "2023-06-12"})).await;
    // While the review is pending nobody decides, whatever the outcome.
    let none = json!({"outcome": "no_penalty", "effective_date": "2023-06-13"});
    refused(&app, &o.leader, &major, "decide", none, 409, "legal_review_required").await;
    let major = step(&app, &o.legal, &major, "approve-legal-review", json!({"effective_date": "2023-06-13"})).await;
    let major = step(&app, &o.leader, &major, "decide", json!({"outcome": "penalty", "fine_fen": 9_000_000, "penalty_content": "罚款人民币玖万元整", "effective_date": "2023-06-14"})).await;
    let doc =
        app.get(&format!("/api/v1/cases/{}/decision", major["id"].as_str().unwrap())).bearer(&o.legal).send().await;
    assert!(doc.text.contains("陈述、申辩、要求听证等权利") && doc.text.contains("当事人于2023年6月5日提出听证申请"));

    // A small fine that revokes the permit is major all the same.
    let revoking = notified(&app, &o, 100_000, true).await;
    let revoke = json!({"outcome": "penalty", "fine_fen": 100_000, "penalty_types": ["fine", "revocation"],
                        "penalty_content": "罚款人民币壹仟元整，吊销取水许可证", "effective_date": "2023-06-02"});
    refused(&app, &o.leader, &revoking, "decide", revoke.clone(), 409, "legal_review_required").await;
    let revoking =
        step(&app, &o.enforcement, &revoking, "submit-legal-review", json!({"effective_date": "2023-06-02"})).await;
    let revoking =
        step(&app, &o.legal, &revoking, "approve-legal-review", json!({"effective_date": "2023-06-02"})).await;
    let revoking = step(&app, &o.leader, &revoking, "decide", revoke).await;
    assert_eq!(revoking["penalty_types"], json!(["fine", "revocation"]));
    // Below the hearing threshold the document offers no hearing and reports none.
    let rid = revoking["id"].as_str().unwrap().to_string();
    let doc = app.get(&format!("/api/v1/cases/{rid}/decision")).bearer(&o.legal).send().await;
    assert!(doc.text.contains("陈述、申辩等权利") && !doc.text.contains("听证"), "{}", doc.text);

    // Closing with the fine unpaid takes a reason; a blank one is none.
    let served = step(&app, &o.enforcement, &revoking, "serve", json!({"effective_date": "2023-06-05"})).await;
    let blank = json!({"reason": "   ", "effective_date": "2023-06-06"});
    refused(&app, &o.enforcement, &served, "close", blank, 409, "fine_outstanding").await;
    let closed = step(
        &app,
        &o.enforcement,
        &served,
        "close",
        json!({"reason": "当事人注销，依法终结执行", "effective_date": "2023-06-06"}),
    )
    .await;
    assert_eq!((closed["stage"].as_str(), closed["fine_outstanding_fen"].as_i64()), (Some("closed"), Some(100_000)));
    let last = app.get(&format!("/api/v1/cases/{rid}/history?limit=50")).bearer(&o.legal).send().await;
    let last = last.body["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["reason"].as_str()), (Some("close"), Some("当事人注销，依法终结执行")));

    // The case file's documents and evidence are not for every role.
    for token in [app.token(&[Role::Inspector]), app.token(&[Role::Finance]), app.token(&[Role::WaterSaving])] {
        for path in ["cover", "decision", "publication", "evidence"] {
            let r = app.get(&format!("/api/v1/cases/{rid}/{path}")).bearer(&token).send().await;
            r.assert_problem(403, "forbidden");
        }
        let (body, ct) = form("file", "照片.png", "image/png", PNG);
        let r = app.post(&format!("/api/v1/cases/{rid}/evidence")).bearer(&token).raw(body, &ct).send().await;
        r.assert_problem(403, "forbidden");
    }
    let (body, ct) = form("file", "照片.png", "image/png", PNG);
    let r = app.post(&format!("/api/v1/cases/{rid}/evidence")).bearer(&o.legal).raw(body, &ct).send().await;
    r.assert_problem(403, "forbidden");
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM evidence WHERE case_id = '{rid}'")), 0);
}
