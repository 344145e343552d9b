use serde_json::json;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    writes_are_audited_with_before_and_after,
    chain_verifies_and_detects_tampering,
    denials_are_audited_and_events_are_read_only
);

async fn writes_are_audited_with_before_and_after(app: TestApp) {
    let t = app.token_for("clerk-1", &[Role::WaterResources]);
    let a = app
        .post("/api/v1/water-users")
        .bearer(&t)
        .header("x-request-id", "rq-1")
        .json(&water_user_body("甲", REAL_CODES[0]))
        .send()
        .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    app.patch(&format!("/api/v1/water-users/{id}"))
        .bearer(&t)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "乙"}))
        .send()
        .await;
    // A refused write leaves no event.
    app.post("/api/v1/water-users")
        .bearer(&t)
        .json(&water_user_body("重复", REAL_CODES[0]))
        .send()
        .await
        .assert_problem(409, "conflict");

    let auditor = app.token(&[Role::Auditor]);
    let events =
        app.get(&format!("/api/v1/audit-events?entity_type=water_user&entity_id={id}")).bearer(&auditor).send().await;
    assert_eq!(events.status, 200, "{}", events.text);
    let items = events.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], "water_user_created");
    assert_eq!(items[0]["before"], json!(null));
    assert_eq!(items[0]["after"]["name"], "甲");
    assert_eq!(items[0]["request_id"], "rq-1");
    assert_eq!(items[0]["actor"]["sub"], "clerk-1");
    assert_eq!(items[0]["actor"]["roles"], json!(["water_resources"]));
    assert_eq!(items[1]["action"], "water_user_updated");
    assert_eq!(items[1]["before"]["name"], "甲");
    assert_eq!(items[1]["after"]["name"], "乙");
    assert_eq!(items[1]["prev_hash"], items[0]["hash"]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action LIKE 'water_user%'"), 2);
    // Paging through the whole trail.
    let page = app.get("/api/v1/audit-events?limit=1").bearer(&auditor).send().await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert!(page.body["next_cursor"].is_string());
}

async fn chain_verifies_and_detects_tampering(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    for i in 0..4u64 {
        app.post("/api/v1/water-users")
            .bearer(&t)
            .json(&water_user_body(&format!("户{i}"), &credit_code(i)))
            .send()
            .await;
    }
    let admin = app.token(&[Role::Admin]);
    let v = app.get("/api/v1/audit-events/verify").bearer(&admin).send().await;
    assert_eq!(v.status, 200, "{}", v.text);
    let total = app.count("SELECT COUNT(*) AS n FROM audit_events");
    assert_eq!(v.body, json!({"ok": true, "checked": total, "first_break_seq": null}));

    // The database itself refuses changes to events…
    let mut conn = app.db();
    {
        use diesel::connection::SimpleConnection;
        let refused = match &mut conn {
            shuiwu::db::DbConn::Postgres(c) => c.batch_execute("UPDATE audit_events SET action = 'x' WHERE seq = 3"),
            shuiwu::db::DbConn::Sqlite(c) => c.batch_execute("UPDATE audit_events SET action = 'x' WHERE seq = 3"),
        };
        assert!(refused.is_err(), "append-only trigger");
    }
    // …but someone with the keys to the database can bypass it; verify finds the edit.
    match app.backend {
        Backend::Postgres => app.sql(
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update; \
             UPDATE audit_events SET after_data = REPLACE(after_data, '户1', '户X') WHERE action = 'water_user_created' AND after_data LIKE '%户1%';",
        ),
        Backend::Sqlite => app.sql(
            "DROP TRIGGER audit_events_no_update; \
             UPDATE audit_events SET after_data = REPLACE(after_data, '户1', '户X') WHERE action = 'water_user_created' AND after_data LIKE '%户1%';",
        ),
    }
    let tampered_seq = app.count("SELECT seq AS n FROM audit_events WHERE after_data LIKE '%户X%'");
    let v = app.get("/api/v1/audit-events/verify").bearer(&admin).send().await;
    assert_eq!(v.body["ok"], false);
    assert_eq!(v.body["first_break_seq"], tampered_seq);

    // Removing the last event is detected too (the head remembers it).
    let app2 = spawn_app(app.backend).await;
    let t2 = app2.token(&[Role::WaterResources]);
    app2.post("/api/v1/water-users").bearer(&t2).json(&water_user_body("末", REAL_CODES[1])).send().await;
    // Reading the trail numbers what is pending.
    let v = app2.get("/api/v1/audit-events/verify").bearer(&app2.token(&[Role::Auditor])).send().await;
    assert_eq!(v.body["ok"], true);
    let last = app2.count("SELECT MAX(seq) AS n FROM audit_events");
    match app2.backend {
        Backend::Postgres => app2.sql(&format!("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update; DELETE FROM audit_events WHERE seq = {last};")),
        Backend::Sqlite => app2.sql(&format!("DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq = {last};")),
    }
    let v = app2.get("/api/v1/audit-events/verify").bearer(&app2.token(&[Role::Auditor])).send().await;
    assert_eq!(v.body["ok"], false);
    assert_eq!(v.body["first_break_seq"], last);
}

async fn denials_are_audited_and_events_are_read_only(app: TestApp) {
    let finance = app.token_for("finance-1", &[Role::Finance]);
    app.post("/api/v1/water-users")
        .bearer(&finance)
        .json(&water_user_body("x", REAL_CODES[0]))
        .send()
        .await
        .assert_problem(403, "forbidden");
    // The denial is written in the background; wait for it.
    let mut found = 0;
    for _ in 0..50 {
        found = app.count(
            "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'permission_denied' AND actor_sub = 'finance-1'",
        );
        if found > 0 {
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found, 1);
    let auditor = app.token(&[Role::Auditor]);
    for method in [awc::http::Method::PUT, awc::http::Method::PATCH, awc::http::Method::DELETE, awc::http::Method::POST]
    {
        let r = app.request(method.clone(), "/api/v1/audit-events").bearer(&auditor).send().await;
        r.assert_problem(405, "method_not_allowed");
        let r = app.request(method, "/api/v1/audit-events/1").bearer(&auditor).send().await;
        assert!(r.status == 404 || r.status == 405);
    }
    // Writers cannot read the trail.
    app.get("/api/v1/audit-events")
        .bearer(&app.token(&[Role::WaterResources]))
        .send()
        .await
        .assert_problem(403, "forbidden");
}

#[actix_rt::test]
async fn events_left_unnumbered_by_a_crash_are_numbered_by_the_sweep() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app(backend).await;
        // A writer committed its change and audit event, then died before numbering them.
        let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
        app.sql(&format!(
            "INSERT INTO audit_events (at, actor_sub, actor_roles, action, entity_type, entity_id, after_data, in_feed) \
             VALUES ('{now}', 'crashed', 'water_resources', 'water_user_created', 'water_user', 'w1', '{{}}', true);"
        ));
        let mut numbered = false;
        for _ in 0..50 {
            if app.count("SELECT COUNT(*) AS n FROM audit_events WHERE seq IS NULL") == 0 {
                numbered = true;
                break;
            }
            actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(numbered, "{backend:?}: the sweep numbers what a crashed writer left");
        let v = app.get("/api/v1/audit-events/verify").bearer(&app.token(&[Role::Auditor])).send().await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        let feed =
            app.get("/api/v1/changes?entity_types=water_user").bearer(&app.token(&[Role::Platform])).send().await;
        assert_eq!(feed.body["items"][0]["entity_id"], "w1");
    }
}
