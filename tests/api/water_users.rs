use serde_json::json;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(credit_codes_are_checked, registry_lifecycle_and_references, change_feed_follows_writes);

async fn credit_codes_are_checked(app: TestApp) {
    let t = app.token(&[Role::Enforcement]);
    for (i, code) in REAL_CODES.iter().enumerate() {
        let r =
            app.post("/api/v1/water-users").bearer(&t).json(&water_user_body(&format!("企业{i}"), code)).send().await;
        assert_eq!(r.status, 201, "{code}: {}", r.text);
        assert_eq!(r.body["credit_code"], *code);
    }
    // Corrupted: wrong check character, transposition, forbidden letter, wrong length.
    for bad in [
        "91350100M000100Y44",
        "91350100M000010Y43",
        "91350100I000100Y43",
        "91350100M000100Y4",
        "91350100M000100Y433",
        "９1350100M000100Y43",
    ] {
        let r = app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("坏代码", bad)).send().await;
        r.assert_problem(400, "invalid_credit_code");
        assert_eq!(r.body["errors"][0]["field"], "credit_code", "{bad}");
    }
    // Lower case is normalised; the same code again is a conflict.
    let r = app
        .post("/api/v1/water-users")
        .bearer(&t)
        .json(&water_user_body("重复", &REAL_CODES[0].to_lowercase()))
        .send()
        .await;
    r.assert_problem(409, "conflict");
    // Several bad fields are reported together.
    let r = app
        .post("/api/v1/water-users")
        .bearer(&t)
        .json(&json!({"name": " ", "credit_code": "123", "region_code": "52038", "contact_phone": "call me"}))
        .send()
        .await;
    r.assert_problem(400, "invalid_credit_code");
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["name", "credit_code", "region_code", "contact_phone"]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), REAL_CODES.len() as i64);
    // PATCH checks too.
    let list = app.get("/api/v1/water-users").bearer(&t).send().await;
    let id = list.body["items"][0]["id"].as_str().unwrap();
    app.patch(&format!("/api/v1/water-users/{id}"))
        .bearer(&t)
        .header("if-match", "\"1\"")
        .json(&json!({"credit_code": "91350100M000100Y44"}))
        .send()
        .await
        .assert_problem(400, "invalid_credit_code");
    app.patch(&format!("/api/v1/water-users/{id}"))
        .bearer(&t)
        .header("if-match", "\"1\"")
        .json(&json!({"credit_code": REAL_CODES[1]}))
        .send()
        .await
        .assert_problem(409, "conflict");
}

async fn registry_lifecycle_and_references(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let r = app
        .post("/api/v1/water-users")
        .bearer(&t)
        .json(&water_user_body("赤水市自来水有限公司", REAL_CODES[0]))
        .send()
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some(format!("/api/v1/water-users/{}", r.body["id"].as_str().unwrap())));
    for key in [
        "id",
        "name",
        "credit_code",
        "legal_representative",
        "region_code",
        "address",
        "industry",
        "contact_phone",
        "created_at",
        "updated_at",
        "version",
    ] {
        assert!(r.body.get(key).is_some(), "{key}");
    }
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
    let id = r.body["id"].as_str().unwrap().to_string();

    // A permit refers to it: deleting is refused and nothing changes.
    let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
    app.sql(&format!(
        "INSERT INTO permits (id, holder_id, source_type, purpose, annual_volume_m3, meter_status, status, created_at, updated_at, version) \
         VALUES ('p1', '{id}', 'surface', 'industrial', 1000, 'ok', 'draft', '{now}', '{now}', 1)"
    ));
    let refused = app.delete(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await;
    refused.assert_problem(409, "referenced");
    assert!(refused.body["detail"].as_str().unwrap().contains("1 条取水许可"), "{}", refused.text);
    assert_eq!(app.get(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await.status, 200);

    app.sql("DELETE FROM permits");
    assert_eq!(app.delete(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await.status, 204);
    app.get(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await.assert_problem(404, "not_found");
    app.delete(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await.assert_problem(404, "not_found");
}

async fn change_feed_follows_writes(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let platform = app.token(&[Role::Platform]);
    let empty = app.get("/api/v1/changes?entity_types=water_user").bearer(&platform).send().await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["items"], json!([]));
    let start = empty.body["next_cursor"].as_str().unwrap().to_string();

    let a = app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("甲", REAL_CODES[0])).send().await;
    let id = a.body["id"].as_str().unwrap().to_string();
    app.patch(&format!("/api/v1/water-users/{id}"))
        .bearer(&t)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "甲改"}))
        .send()
        .await;
    app.delete(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await;

    let feed =
        app.get(&format!("/api/v1/changes?cursor={start}&entity_types=water_user")).bearer(&platform).send().await;
    let items = feed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{}", feed.text);
    assert_eq!(items[0]["op"], "upsert");
    assert_eq!(items[0]["data"]["name"], "甲");
    assert_eq!(items[1]["data"]["name"], "甲改");
    assert_eq!(items[1]["data"]["version"], 2);
    assert_eq!(items[2]["op"], "delete");
    assert_eq!(items[2]["data"], json!(null));
    let seqs: Vec<i64> = items.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]));
    // Caught up: an empty page with a cursor to resume from.
    let next = feed.body["next_cursor"].as_str().unwrap();
    let tail =
        app.get(&format!("/api/v1/changes?cursor={next}&entity_types=water_user")).bearer(&platform).send().await;
    assert_eq!(tail.body["items"], json!([]));
    assert_eq!(tail.body["next_cursor"], next);
    let filtered = app.get("/api/v1/changes?entity_types=permit").bearer(&platform).send().await;
    assert_eq!(filtered.body["items"], json!([]));
    let all = app.get("/api/v1/changes").bearer(&platform).send().await;
    assert_eq!(all.body["items"][0]["entity_type"], "department", "the bootstrap department comes first");
    assert_eq!(all.body["items"].as_array().unwrap().len(), 4);
    app.get("/api/v1/changes?entity_types=bogus")
        .bearer(&platform)
        .send()
        .await
        .assert_problem(400, "validation_failed");
    // Account changes are not in the feed.
    let admin = app.admin_token().await;
    app.post("/api/v1/departments").bearer(&admin).json(&json!({"code": "legal", "name": "政策法规科"})).send().await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE in_feed AND entity_type = 'account'"), 0);
    assert_eq!(whole_feed(&app, "department").await.len(), 2);
    app.get("/api/v1/changes?entity_types=account")
        .bearer(&platform)
        .send()
        .await
        .assert_problem(400, "validation_failed");
}

#[actix_rt::test]
async fn concurrent_writers_keep_one_chain_and_a_gapless_feed() {
    // PostgreSQL: many writers at once; the ledger row lock orders them by commit.
    let app = spawn_app_with(Backend::Postgres, |s| s.db_pool_size = Some(8)).await;
    let t = app.token(&[Role::WaterResources]);
    let mut futures = Vec::new();
    for i in 0..40u64 {
        let body = water_user_body(&format!("并发{i}"), &credit_code(1000 + i));
        let req = app.post("/api/v1/water-users").bearer(&t).json(&body);
        futures.push(req.send());
    }
    let results = futures_util::future::join_all(futures).await;
    assert!(results.iter().all(|r| r.status == 201));
    let auditor = app.token(&[Role::Auditor]);
    let v = app.get("/api/v1/audit-events/verify").bearer(&auditor).send().await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    // 40 water users and the bootstrap department, each once, in increasing order.
    let feed = whole_feed(&app, "water_user,department").await;
    assert_eq!(feed.len(), 41);
    let ids: std::collections::HashSet<&str> = feed.iter().map(|i| i["entity_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 41);
}
