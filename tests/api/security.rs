//! Sessions, throttling, separation of duties, bounds and hostile input (the input- and account-security issue),
//! and tokens, passwords and the audit trail under attack. Each test names what it proves.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;
use crate::permits::{act, create, permit_body, permit_in, staff};

on_both_databases!(
    a_password_change_role_change_or_deactivation_ends_every_session,
    own_password_needs_the_current_one_and_guesses_are_throttled,
    role_combinations_follow_separation_of_duties,
    the_last_admin_stays,
    numbers_are_bounded_and_readings_above_capacity_need_confirmation,
    hostile_bytes_are_refused_with_the_field_named,
    parsing_is_strict_and_errors_speak_plainly,
    anonymous_input_is_bounded_before_anything_is_stored,
    revocations_outlive_their_tokens_and_odd_tokens_are_refused,
    logout_ends_the_whole_session_of_a_stolen_refresh_token,
    replays_pass_authentication_and_keys_belong_to_one_issuer,
    reads_follow_the_contract_and_histories_hide_accounts,
    responses_are_hardened_for_browsers,
    audit_events_filter_by_time,
);

async fn login_ok(app: &TestApp, username: &str, password: &str) -> (String, String) {
    let r = app.login(username, password).await;
    assert_eq!(r.status, 200, "{username}: {}", r.text);
    (r.body["access_token"].as_str().unwrap().to_string(), r.body["refresh_token"].as_str().unwrap().to_string())
}

async fn new_account(app: &TestApp, admin: &str, username: &str, roles: Value) -> Value {
    let r = app
        .post("/api/v1/accounts")
        .bearer(admin)
        .json(&json!({"username": username, "display_name": username, "department": "office", "roles": roles,
            "password": "initial password 1"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

/// An admin resets account `id`'s password (with its current ETag).
async fn reset_password(app: &TestApp, admin: &str, id: &str, password: &str) {
    let etag = app.get(&format!("/api/v1/accounts/{id}")).bearer(admin).send().await.etag();
    let reset = app
        .post(&format!("/api/v1/accounts/{id}/password"))
        .bearer(admin)
        .header("if-match", &etag)
        .json(&json!({ "password": password }))
        .send()
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
}

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.post("/api/v1/auth/refresh").json(&json!({"refresh_token": token})).send().await
}

async fn me(app: &TestApp, token: &str) -> u16 {
    app.get("/api/v1/auth/me").bearer(token).send().await.status
}

/// A password reset, a role change and deactivation end the account's sessions — access and refresh tokens —
/// at once on this instance; a sign-in right after works at once (no clock-second games).
async fn a_password_change_role_change_or_deactivation_ends_every_session(app: TestApp) {
    let admin = app.admin_token().await;
    let acct = new_account(&app, &admin, "wang.fang", json!(["water_resources"])).await;
    let id = acct["id"].as_str().unwrap();
    let (access, refresh_token) = login_ok(&app, "wang.fang", "initial password 1").await;
    assert_eq!(me(&app, &access).await, 200);

    // An admin resets the (stolen) account's password.
    reset_password(&app, &admin, id, "a new password 22").await;
    assert_eq!(me(&app, &access).await, 401, "the old access token is dead");
    refresh(&app, &refresh_token).await.assert_problem(401, "unauthorized");
    app.login("wang.fang", "initial password 1").await.assert_problem(401, "unauthorized");
    let (access, refresh_token) = login_ok(&app, "wang.fang", "a new password 22").await;
    assert_eq!(me(&app, &access).await, 200, "a sign-in right after the change works at once");
    assert_eq!(refresh(&app, &refresh_token).await.status, 200);

    // A role change ends the sessions too.
    let (access, refresh_token) = login_ok(&app, "wang.fang", "a new password 22").await;
    let etag = app.get(&format!("/api/v1/accounts/{id}")).bearer(&admin).send().await.etag();
    let patched = app
        .patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &etag)
        .json(&json!({"roles": ["water_resources", "inspector"]}))
        .send()
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(me(&app, &access).await, 401);
    refresh(&app, &refresh_token).await.assert_problem(401, "unauthorized");
    let (access, _) = login_ok(&app, "wang.fang", "a new password 22").await;
    assert_eq!(me(&app, &access).await, 200);

    // Deactivation: every token refused, whatever its age, and no new sign-in; an operator's token too.
    let operator_token = app.token_for(id, &[Role::WaterResources]);
    let etag = app.get(&format!("/api/v1/accounts/{id}")).bearer(&admin).send().await.etag();
    let off = app
        .patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &etag)
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(off.status, 200);
    assert_eq!(me(&app, &access).await, 401);
    assert_eq!(me(&app, &operator_token).await, 401);
    // Even a token minted after the deactivation, in the account's current epoch, is refused: it is inactive.
    let epoch = app.count(&format!("SELECT token_epoch AS n FROM accounts WHERE id = '{id}'"));
    let subject = shuiwu::security::jwt::Subject {
        sub: id,
        username: Some("wang.fang"),
        department: "office",
        roles: &[Role::WaterResources],
        epoch,
        session: None,
    };
    let fresh = app.keys.issue(&subject, Duration::from_secs(600)).0;
    assert_eq!(me(&app, &fresh).await, 401, "an inactive account's tokens are refused whatever their age");
    app.login("wang.fang", "a new password 22").await.assert_problem(401, "unauthorized");
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM refresh_tokens WHERE subject = '{id}'")), 0);
}

/// Changing one's own password always needs the current one (an admin's too); a wrong one is audited and
/// counted with the sign-in throttle; an admin resets others' passwords without it.
async fn own_password_needs_the_current_one_and_guesses_are_throttled(app: TestApp) {
    let admin = app.admin_token().await;
    let admin_id = app.get("/api/v1/auth/me").bearer(&admin).send().await.body["sub"].as_str().unwrap().to_string();
    let path = format!("/api/v1/accounts/{admin_id}/password");
    let etag = app.get(&format!("/api/v1/accounts/{admin_id}")).bearer(&admin).send().await.etag();
    let change = |body: Value| app.post(&path).bearer(&admin).header("if-match", &etag).json(&body).send();
    let r = change(json!({"password": "stolen token takeover"})).await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "current_password");
    for _ in 0..5 {
        change(json!({"password": "stolen token takeover", "current_password": "a wrong guess"}))
            .await
            .assert_problem(400, "validation_failed");
    }
    change(json!({"password": "stolen token takeover", "current_password": "a wrong guess"}))
        .await
        .assert_problem(429, "rate_limited");
    // Even the right one waits now; the guesses are in the audit trail.
    change(json!({"password": "stolen token takeover", "current_password": ADMIN_PASSWORD}))
        .await
        .assert_problem(429, "rate_limited");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'password_check_failed'"), 5);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM accounts WHERE username = 'admin' AND version = 1"), 1);

    // Resetting someone else's needs no current password; someone else's (not admin) is 403 and audited.
    let user = new_account(&app, &admin, "li.qiang", json!(["finance"])).await;
    let uid = user["id"].as_str().unwrap();
    let (user_token, _) = login_ok(&app, "li.qiang", "initial password 1").await;
    let denied_before = app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'permission_denied'");
    app.post(&path)
        .bearer(&user_token)
        .header("if-match", &etag)
        .json(&json!({"password": "i am the admin now"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    let mut audited = false;
    for _ in 0..30 {
        if app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'permission_denied'") > denied_before {
            audited = true;
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(audited, "a 403 inside the handler is audited");
    reset_password(&app, &admin, uid, "reset by the admin").await;
}

/// docs/api.md: admin with no business role (auditor may join it), platform only on service accounts, service
/// accounts never admin or leader — at creation and on every change.
async fn role_combinations_follow_separation_of_duties(app: TestApp) {
    let admin = app.admin_token().await;
    for roles in [json!(["admin", "water_resources"]), json!(["admin", "leader"]), json!(["platform"]), json!([])] {
        let r = app
            .post("/api/v1/accounts")
            .bearer(&admin)
            .json(&json!({"username": "x.y", "display_name": "X", "department": "office", "roles": roles,
                "password": "initial password 1"}))
            .send()
            .await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "roles", "{roles}");
    }
    let ok = new_account(&app, &admin, "audit.admin", json!(["admin", "auditor"])).await;
    let id = ok["id"].as_str().unwrap();
    let r = app
        .patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .header("if-match", "\"1\"")
        .json(&json!({"roles": ["admin", "finance"]}))
        .send()
        .await;
    r.assert_problem(400, "validation_failed");
    for roles in [json!(["leader"]), json!(["admin"]), json!(["platform", "admin"])] {
        app.post("/api/v1/service-accounts")
            .bearer(&admin)
            .json(&json!({"name": "平台", "department": "office", "roles": roles}))
            .send()
            .await
            .assert_problem(400, "validation_failed");
    }
    let sa = app
        .post("/api/v1/service-accounts")
        .bearer(&admin)
        .json(&json!({"name": "平台", "department": "office", "roles": ["platform"]}))
        .send()
        .await;
    assert_eq!(sa.status, 201, "{}", sa.text);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM accounts"), 2);
}

/// The last active admin can neither drop the admin role nor be deactivated (409 `last_admin`); with a second
/// admin it can.
async fn the_last_admin_stays(app: TestApp) {
    let admin = app.admin_token().await;
    let admin_id = app.get("/api/v1/auth/me").bearer(&admin).send().await.body["sub"].as_str().unwrap().to_string();
    let path = format!("/api/v1/accounts/{admin_id}");
    for body in [json!({"roles": ["auditor"]}), json!({"active": false})] {
        app.patch(&path)
            .bearer(&admin)
            .header("if-match", "\"1\"")
            .json(&body)
            .send()
            .await
            .assert_problem(409, "last_admin");
    }
    new_account(&app, &admin, "second.admin", json!(["admin"])).await;
    let r =
        app.patch(&path).bearer(&admin).header("if-match", "\"1\"").json(&json!({"roles": ["auditor"]})).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Volumes are 0 ..= 10¹² everywhere; sums cannot overflow; a reading above what a permit can physically draw
/// is refused unless confirmed, and a confirmed one is marked.
async fn numbers_are_bounded_and_readings_above_capacity_need_confirmation(app: TestApp) {
    let s = staff(&app).await;
    let admin = app.token(&[Role::Admin]);
    let huge = permit_body(&s.holder, None, "surface", 5_000_000_000_000_000_000);
    let r = app.post("/api/v1/permits").bearer(&s.clerk).json(&huge).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "annual_volume_m3");
    let r = app
        .post("/api/v1/permits")
        .bearer(&s.clerk)
        .json(&permit_body(&s.holder, None, "surface", 1 << 62))
        .send()
        .await;
    r.assert_problem(400, "validation_failed");
    app.post("/api/v1/water-zones")
        .bearer(&admin)
        .json(&json!({"name": "大区", "source_type": "surface", "zone_class": "normal", "allowable_m3_per_year": 2_000_000_000_000i64}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    // A number beyond what JSON integers the service takes is a plain-words error, not a 500.
    let body = permit_body(&s.holder, None, "surface", 1)
        .to_string()
        .replace("\"annual_volume_m3\":1", "\"annual_volume_m3\":1e30");
    let r = app.post("/api/v1/permits").bearer(&s.clerk).raw(body, "application/json").send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["message"], "须为整数");
    assert_eq!(app.get("/api/v1/water-zones").bearer(&admin).send().await.status, 200);

    // The permit draws at most 1 800 m³ a day.
    let p = permit_in(&app, &s, "approved").await;
    let id = p["id"].as_str().unwrap();
    let month = shuiwu::domain::dates::Month::of(today() - chrono::Duration::days(40)).to_string();
    let path = format!("/api/v1/permits/{id}/withdrawals");
    let reading = json!({"period": month, "volume_m3": 10_000_000, "method": "manual_reading"});
    app.post(&path).bearer(&s.clerk).json(&reading).send().await.assert_problem(409, "exceeds_permit_capacity");
    let mut confirmed = reading.clone();
    confirmed["over_capacity_confirmed"] = json!(true);
    let r = app.post(&path).bearer(&s.clerk).json(&confirmed).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["over_capacity"], true);
    let listed = app.get(&path).bearer(&s.clerk).send().await;
    assert_eq!(listed.body["items"][0]["over_capacity"], true);
    let audited =
        app.get("/api/v1/audit-events?action=withdrawal_recorded").bearer(&app.token(&[Role::Auditor])).send().await;
    assert_eq!(audited.body["items"][0]["after"]["over_capacity"], true);
    let normal = json!({"period": month, "volume_m3": 1000, "method": "manual_reading"});
    let r = app.post(&path).bearer(&s.clerk).json(&normal).send().await;
    assert_eq!((r.status, &r.body["over_capacity"]), (201, &json!(false)));
    app.post(&path)
        .bearer(&s.clerk)
        .json(&json!({"period": month, "volume_m3": 1_000_000_000_001i64, "method": "manual_reading", "over_capacity_confirmed": true}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
}

/// NUL, ESC, CR, LF, BEL and bidirectional overrides are refused in names, query values and path ids (400 or
/// 404 naming the field), identically on both databases; multi-line notes keep their line breaks.
async fn hostile_bytes_are_refused_with_the_field_named(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let users = || app.count("SELECT COUNT(*) AS n FROM water_users");
    for bad in ["甲\u{0}公司", "甲\u{1b}[31m公司", "甲\r\n公司", "甲\u{7}公司", "甲\u{202e}公司"] {
        let r = app.post("/api/v1/water-users").bearer(&t).json(&water_user_body(bad, REAL_CODES[0])).send().await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "name", "{bad:?}: {}", r.text);
    }
    // In a field that is not free text at all.
    let mut body = water_user_body("甲公司", REAL_CODES[0]);
    body["region_code"] = json!("520\u{0}381");
    let r = app.post("/api/v1/water-users").bearer(&t).json(&body).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "region_code");
    assert_eq!(users(), 0);
    for q in ["%00", "%1B%5B31m", "a%0Ab"] {
        let r = app.get(&format!("/api/v1/water-users?q={q}")).bearer(&t).send().await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "q");
    }
    for id in ["abc%00def", "%00", "x'--", "00000000-0000-0000-0000-00000000000%00"] {
        app.get(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await.assert_problem(404, "not_found");
    }
    // Notes may span lines.
    let s = staff(&app).await;
    let p = permit_in(&app, &s, "approved").await;
    let month = shuiwu::domain::dates::Month::of(today() - chrono::Duration::days(40)).to_string();
    let r = app
        .post(&format!("/api/v1/permits/{}/withdrawals", p["id"].as_str().unwrap()))
        .bearer(&s.clerk)
        .json(&json!({"period": month, "volume_m3": 10, "method": "manual_reading", "note": "第一行\n第二行"}))
        .send()
        .await;
    assert_eq!((r.status, &r.body["note"]), (201, &json!("第一行\n第二行")));
}

/// Objects only, nothing after the JSON, unknown query parameters named, every error about the field the
/// client sent and in words a clerk understands.
async fn parsing_is_strict_and_errors_speak_plainly(app: TestApp) {
    let t = app.token(&[Role::WaterResources]);
    let field = |r: &Resp| {
        (
            r.body["errors"][0]["field"].as_str().unwrap_or("").to_string(),
            r.body["errors"][0]["message"].as_str().unwrap_or("").to_string(),
        )
    };
    let arr = json!(["甲公司", REAL_CODES[0], "王", "520381", "地址", "D", "0851-1234567"]);
    let r = app.post("/api/v1/water-users").bearer(&t).json(&arr).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(field(&r), ("body".into(), "请求体须为 JSON 对象".into()));
    let mut text = water_user_body("甲公司", REAL_CODES[0]).to_string();
    text.push_str(" <<<garbage");
    let r = app.post("/api/v1/water-users").bearer(&t).raw(text, "application/json").send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(field(&r).0, "body");
    let mut missing = water_user_body("甲公司", REAL_CODES[0]);
    missing.as_object_mut().unwrap().remove("name");
    let r = app.post("/api/v1/water-users").bearer(&t).json(&missing).send().await;
    assert_eq!(field(&r), ("name".into(), "必须填写".into()));
    let mut wrong = water_user_body("甲公司", REAL_CODES[0]);
    wrong["name"] = json!(42);
    assert_eq!(
        field(&app.post("/api/v1/water-users").bearer(&t).json(&wrong).send().await),
        ("name".into(), "须为文本".into())
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), 0);

    let r = app.get("/api/v1/permits?valid_to_from=2030-01-01").bearer(&t).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(field(&r), ("valid_to_from".into(), "不是本接口的参数".into()));
    let r = app.get("/api/v1/permits?status=approvd").bearer(&t).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(field(&r).0, "status");
    assert!(field(&r).1.starts_with("须为以下之一：draft, submitted"), "{}", r.text);
    let r = app.get("/api/v1/permits?expiring_within_days=soon").bearer(&t).send().await;
    assert_eq!(field(&r), ("expiring_within_days".into(), "须为整数".into()));
    let r = app.get("/api/v1/water-users?q=%FF").bearer(&t).send().await;
    r.assert_problem(400, "validation_failed");
    assert_eq!(field(&r).0, "q");

    let s = staff(&app).await;
    let p = create(&app, &s, &permit_body(&s.holder, None, "surface", 100)).await;
    let id = p["id"].as_str().unwrap();
    for (date, words) in [
        ("2022-02-30", "不是有效的日历日期"),
        ("+10000-01-01", "须为日期，格式 YYYY-MM-DD"),
        ("0000-01-01", "日期须在 1900-01-01 至 2199-12-31 之间"),
        ("2022-2-3", "须为日期，格式 YYYY-MM-DD"),
    ] {
        let r = act(&app, &s.clerk, id, "submit", json!({"effective_date": date})).await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(field(&r), ("effective_date".into(), words.into()), "{date}");
    }
    // If-Match without quotes is taken as the version it names.
    let r = app
        .post(&format!("/api/v1/permits/{id}/submit"))
        .bearer(&s.clerk)
        .header("if-match", "1")
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Nothing an unauthenticated caller sends is stored unbounded: over-long or control-character names are
/// refused before any lookup, and what is kept of a claimed name or a denied path is bounded.
async fn anonymous_input_is_bounded_before_anything_is_stored(app: TestApp) {
    let events = || app.count("SELECT COUNT(*) AS n FROM audit_events");
    let before = (events(), app.count("SELECT COUNT(*) AS n FROM login_failures"));
    let long = "x".repeat(1_000_000);
    for body in [
        json!({"username": long, "password": "whatever"}),
        json!({"username": "zhang\u{1b}[2J", "password": "whatever"}),
        json!({"username": "zhang", "password": "p".repeat(2000)}),
    ] {
        app.post("/api/v1/auth/login").json(&body).send().await.assert_problem(400, "validation_failed");
    }
    app.post("/api/v1/auth/token")
        .json(&json!({"grant_type": "client_credentials", "client_id": long, "client_secret": "s"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": long}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    assert_eq!((events(), app.count("SELECT COUNT(*) AS n FROM login_failures")), before, "nothing stored");
    // A failed sign-in stores the claimed (bounded, valid) name once.
    app.login("nobody.here", "wrong password").await.assert_problem(401, "unauthorized");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE actor_username = 'nobody.here'"), 1);
    // A denial keeps a bounded request line.
    let t = app.token(&[Role::Inspector]);
    let path = format!("/api/v1/accounts?q={}", "y".repeat(5000));
    app.get(&path).bearer(&t).send().await.assert_problem(403, "forbidden");
    let mut stored = 0;
    for _ in 0..30 {
        stored = app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'permission_denied'");
        if stored > 0 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored, 1);
    let len = app.count(
        "SELECT CAST(MAX(LENGTH(after_data)) AS BIGINT) AS n FROM audit_events WHERE action = 'permission_denied'",
    );
    assert!(len < 300, "{len}");
}

/// Revocations outlive the leeway (tokens are accepted until exp + 30 s); a token issued in the future and one that
/// lives longer than 30 days are refused. (Inactive accounts: see the sessions test; the CLI: `cli.rs`.)
async fn revocations_outlive_their_tokens_and_odd_tokens_are_refused(app: TestApp) {
    let (access, _) = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let exp = app.keys.verify(&access).unwrap().exp;
    assert_eq!(app.post("/api/v1/auth/logout").bearer(&access).send().await.status, 204);
    let until = app.count(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM revocations WHERE expires_at > '{}'",
        chrono::DateTime::from_timestamp(exp + 30, 0).unwrap().naive_utc().format("%Y-%m-%d %H:%M:%S")
    ));
    assert_eq!(until, 1, "the revocation lasts past exp + leeway");

    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64, exp: i64| {
        json!({"iss": "shuiwu", "aud": "shuiwu-api", "sub": "someone", "exp": exp, "nbf": iat.min(now), "iat": iat,
            "jti": uuid::Uuid::now_v7().to_string(), "department": "office", "roles": ["auditor"]})
    };
    let sign = |c: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &c,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    assert_eq!(me(&app, &sign(claims(now, now + 600))).await, 200);
    assert_eq!(me(&app, &sign(claims(now + 3600, now + 7200))).await, 401, "iat in the future");
    assert_eq!(me(&app, &sign(claims(now, now + 40 * 86_400))).await, 401, "lives longer than 30 days");
    assert_eq!(me(&app, &sign(claims(now, 32_503_680_000_000))).await, 401, "year 12000");
}

/// A thief refreshes a stolen refresh token; the owner signs out: the thief's newer tokens die with the session.
async fn logout_ends_the_whole_session_of_a_stolen_refresh_token(app: TestApp) {
    let (owner_access, stolen) = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let thief = refresh(&app, &stolen).await;
    assert_eq!(thief.status, 200);
    let (thief_access, thief_refresh) = (
        thief.body["access_token"].as_str().unwrap().to_string(),
        thief.body["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_eq!(me(&app, &thief_access).await, 200);
    assert_eq!(app.post("/api/v1/auth/logout").bearer(&owner_access).send().await.status, 204);
    assert_eq!(me(&app, &thief_access).await, 401);
    refresh(&app, &thief_refresh).await.assert_problem(401, "unauthorized");
    assert_eq!(me(&app, &owner_access).await, 401);
}

/// A replay passes the same authentication as any request: a deactivated account's token gets 401, not its
/// stored 201. Keys are scoped by issuer and subject.
async fn replays_pass_authentication_and_keys_belong_to_one_issuer(app: TestApp) {
    let admin = app.admin_token().await;
    let acct = new_account(&app, &admin, "zhao.lei", json!(["water_resources"])).await;
    let id = acct["id"].as_str().unwrap();
    let (token, _) = login_ok(&app, "zhao.lei", "initial password 1").await;
    let body = water_user_body("重放公司", REAL_CODES[1]);
    let first = app.post("/api/v1/water-users").bearer(&token).header("idempotency-key", "k").json(&body).send().await;
    assert_eq!(first.status, 201);
    let replay = app.post("/api/v1/water-users").bearer(&token).header("idempotency-key", "k").json(&body).send().await;
    assert_eq!(replay.header("idempotency-replayed").as_deref(), Some("true"));
    let etag = app.get(&format!("/api/v1/accounts/{id}")).bearer(&admin).send().await.etag();
    app.patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &etag)
        .json(&json!({"active": false}))
        .send()
        .await;
    let after = app.post("/api/v1/water-users").bearer(&token).header("idempotency-key", "k").json(&body).send().await;
    after.assert_problem(401, "unauthorized");
    assert_eq!(after.header("idempotency-replayed"), None);
    // Keys live under the caller's scope: the local subject's.
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM idempotency_keys WHERE scope = '{id}' AND key = 'k'")), 1);
}

/// Inspectors and legal read only what docs/api.md gives them; histories show accounts to admin and auditor only.
async fn reads_follow_the_contract_and_histories_hide_accounts(app: TestApp) {
    let inspector = app.token(&[Role::Inspector]);
    let legal = app.token(&[Role::Legal]);
    for path in ["/api/v1/water-zones", "/api/v1/withdrawals"] {
        app.get(path).bearer(&inspector).send().await.assert_problem(403, "forbidden");
        app.get(path).bearer(&legal).send().await.assert_problem(403, "forbidden");
    }
    for path in ["/api/v1/permits", "/api/v1/water-users"] {
        assert_eq!(app.get(path).bearer(&inspector).send().await.status, 200);
        app.get(path).bearer(&legal).send().await.assert_problem(403, "forbidden");
    }
    let s = staff(&app).await;
    let p = permit_in(&app, &s, "approved").await;
    let path = format!("/api/v1/permits/{}/history", p["id"].as_str().unwrap());
    for role in [Role::Inspector, Role::Platform, Role::Leader] {
        let h = app.get(&path).bearer(&app.token(&[role])).send().await;
        assert_eq!(h.status, 200);
        let first = &h.body["items"][0];
        assert_eq!(first["actor"], Value::Null, "{role:?}");
        assert_eq!(first["department"], "office");
    }
    let h = app.get(&path).bearer(&app.token(&[Role::Auditor])).send().await;
    assert_eq!(h.body["items"][0]["actor"]["sub"], "clerk");
}

/// Every answer carries nosniff and framing protection; API answers are not stored; Swagger UI does not keep
/// the bearer token in the browser.
async fn responses_are_hardened_for_browsers(app: TestApp) {
    let t = app.token(&[Role::Auditor]);
    for r in [
        app.get("/api/v1/accounts").bearer(&t).send().await,
        app.get("/api/v1/audit-events").bearer(&t).send().await,
        app.get("/api/v1/nowhere").send().await,
    ] {
        assert_eq!(r.header("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        assert!(r.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    }
    let ui = app.get("/swagger-ui/").send().await;
    assert_eq!(ui.header("x-frame-options").as_deref(), Some("DENY"));
    let init = app.get("/swagger-ui/swagger-initializer.js").send().await;
    assert!(
        init.text.contains("\"persistAuthorization\": false") || !init.text.contains("persistAuthorization\": true"),
        "{}",
        init.text
    );
}

/// `from` and `to` (RFC 3339) on the audit trail.
async fn audit_events_filter_by_time(app: TestApp) {
    let t = app.token(&[Role::WaterSaving]);
    app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("早", REAL_CODES[0])).send().await;
    let between = chrono::Utc::now();
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("晚", REAL_CODES[1])).send().await;
    let auditor = app.token(&[Role::Auditor]);
    let at = enc(&between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let later =
        app.get(&format!("/api/v1/audit-events?action=water_user_created&from={at}")).bearer(&auditor).send().await;
    assert_eq!(later.body["items"].as_array().unwrap().len(), 1, "{}", later.text);
    assert_eq!(later.body["items"][0]["after"]["name"], "晚");
    let earlier =
        app.get(&format!("/api/v1/audit-events?action=water_user_created&to={at}")).bearer(&auditor).send().await;
    assert_eq!(earlier.body["items"][0]["after"]["name"], "早");
    assert_eq!(earlier.body["items"].as_array().unwrap().len(), 1);
    let bad = app.get("/api/v1/audit-events?from=yesterday").bearer(&auditor).send().await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "from");
}

/// Twenty wrong passwords for one account fired together: at most the configured five are evaluated, the rest
/// get 429; the owner's right password from that address then waits too, but from another address it works
/// (a guesser cannot lock the owner out). The same for client credentials.
#[actix_rt::test]
async fn parallel_guesses_are_counted_before_they_are_evaluated() {
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.db_pool_size = Some(12);
        s.trust_forwarded_for = true;
    })
    .await;
    let attacker =
        |body: Value| app.post("/api/v1/auth/login").header("x-forwarded-for", "203.0.113.9").json(&body).send();
    let results = join_all((0..20).map(|i| {
        attacker(json!({"username": if i % 2 == 0 { "ADMIN " } else { "admin" }, "password": "wrong guess"}))
    }))
    .await;
    let evaluated = results.iter().filter(|r| r.status == 401).count();
    let throttled = results.iter().filter(|r| r.status == 429).count();
    assert_eq!((evaluated, throttled), (5, 15), "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'login_failed'"), 5);
    attacker(json!({"username": "admin", "password": ADMIN_PASSWORD})).await.assert_problem(429, "rate_limited");
    let owner = app
        .post("/api/v1/auth/login")
        .header("x-forwarded-for", "10.0.0.7")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await;
    assert_eq!(owner.status, 200, "the owner signs in from their own address: {}", owner.text);

    let admin = owner.body["access_token"].as_str().unwrap().to_string();
    let sa = app
        .post("/api/v1/service-accounts")
        .bearer(&admin)
        .json(&json!({"name": "平台", "department": "office", "roles": ["platform"]}))
        .send()
        .await;
    let (client_id, secret) = (sa.body["client_id"].clone(), sa.body["client_secret"].clone());
    let results = join_all((0..12).map(|_| {
        app.post("/api/v1/auth/token")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": "guess"}))
            .send()
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.status == 401).count(), 5);
    let good = app
        .post("/api/v1/auth/token")
        .header("x-forwarded-for", "198.51.100.1")
        .json(&json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}))
        .send()
        .await;
    assert_eq!(good.status, 200, "{}", good.text);
}

/// A password change on one instance ends the sessions on another within the revocation refresh interval.
#[actix_rt::test]
async fn sessions_end_on_every_instance() {
    let a = spawn_app(Backend::Postgres).await;
    let b = a.second_instance().await;
    let admin = a.admin_token().await;
    let acct = new_account(&a, &admin, "chen.jie", json!(["finance"])).await;
    let id = acct["id"].as_str().unwrap();
    let (token, _) = login_ok(&a, "chen.jie", "initial password 1").await;
    assert_eq!(me(&b, &token).await, 200);
    let reset = a
        .post(&format!("/api/v1/accounts/{id}/password"))
        .bearer(&admin)
        .header("if-match", "\"1\"")
        .json(&json!({"password": "after the theft 1"}))
        .send()
        .await;
    assert_eq!(reset.status, 200);
    let mut refused = false;
    for _ in 0..40 {
        if me(&b, &token).await == 401 {
            refused = true;
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the other instance refuses the old token after its reload");
}

/// An empty bootstrap password (as compose passes it by default) means a generated one, written to the data
/// directory and removed once it is changed; a short one refuses to start.
#[actix_rt::test]
async fn an_empty_bootstrap_password_means_a_generated_one() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.bootstrap_admin_password = Some("".parse().unwrap())).await;
    app.login("admin", "").await.assert_problem(400, "validation_failed");
    let file = app.data_dir.join("initial-admin-password");
    let generated = std::fs::read_to_string(&file).expect("a generated password file").trim().to_string();
    assert!(generated.len() >= 20);
    let (token, _) = login_ok(&app, "admin", &generated).await;
    let id = app.get("/api/v1/auth/me").bearer(&token).send().await.body["sub"].as_str().unwrap().to_string();
    let changed = app
        .post(&format!("/api/v1/accounts/{id}/password"))
        .bearer(&token)
        .header("if-match", "\"1\"")
        .json(&json!({"password": "the admin's own choice", "current_password": generated}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert!(!file.exists(), "the generated password file goes away once it is no longer the password");

    let (mut settings, _, _) = test_settings(Backend::Sqlite);
    settings.bootstrap_admin_password = Some("short".parse().unwrap());
    let refused = shuiwu::startup::Application::build(settings);
    assert!(refused.is_err_and(|e| e.contains("SHUIWU_BOOTSTRAP_ADMIN_PASSWORD")));
}

/// Requests the HTTP parser itself refuses — raw UTF-8 or a brace in the target, too many headers — get a
/// problem body with a request id like every other error.
#[actix_rt::test]
async fn parser_refusals_are_problems_too() {
    use std::io::{Read, Write};
    let app = spawn_app(Backend::Sqlite).await;
    let addr = app.address.trim_start_matches("http://").to_string();
    let send = |request: Vec<u8>| {
        let addr = addr.clone();
        actix_rt::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(&request);
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).to_string()
        })
    };
    let many_headers: Vec<u8> =
        (0..200).flat_map(|i| format!("X-H{i}: {}\r\n", "a".repeat(100)).into_bytes()).collect();
    for (request, status, code) in [
        (b"GET /api/v1/water-users?q=\xe4\xb8\xad HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "400", "bad_request"),
        (b"GET /api/v1/water-users?q={\"a\"} HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "400", "bad_request"),
        (
            [b"GET /api/v1/water-users HTTP/1.1\r\nHost: x\r\n".to_vec(), many_headers, b"\r\n".to_vec()].concat(),
            "431",
            "request_header_fields_too_large",
        ),
    ] {
        let answer = send(request).await.unwrap();
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/problem+json") && head.contains("x-request-id: "), "{head}");
        let problem: Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["code"], code);
        assert!(problem["request_id"].is_string());
    }
}

/// Two admins demoting each other at once: one wins, the other is told it would leave no admin (409), never a
/// deadlock or a 500; one active admin remains.
#[actix_rt::test]
async fn two_admins_demoting_each_other_leave_one() {
    let app = spawn_app_with(Backend::Postgres, |s| s.db_pool_size = Some(8)).await;
    let mut admin = app.admin_token().await;
    for round in 0..4 {
        let b = new_account(&app, &admin, &format!("admin.b{round}"), json!(["admin"])).await;
        let b_id = b["id"].as_str().unwrap().to_string();
        let b_token = login_ok(&app, &format!("admin.b{round}"), "initial password 1").await.0;
        let a = new_account(&app, &admin, &format!("admin.a{round}"), json!(["admin"])).await;
        let a_id = a["id"].as_str().unwrap().to_string();
        let a_token = login_ok(&app, &format!("admin.a{round}"), "initial password 1").await.0;
        // Everyone else steps down first, so that a and b are the only admins.
        let others: Vec<(String, i64)> = {
            use diesel::prelude::*;
            use shuiwu::db::schema::accounts::dsl as acc;
            let mut conn = app.db();
            acc::accounts
                .filter(acc::roles.eq("admin").and(acc::active.eq(true)).and(acc::id.ne(&a_id)).and(acc::id.ne(&b_id)))
                .select((acc::id, acc::version))
                .load(&mut conn)
                .unwrap()
        };
        for (id, version) in others {
            let r = app
                .patch(&format!("/api/v1/accounts/{id}"))
                .bearer(&a_token)
                .header("if-match", &format!("\"{version}\""))
                .json(&json!({"roles": ["auditor"]}))
                .send()
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        let demote = |token: &str, id: &str| {
            app.patch(&format!("/api/v1/accounts/{id}"))
                .bearer(token)
                .header("if-match", "\"1\"")
                .json(&json!({"roles": ["auditor"]}))
                .send()
        };
        let (x, y) = futures_util::future::join(demote(&a_token, &b_id), demote(&b_token, &a_id)).await;
        let mut statuses = [x.status, y.status];
        statuses.sort();
        assert!(statuses == [200, 409] || statuses == [200, 401], "round {round}: {} / {}", x.text, y.text);
        for r in [&x, &y] {
            if r.status == 409 {
                r.assert_problem(409, "last_admin");
            }
        }
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM accounts WHERE active AND roles = 'admin'"),
            1,
            "round {round}: one active admin remains"
        );
        let a_survived =
            app.count(&format!("SELECT COUNT(*) AS n FROM accounts WHERE id = '{a_id}' AND roles = 'admin'")) == 1;
        admin = if a_survived { a_token } else { b_token };
    }
}

/// A stolen refresh token used at the moment its owner signs out: whatever wins, the session is over afterwards —
/// no refresh token of it works, and no access token minted from it does.
#[actix_rt::test]
async fn a_refresh_racing_logout_does_not_outlive_it() {
    let app = spawn_app_with(Backend::Postgres, |s| s.db_pool_size = Some(8)).await;
    for round in 0..6 {
        let (access, stolen) = login_ok(&app, "admin", ADMIN_PASSWORD).await;
        let (refreshed, logout) =
            futures_util::future::join(refresh(&app, &stolen), app.post("/api/v1/auth/logout").bearer(&access).send())
                .await;
        assert_eq!(logout.status, 204, "round {round}: {}", logout.text);
        if refreshed.status == 200 {
            let new_access = refreshed.body["access_token"].as_str().unwrap();
            let new_refresh = refreshed.body["refresh_token"].as_str().unwrap();
            assert_eq!(me(&app, new_access).await, 401, "round {round}: the racing refresh's access token");
            refresh(&app, new_refresh).await.assert_problem(401, "unauthorized");
        }
        refresh(&app, &stolen).await.assert_problem(401, "unauthorized");
    }
}
