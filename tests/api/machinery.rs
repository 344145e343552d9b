use std::collections::HashSet;

use serde_json::json;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(etag_and_if_match, idempotency_keys, cursor_pages_are_stable_under_inserts);

async fn etag_and_if_match(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let created =
        app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("甲公司", REAL_CODES[0])).send().await;
    assert_eq!(created.status, 201);
    assert_eq!(created.etag(), "\"1\"");
    let id = created.body["id"].as_str().unwrap();
    let path = format!("/api/v1/water-users/{id}");
    let got = app.get(&path).bearer(&t).send().await;
    assert_eq!(got.etag(), "\"1\"");

    app.patch(&path)
        .bearer(&t)
        .json(&json!({"name": "乙公司"}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.patch(&path)
        .bearer(&t)
        .header("if-match", "\"7\"")
        .json(&json!({"name": "乙公司"}))
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    app.patch(&path)
        .bearer(&t)
        .header("if-match", "W/\"1\"")
        .json(&json!({"name": "乙公司"}))
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    assert_eq!(app.get(&path).bearer(&t).send().await.body["name"], "甲公司", "refused writes change nothing");

    let ok = app
        .patch(&path)
        .bearer(&t)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "乙公司", "address": null}))
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.etag(), "\"2\"");
    assert_eq!(ok.body["name"], "乙公司");
    assert_eq!(ok.body["address"], json!(null));
    assert_eq!(ok.body["industry"], "D4610", "absent fields are kept");
    // The old ETag is now stale.
    app.patch(&path)
        .bearer(&t)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "丙公司"}))
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    // DELETE checks If-Match when given.
    app.delete(&path).bearer(&t).header("if-match", "\"1\"").send().await.assert_problem(412, "precondition_failed");
    assert_eq!(app.delete(&path).bearer(&t).header("if-match", "\"2\"").send().await.status, 204);
}

async fn idempotency_keys(app: TestApp) {
    let alice = app.token_for("alice", &[Role::WaterResources]);
    let bob = app.token_for("bob", &[Role::WaterSaving]);
    let body = water_user_body("幂等公司", REAL_CODES[2]);
    let first =
        app.post("/api/v1/water-users").bearer(&alice).header("idempotency-key", "k-1").json(&body).send().await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again =
        app.post("/api/v1/water-users").bearer(&alice).header("idempotency-key", "k-1").json(&body).send().await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.etag(), first.etag());
    assert_eq!(again.header("idempotency-replayed").as_deref(), Some("true"));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'water_user_created'"), 1);

    // Same key, different body.
    let other = water_user_body("别的公司", REAL_CODES[3]);
    app.post("/api/v1/water-users")
        .bearer(&alice)
        .header("idempotency-key", "k-1")
        .json(&other)
        .send()
        .await
        .assert_problem(422, "idempotency_key_reused");
    // Keys are per caller: bob's k-1 is his own.
    let bobs = app.post("/api/v1/water-users").bearer(&bob).header("idempotency-key", "k-1").json(&other).send().await;
    assert_eq!(bobs.status, 201, "{}", bobs.text);
    // A refusal writes nothing and keeps nothing: the key is free again, and a retry runs for real (and is
    // refused the same way), as does a refusal that depends on the moment (a conflict).
    let mut bad = body.clone();
    bad["region_code"] = json!("52");
    for _ in 0..2 {
        let invalid =
            app.post("/api/v1/water-users").bearer(&alice).header("idempotency-key", "k-2").json(&bad).send().await;
        invalid.assert_problem(400, "validation_failed");
        assert_eq!(invalid.header("idempotency-replayed"), None);
    }
    let dup = app.post("/api/v1/water-users").bearer(&alice).header("idempotency-key", "k-3").json(&body).send().await;
    dup.assert_problem(409, "conflict");
    let dup2 = app.post("/api/v1/water-users").bearer(&alice).header("idempotency-key", "k-3").json(&body).send().await;
    dup2.assert_problem(409, "conflict");
    assert_eq!(dup2.header("idempotency-replayed"), None);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM idempotency_keys WHERE key IN ('k-2', 'k-3')"), 0);
    // The freed key then serves another request of the caller's.
    let fresh = water_user_body("后来公司", REAL_CODES[1]);
    let later =
        app.post("/api/v1/water-users").bearer(&alice).header("idempotency-key", "k-2").json(&fresh).send().await;
    assert_eq!(later.status, 201, "{}", later.text);

    // While the first request with a key is still running, the same key gets 409.
    let now = chrono::Utc::now().naive_utc();
    app.sql(&format!(
        "INSERT INTO idempotency_keys (scope, key, request_hash, state, created_at, expires_at) \
         VALUES ('alice', 'k-busy', 'h', 'in_flight', '{}', '{}')",
        now.format("%Y-%m-%d %H:%M:%S"),
        (now + chrono::TimeDelta::hours(24)).format("%Y-%m-%d %H:%M:%S")
    ));
    app.post("/api/v1/water-users")
        .bearer(&alice)
        .header("idempotency-key", "k-busy")
        .json(&water_user_body("忙", REAL_CODES[4]))
        .send()
        .await
        .assert_problem(409, "idempotency_key_in_flight");
    // Keys are stored in the database (shared by every instance), with their expiry.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM idempotency_keys WHERE state = 'done'"), 3);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), 3);
    let long = "x".repeat(256);
    app.post("/api/v1/water-users")
        .bearer(&alice)
        .header("idempotency-key", &long)
        .json(&body)
        .send()
        .await
        .assert_problem(400, "validation_failed");
}

async fn cursor_pages_are_stable_under_inserts(app: TestApp) {
    let t = app.token(&[Role::WaterSaving]);
    let mut original = HashSet::new();
    for i in 0..7u64 {
        let r = app
            .post("/api/v1/water-users")
            .bearer(&t)
            .json(&water_user_body(&format!("用户{i}"), &credit_code(i)))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        original.insert(r.body["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/water-users?limit=3&cursor={c}"),
            None => "/api/v1/water-users?limit=3".to_string(),
        };
        let page = app.get(&path).bearer(&t).send().await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        // Someone registers more users while we page.
        let r = app
            .post("/api/v1/water-users")
            .bearer(&t)
            .json(&water_user_body(&format!("新{pages}"), &credit_code(100 + pages)))
            .send()
            .await;
        assert_eq!(r.status, 201);
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 20);
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert!(original.is_subset(&unique), "no gaps among rows that existed");
    // Search and filters.
    let found = app.get(&format!("/api/v1/water-users?q={}", enc("用户3"))).bearer(&t).send().await;
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
    let code = credit_code(5);
    let by_code = app.get(&format!("/api/v1/water-users?q={}", &code[10..])).bearer(&t).send().await;
    assert_eq!(by_code.body["items"][0]["credit_code"], code.as_str());
    let exact = app.get(&format!("/api/v1/water-users?credit_code={}", code.to_lowercase())).bearer(&t).send().await;
    assert_eq!(exact.body["items"].as_array().unwrap().len(), 1);
    let region = app.get("/api/v1/water-users?region_code=110000").bearer(&t).send().await;
    assert_eq!(region.body["items"].as_array().unwrap().len(), 0);
    let pct = app.get("/api/v1/water-users?q=%25").bearer(&t).send().await;
    assert_eq!(pct.body["items"].as_array().unwrap().len(), 0, "LIKE wildcards are escaped");
}
