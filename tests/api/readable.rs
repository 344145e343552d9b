//! Records read by people: names beside ids, and counts beside pages.

use serde_json::json;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;
use crate::permits::{permit_body, permit_in, staff};

on_both_databases!(views_carry_names_beside_ids, every_list_counts_what_its_filters_match);

/// A permit shows its holder's name and credit code and its zone's name; a withdrawal its permit's number — in
/// the record, in lists, in the audit trail's images and after the holder is renamed.
async fn views_carry_names_beside_ids(app: TestApp) {
    let s = staff(&app).await;
    let admin = app.token(&[Role::Admin]);
    let zone = app
        .post("/api/v1/water-zones")
        .bearer(&admin)
        .json(&json!({"name": "赤水河地表水区", "source_type": "surface", "zone_class": "normal", "allowable_m3_per_year": 1_000_000}))
        .send()
        .await;
    let zid = zone.body["id"].as_str().unwrap();
    let created = app
        .post("/api/v1/permits")
        .bearer(&s.clerk)
        .json(&permit_body(&s.holder, Some(zid), "surface", 1000))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["holder_name"], "赤水市化工有限公司");
    assert_eq!(created.body["holder_credit_code"], REAL_CODES[0]);
    assert_eq!(created.body["zone_name"], "赤水河地表水区");
    let pid = created.body["id"].as_str().unwrap();
    let listed = app.get(&format!("/api/v1/permits?holder_id={}", s.holder)).bearer(&s.clerk).send().await;
    assert_eq!(listed.body["items"][0]["holder_name"], "赤水市化工有限公司");
    assert_eq!(listed.body["items"][0]["zone_name"], "赤水河地表水区");
    // Names are read when the record is read: a renamed holder shows under its new name.
    let etag = app.get(&format!("/api/v1/water-users/{}", s.holder)).bearer(&s.clerk).send().await.etag();
    app.patch(&format!("/api/v1/water-users/{}", s.holder))
        .bearer(&s.clerk)
        .header("if-match", &etag)
        .json(&json!({"name": "赤水市新化工有限公司"}))
        .send()
        .await;
    let got = app.get(&format!("/api/v1/permits/{pid}")).bearer(&s.clerk).send().await;
    assert_eq!(got.body["holder_name"], "赤水市新化工有限公司");

    let approved = permit_in(&app, &s, "approved").await;
    let month = shuiwu::domain::dates::Month::of(today() - chrono::Duration::days(40)).to_string();
    let w = app
        .post(&format!("/api/v1/permits/{}/withdrawals", approved["id"].as_str().unwrap()))
        .bearer(&s.clerk)
        .json(&json!({"period": month, "volume_m3": 10, "method": "manual_reading"}))
        .send()
        .await;
    assert_eq!(w.status, 201, "{}", w.text);
    assert_eq!(w.body["permit_no"], approved["permit_no"]);
    let one = app.get(&format!("/api/v1/withdrawals/{}", w.body["id"].as_str().unwrap())).bearer(&s.clerk).send().await;
    assert_eq!(one.body["permit_no"], approved["permit_no"]);
    let all = app.get("/api/v1/withdrawals").bearer(&s.clerk).send().await;
    assert_eq!(all.body["items"][0]["permit_no"], approved["permit_no"]);
    let trail =
        app.get("/api/v1/audit-events?action=withdrawal_recorded").bearer(&app.token(&[Role::Auditor])).send().await;
    assert_eq!(trail.body["items"][0]["after"]["permit_no"], approved["permit_no"]);
}

/// `include_total=true` answers `total`, the count of everything the filters match (not just the page); without
/// it there is no `total`.
async fn every_list_counts_what_its_filters_match(app: TestApp) {
    let s = staff(&app).await;
    let admin = app.admin_token().await;
    for i in 0..4u64 {
        let r = app
            .post("/api/v1/water-users")
            .bearer(&s.clerk)
            .json(&water_user_body(&format!("计数{i}"), &credit_code(i)))
            .send()
            .await;
        assert_eq!(r.status, 201);
    }
    for _ in 0..3 {
        app.post("/api/v1/permits").bearer(&s.clerk).json(&permit_body(&s.holder, None, "surface", 100)).send().await;
    }
    permit_in(&app, &s, "approved").await;
    let auditor = app.token(&[Role::Auditor]);
    let cases: Vec<(&str, i64)> = vec![
        ("/api/v1/water-users?limit=2&include_total=true", 5),
        ("/api/v1/water-users?q=%E8%AE%A1%E6%95%B0&limit=1&include_total=true", 4),
        ("/api/v1/permits?status=draft&limit=1&include_total=true", 3),
        ("/api/v1/permits?limit=1&include_total=true", 4),
        ("/api/v1/water-zones?include_total=true", 0),
        ("/api/v1/withdrawals?include_total=true", 0),
        ("/api/v1/accounts?include_total=true", 1),
        ("/api/v1/departments?include_total=true", 1),
        ("/api/v1/service-accounts?include_total=true", 0),
        ("/api/v1/audit-events?action=water_user_created&limit=1&include_total=true", 5),
        ("/api/v1/changes?entity_types=water_user&limit=1&include_total=true", 5),
    ];
    for (path, total) in cases {
        let r = app.get(path).bearer(&auditor).send().await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["total"], total, "{path}");
    }
    let plain = app.get("/api/v1/water-users?limit=2").bearer(&admin).send().await;
    assert!(plain.body.get("total").is_none());
    let p = app.get("/api/v1/permits?status=draft&limit=1").bearer(&auditor).send().await;
    let id = p.body["items"][0]["id"].as_str().unwrap();
    let h = app.get(&format!("/api/v1/permits/{id}/history?include_total=true")).bearer(&auditor).send().await;
    assert_eq!(h.body["total"], 1);
    app.get("/api/v1/water-users?include_total=maybe")
        .bearer(&auditor)
        .send()
        .await
        .assert_problem(400, "validation_failed");
}
