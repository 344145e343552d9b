//! Records read by people: names beside ids, and counts beside pages.

use serde_json::json;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;
use crate::permits::{permit_body, permit_in, staff};

on_both_databases!(
    views_carry_names_beside_ids,
    every_list_counts_what_its_filters_match,
    the_certificate_of_an_approved_permit
);

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

/// The printable permit: an approved permit in force gets an A4 page in Chinese with its holder, number, term,
/// volumes, source, purpose, intake and return points, every value HTML-escaped; other permits get 409.
async fn the_certificate_of_an_approved_permit(app: TestApp) {
    let s = staff(&app).await;
    // A holder whose name would be markup if it were not escaped.
    let odd = app
        .post("/api/v1/water-users")
        .bearer(&s.clerk)
        .json(&water_user_body("<b>甲</b>&乙公司", REAL_CODES[1]))
        .send()
        .await;
    let mut body = permit_body(odd.body["id"].as_str().unwrap(), None, "groundwater_deep", 3_650_000);
    body["intake_method"] = json!("机井");
    let draft = app.post("/api/v1/permits").bearer(&s.clerk).json(&body).send().await;
    let id = draft.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/permits/{id}/certificate");
    let refused = app.get(&path).bearer(&s.clerk).send().await;
    refused.assert_problem(409, "certificate_unavailable");
    assert!(refused.body["detail"].as_str().unwrap().contains("草稿"));
    crate::permits::act(&app, &s.clerk, &id, "submit", json!({})).await;
    let approved = crate::permits::act(&app, &s.leader, &id, "approve", crate::permits::approve_body()).await;
    assert_eq!(approved.status, 200);
    let page = app.get(&path).bearer(&s.clerk).send().await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    let html = &page.text;
    for expected in [
        "<h1>取水许可证</h1>",
        approved.body["permit_no"].as_str().unwrap(),
        REAL_CODES[1],
        "深层地下水",
        "工业",
        "3650000 立方米（365 万立方米）",
        "机井",
        "赤水河",
        "达标排放",
        "@page { size: A4",
    ] {
        assert!(html.contains(expected), "{expected} missing from the certificate");
    }
    // Escaped as askama does it (numeric character references), never as markup.
    assert!(html.contains("&#60;b&#62;甲&#60;/b&#62;&#38;乙公司"), "the holder's name, escaped: {html}");
    assert!(!html.contains("<b>甲</b>"), "names are escaped");
    let from = approved.body["valid_from"].as_str().unwrap();
    let (y, m, d) = (&from[..4], from[5..7].trim_start_matches('0'), from[8..].trim_start_matches('0'));
    assert!(html.contains(&format!("自 {y}年{m}月{d}日 起至")), "the term in Chinese");
    app.get(&path).bearer(&app.token(&[Role::Legal])).send().await.assert_problem(403, "forbidden");
}
