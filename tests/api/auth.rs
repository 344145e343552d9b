use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use shuiwu::security::{Claims, Role};

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    login_me_refresh_logout,
    failed_logins_are_throttled_and_audited,
    bad_tokens_are_refused,
    revoked_subject_tokens_are_refused
);

async fn login_me_refresh_logout(app: TestApp) {
    let r = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    let access = r.body["access_token"].as_str().unwrap().to_string();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_string();

    let me = app.get("/api/v1/auth/me").bearer(&access).send().await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], "admin");
    assert_eq!(me.body["department"], "office");
    assert_eq!(me.body["roles"], json!(["admin"]));
    assert_eq!(me.body["display_name"], "Administrator");

    // Refresh gives a new pair; the old refresh token is spent.
    let r2 = app.post("/api/v1/auth/refresh").json(&json!({"refresh_token": refresh})).send().await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    let access2 = r2.body["access_token"].as_str().unwrap().to_string();
    let refresh2 = r2.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh);
    assert_eq!(app.get("/api/v1/auth/me").bearer(&access2).send().await.status, 200);

    // Replaying the spent token is refused and ends the whole session: refresh2, and the session's access tokens.
    let other = app.login("admin", ADMIN_PASSWORD).await.body["access_token"].as_str().unwrap().to_string();
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .assert_problem(401, "unauthorized");
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": refresh2}))
        .send()
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/auth/me").bearer(&access).send().await.assert_problem(401, "unauthorized");
    app.get("/api/v1/auth/me").bearer(&access2).send().await.assert_problem(401, "unauthorized");

    // Logout revokes the access token and its refresh token.
    let r3 = app.login("admin", ADMIN_PASSWORD).await;
    let access3 = r3.body["access_token"].as_str().unwrap().to_string();
    let refresh3 = r3.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(app.post("/api/v1/auth/logout").bearer(&access3).send().await.status, 204);
    let after = app.get("/api/v1/auth/me").bearer(&access3).send().await;
    after.assert_problem(401, "unauthorized");
    assert!(after.header("www-authenticate").unwrap().starts_with("Bearer"));
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": refresh3}))
        .send()
        .await
        .assert_problem(401, "unauthorized");
    // The revocations (the replayed session, the signed-out one) are in the database, for every instance.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM revocations WHERE kind = 'session'"), 2);
    // Other sessions are unaffected.
    assert_eq!(app.get("/api/v1/auth/me").bearer(&other).send().await.status, 200);
}

async fn failed_logins_are_throttled_and_audited(app: TestApp) {
    for _ in 0..5 {
        let r = app.login("admin", "wrong password!").await;
        r.assert_problem(401, "unauthorized");
        assert!(!r.body["detail"].as_str().unwrap().contains("password is wrong"));
    }
    // An unknown user answers exactly like a wrong password.
    let unknown = app.login("nobody", "wrong password!").await;
    unknown.assert_problem(401, "unauthorized");
    let r = app.login("admin", "wrong password!").await;
    r.assert_problem(429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    // Even the right password waits while throttled.
    app.login("admin", ADMIN_PASSWORD).await.assert_problem(429, "rate_limited");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'login_failed'"), 6);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM login_failures WHERE username_key LIKE 'user:admin|ip:%'"), 5);
    // Throttled attempts are audited too, once a minute per key (a flood cannot grow the trail).
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'sign_in_throttled'"), 1);
}

fn claims(app: &TestApp) -> Claims {
    let now = chrono::Utc::now().timestamp();
    let _ = app;
    Claims {
        iss: "shuiwu".into(),
        aud: "shuiwu-api".into(),
        sub: "someone".into(),
        exp: now + 600,
        nbf: now,
        iat: now,
        jti: uuid::Uuid::now_v7().to_string(),
        department: "office".into(),
        roles: vec!["admin".into()],
        username: None,
        sid: None,
        epoch: 0,
    }
}

fn sign(c: &Claims, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), c, &EncodingKey::from_secret(secret)).unwrap()
}

async fn bad_tokens_are_refused(app: TestApp) {
    use base64::Engine;
    let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let good = claims(&app);
    let key = JWT_SECRET.as_bytes();
    assert_eq!(app.get("/api/v1/water-users").bearer(&sign(&good, Algorithm::HS256, key)).send().await.status, 200);

    let now = chrono::Utc::now().timestamp();
    let mut cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&serde_json::to_value(&good).unwrap())),
        ),
        ("HS384 with the same key", sign(&good, Algorithm::HS384, key)),
        ("wrong key", sign(&good, Algorithm::HS256, b"another-secret-another-secret-another-secret")),
        ("malformed", "not.a.token".into()),
        ("garbage", "abc".into()),
    ];
    let mut c = good.clone();
    c.iss = "someone-else".into();
    cases.push(("wrong iss", sign(&c, Algorithm::HS256, key)));
    let mut c = good.clone();
    c.aud = "other-api".into();
    cases.push(("wrong aud", sign(&c, Algorithm::HS256, key)));
    let mut c = good.clone();
    c.exp = now - 120;
    c.iat = now - 1000;
    c.nbf = now - 1000;
    cases.push(("expired", sign(&c, Algorithm::HS256, key)));
    let mut c = good.clone();
    c.nbf = now + 600;
    c.exp = now + 1200;
    cases.push(("not yet valid", sign(&c, Algorithm::HS256, key)));
    let mut no_jti = serde_json::to_value(&good).unwrap();
    no_jti.as_object_mut().unwrap().remove("jti");
    cases.push((
        "no jti",
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &no_jti, &EncodingKey::from_secret(key)).unwrap(),
    ));
    for (what, token) in cases {
        let r = app.get("/api/v1/water-users").bearer(&token).send().await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        r.assert_problem(401, "unauthorized");
        assert!(r.header("www-authenticate").is_some(), "{what}");
    }
    app.get("/api/v1/water-users").send().await.assert_problem(401, "unauthorized");
    app.get("/api/v1/water-users")
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .assert_problem(401, "unauthorized");
}

async fn revoked_subject_tokens_are_refused(app: TestApp) {
    // A token revoked on another instance (written straight to the database) is refused after the reload.
    let token = app.token_for("remote-sub", &[Role::Auditor]);
    assert_eq!(app.get("/api/v1/water-users").bearer(&token).send().await.status, 200);
    let jti = app.keys.verify(&token).unwrap().jti;
    let now = chrono::Utc::now().naive_utc();
    let exp = (now + chrono::TimeDelta::hours(1)).format("%Y-%m-%d %H:%M:%S");
    let created = now.format("%Y-%m-%d %H:%M:%S");
    app.sql(&format!(
        "INSERT INTO revocations (id, kind, value, expires_at, created_at) VALUES ('r1', 'jti', '{jti}', '{exp}', '{created}')"
    ));
    let mut refused = false;
    for _ in 0..40 {
        if app.get("/api/v1/water-users").bearer(&token).send().await.status == 401 {
            refused = true;
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a revocation in the database must reach this instance");
}

#[actix_rt::test]
async fn external_issuers_with_pinned_algorithms() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        let dir = s.data_dir.clone().unwrap();
        std::fs::copy(fixtures.join("ed25519-public.pem"), dir.join("ed.pem")).unwrap();
        std::fs::copy(fixtures.join("rsa-public.pem"), dir.join("rsa.pem")).unwrap();
        let list = json!([
            {"issuer": "https://idp.gov.example", "algorithm": "EdDSA", "public_key_pem_file": "ed.pem"},
            {"issuer": "https://platform.example", "algorithm": "RS256", "public_key_pem_file": "rsa.pem",
             "roles": ["platform", "water_resources"]}
        ]);
        std::fs::write(dir.join("issuers.json"), list.to_string()).unwrap();
        s.jwt_external_issuers = Some(dir.join("issuers.json"));
    })
    .await;
    let ed = EncodingKey::from_ed_pem(&std::fs::read(fixtures.join("ed25519-private.pem")).unwrap()).unwrap();
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join("rsa-private.pem")).unwrap()).unwrap();
    let mut c = claims(&app);
    c.iss = "https://idp.gov.example".into();
    c.roles = vec!["auditor".into()];
    let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &c, &ed).unwrap();
    let me = app.get("/api/v1/auth/me").bearer(&token).send().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["roles"], json!(["auditor"]));

    let mut c2 = claims(&app);
    c2.iss = "https://platform.example".into();
    c2.roles = vec!["platform".into()];
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &c2, &rsa).unwrap();
    assert_eq!(app.get("/api/v1/water-users").bearer(&token).send().await.status, 200);

    // The algorithm is fixed per issuer: an HS256 token claiming the EdDSA issuer is refused,
    // even when signed with the service's own secret; so is an RS256 token for the EdDSA issuer.
    app.get("/api/v1/auth/me")
        .bearer(&sign(&c, Algorithm::HS256, JWT_SECRET.as_bytes()))
        .send()
        .await
        .assert_problem(401, "unauthorized");
    let crossed = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &c, &rsa).unwrap();
    app.get("/api/v1/auth/me").bearer(&crossed).send().await.assert_problem(401, "unauthorized");
    // And the service's own issuer accepts HS256 only.
    let own = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims(&app), &ed).unwrap();
    app.get("/api/v1/auth/me").bearer(&own).send().await.assert_problem(401, "unauthorized");

    // An issuer grants only the roles configured for it: never admin by default, here not auditor either.
    let mut c3 = claims(&app);
    c3.iss = "https://idp.gov.example".into();
    c3.roles = vec!["admin".into(), "auditor".into()];
    let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &c3, &ed).unwrap();
    assert_eq!(app.get("/api/v1/auth/me").bearer(&token).send().await.body["roles"], json!(["auditor"]));
    app.post("/api/v1/departments")
        .bearer(&token)
        .json(&json!({"code": "x", "name": "x"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    let mut c4 = claims(&app);
    c4.iss = "https://platform.example".into();
    c4.roles = vec!["auditor".into(), "water_resources".into()];
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &c4, &rsa).unwrap();
    assert_eq!(app.get("/api/v1/auth/me").bearer(&token).send().await.body["roles"], json!(["water_resources"]));
    // Its subjects are kept apart from local ones: the trail and idempotency keys record `issuer#subject`, and
    // `/auth/me` shows it so (never a local account that happens to share the id).
    let created = app
        .post("/api/v1/water-users")
        .bearer(&token)
        .header("idempotency-key", "ext-1")
        .json(&water_user_body("外部公司", REAL_CODES[4]))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM idempotency_keys WHERE scope = 'https://platform.example#someone' AND key = 'ext-1'"),
        1
    );
    assert_eq!(app.get("/api/v1/auth/me").bearer(&token).send().await.body["sub"], "https://platform.example#someone");
    // A local subject with the same id and key is another caller: its request runs (here: a duplicate, 409).
    let local = app.token_for("someone", &[Role::WaterResources]);
    let again = app
        .post("/api/v1/water-users")
        .bearer(&local)
        .header("idempotency-key", "ext-1")
        .json(&water_user_body("外部公司", REAL_CODES[4]))
        .send()
        .await;
    again.assert_problem(409, "conflict");
    // Role rules hold for external tokens too: a platform cannot also be a leader.
    let mut c5 = claims(&app);
    c5.iss = "https://platform.example".into();
    c5.roles = vec!["platform".into(), "water_resources".into()];
    let ok = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &c5, &rsa).unwrap();
    assert_eq!(app.get("/api/v1/auth/me").bearer(&ok).send().await.status, 200);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_events WHERE actor_sub = 'https://platform.example#someone'"),
        1
    );
}
