use serde_json::json;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    every_error_is_a_problem,
    request_ids_are_echoed_or_made,
    errors_speak_chinese_unless_english_is_preferred
);

async fn every_error_is_a_problem(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let before = app.count("SELECT COUNT(*) AS n FROM water_users");

    // Malformed JSON.
    let r = app.post("/api/v1/water-users").bearer(&t).raw("{\"name\": ", "application/json").send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "body");
    assert_eq!(r.body["errors"][0]["message"], "JSON 不完整");
    // Wrong content type.
    app.post("/api/v1/water-users")
        .bearer(&t)
        .raw("name=x", "application/x-www-form-urlencoded")
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");
    app.post("/api/v1/water-users").bearer(&t).send().await.assert_problem(415, "unsupported_media_type");
    // Unknown field, named.
    let mut body = water_user_body("某公司", REAL_CODES[0]);
    body["colour"] = json!("blue");
    let r = app.post("/api/v1/water-users").bearer(&t).json(&body).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "colour", "{}", r.text);
    assert_eq!(r.body["errors"][0]["message"], "不是本请求的字段");
    // Wrong type, with the field's path.
    let mut body = water_user_body("某公司", REAL_CODES[0]);
    body["region_code"] = json!(520381);
    let r = app.post("/api/v1/water-users").bearer(&t).json(&body).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "region_code");
    // Over 1 MiB.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    app.post("/api/v1/water-users")
        .bearer(&t)
        .raw(big, "application/json")
        .send()
        .await
        .assert_problem(413, "payload_too_large");
    // Unknown route and wrong method.
    app.get("/api/v1/nothing-here").bearer(&t).send().await.assert_problem(404, "not_found");
    app.get("/elsewhere").send().await.assert_problem(404, "not_found");
    let r = app.request(awc::http::Method::PUT, "/api/v1/water-users").bearer(&t).send().await;
    r.assert_problem(405, "method_not_allowed");
    assert_eq!(r.header("allow").as_deref(), Some("GET, POST"));
    let r = app.request(awc::http::Method::PUT, "/api/v1/water-users/abc").bearer(&t).send().await;
    r.assert_problem(405, "method_not_allowed");
    assert_eq!(r.header("allow").as_deref(), Some("GET, DELETE, PATCH"));
    // Bad list parameters.
    app.get("/api/v1/water-users?limit=0").bearer(&t).send().await.assert_problem(400, "validation_failed");
    app.get("/api/v1/water-users?limit=501").bearer(&t).send().await.assert_problem(400, "validation_failed");
    app.get("/api/v1/water-users?limit=ten").bearer(&t).send().await.assert_problem(400, "validation_failed");
    app.get("/api/v1/water-users?cursor=not-a-cursor").bearer(&t).send().await.assert_problem(400, "validation_failed");
    // Missing resource.
    app.get("/api/v1/water-users/0000").bearer(&t).send().await.assert_problem(404, "not_found");
    // Nothing was written by any of it, and nothing internal leaked.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), before);
}

async fn request_ids_are_echoed_or_made(app: TestApp) {
    let r = app.get("/health/live").header("x-request-id", "trace-abc-123").send().await;
    assert_eq!(r.header("x-request-id").as_deref(), Some("trace-abc-123"));
    let r = app.get("/health/ready").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(&made).is_ok());
    // The id reaches the audit trail of the write it came with.
    let t = app.token(&[Role::WaterSaving]);
    let created = app
        .post("/api/v1/water-users")
        .bearer(&t)
        .header("x-request-id", "req-created-1")
        .json(&water_user_body("赤水某厂", REAL_CODES[1]))
        .send()
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE request_id = 'req-created-1' AND action = 'water_user_created'"), 1);
}

#[actix_rt::test]
async fn database_down_is_503() {
    let app = spawn_app(Backend::Postgres).await;
    let t = app.token(&[Role::Auditor]);
    assert_eq!(app.get("/api/v1/water-users").bearer(&t).send().await.status, 200);
    // Take the database away: no new connections, existing ones killed.
    let name = app.pg_database().to_string();
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut admin = diesel::PgConnection::establish(&postgres_base_url()).unwrap();
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid();"
            ))
            .unwrap();
        // pg_terminate_backend only signals: wait until the backends are gone.
        for _ in 0..100 {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            use diesel::RunQueryDsl;
            let left =
                diesel::sql_query(format!("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = '{name}'"))
                    .get_result::<N>(&mut admin)
                    .unwrap()
                    .n;
            if left == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    for _ in 0..3 {
        let r = app.get("/api/v1/water-users").bearer(&t).send().await;
        r.assert_problem(503, "service_unavailable");
        assert!(!r.text.to_lowercase().contains("postgres") && !r.text.contains("pg_"), "{}", r.text);
    }
    app.get("/health/ready").send().await.assert_problem(503, "service_unavailable");
    assert_eq!(app.get("/health/live").send().await.status, 200);
    // And it recovers when the database is back.
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut admin = diesel::PgConnection::establish(&postgres_base_url()).unwrap();
        admin.batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).unwrap();
    }
    // The pool re-establishes connections with a back-off (r2d2), so recovery takes a few seconds.
    let mut ok = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if app.get("/api/v1/water-users").bearer(&t).send().await.status == 200 {
            ok = true;
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ok, "service recovers once the database is back");
}

#[actix_rt::test]
async fn sqlite_locked_is_503_and_writes_nothing() {
    // Another process holds the SQLite write lock past busy_timeout (5 s): writes answer 503, not 500,
    // and leave nothing behind; once the lock is gone, writes go through.
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.token(&[Role::WaterResources]);
    let before = app.count("SELECT COUNT(*) AS n FROM audit_events");
    let mut holder = app.db();
    {
        use diesel::connection::SimpleConnection;
        let shuiwu::db::DbConn::Sqlite(c) = &mut holder else { unreachable!() };
        c.batch_execute("BEGIN EXCLUSIVE; INSERT INTO counters (name, value) VALUES ('lock', 1);").unwrap();
    }
    let r = app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("锁", REAL_CODES[0])).send().await;
    r.assert_problem(503, "service_unavailable");
    assert!(r.header("retry-after").is_some());
    {
        use diesel::connection::SimpleConnection;
        let shuiwu::db::DbConn::Sqlite(c) = &mut holder else { unreachable!() };
        c.batch_execute("ROLLBACK").unwrap();
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events"), before);
    let ok = app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("锁", REAL_CODES[0])).send().await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}

/// Problems are in Chinese for Chinese clients and by default, in English when the client prefers English; the
/// `code` is the same in both.
async fn errors_speak_chinese_unless_english_is_preferred(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let mut body = water_user_body("某公司", REAL_CODES[0]);
    body["region_code"] = json!("52");
    let ask = |lang: Option<&'static str>| {
        let mut r = app.post("/api/v1/water-users").bearer(&t).json(&body);
        if let Some(l) = lang {
            r = r.header("accept-language", l);
        }
        r.send()
    };
    for (lang, title, message, content_language) in [
        (None, "请求参数有误", "须为 6 位行政区划代码", "zh-CN"),
        (Some("zh-CN,zh;q=0.9,en;q=0.8"), "请求参数有误", "须为 6 位行政区划代码", "zh-CN"),
        (Some("en-US,en;q=0.9"), "Validation failed", "must be a 6-digit administrative division code", "en"),
    ] {
        let r = ask(lang).await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.body["title"], title, "{lang:?}");
        assert_eq!(r.body["errors"][0]["message"], message);
        assert_eq!(r.body["errors"][0]["field"], "region_code");
        assert_eq!(r.header("content-language").as_deref(), Some(content_language));
    }
    // The same for a refusal by a rule, and for errors raised outside the handlers.
    let created =
        app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("某公司", REAL_CODES[0])).send().await;
    assert_eq!(created.status, 201);
    let zh = app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("某公司", REAL_CODES[0])).send().await;
    zh.assert_problem(409, "conflict");
    assert_eq!(zh.body["detail"], "该统一社会信用代码已登记");
    let en = app
        .post("/api/v1/water-users")
        .bearer(&t)
        .header("accept-language", "en")
        .json(&water_user_body("某公司", REAL_CODES[0]))
        .send()
        .await;
    assert_eq!(en.body["detail"], "a water user with this credit code is already registered");
    let missing = app.get("/api/v1/nowhere").header("accept-language", "en").send().await;
    assert_eq!((missing.body["title"].as_str(), missing.body["code"].as_str()), (Some("Not found"), Some("not_found")));
    assert_eq!(app.get("/api/v1/nowhere").send().await.body["title"], "资源不存在");
}
