use serde_json::json;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(departments_accounts_and_roles, service_accounts_and_client_credentials);

async fn departments_accounts_and_roles(app: TestApp) {
    let admin = app.admin_token().await;
    let d = app
        .post("/api/v1/departments")
        .bearer(&admin)
        .json(&json!({"code": "water_resources_section", "name": "水资源管理科"}))
        .send()
        .await;
    assert_eq!(d.status, 201, "{}", d.text);
    app.post("/api/v1/departments")
        .bearer(&admin)
        .json(&json!({"code": "water_resources_section", "name": "x"}))
        .send()
        .await
        .assert_problem(409, "conflict");
    let list = app.get("/api/v1/departments").bearer(&admin).send().await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);

    let bad = app
        .post("/api/v1/accounts")
        .bearer(&admin)
        .json(&json!({"username": "A", "display_name": "", "department": "nowhere", "roles": ["platform"], "password": "short"}))
        .send()
        .await;
    bad.assert_problem(400, "validation_failed");
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["username", "display_name", "roles", "password"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let unknown_dept = app
        .post("/api/v1/accounts")
        .bearer(&admin)
        .json(&json!({"username": "zhang.wei", "display_name": "张伟", "department": "nowhere", "roles": ["water_resources"], "password": "a long passphrase"}))
        .send()
        .await;
    unknown_dept.assert_problem(400, "validation_failed");

    let created = app
        .post("/api/v1/accounts")
        .bearer(&admin)
        .json(&json!({"username": "zhang.wei", "display_name": "张伟", "department": "water_resources_section", "roles": ["water_resources"], "password": "a long passphrase"}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.body.get("password_hash").is_none() && created.body.get("password").is_none());
    let id = created.body["id"].as_str().unwrap().to_string();
    let hash: String = {
        use diesel::prelude::*;
        use shuiwu::db::schema::accounts;
        accounts::table.find(&id).select(accounts::password_hash).first(&mut app.db()).unwrap()
    };
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    app.post("/api/v1/accounts")
        .bearer(&admin)
        .json(&json!({"username": "zhang.wei", "display_name": "x", "department": "office", "roles": ["leader"], "password": "a long passphrase"}))
        .send()
        .await
        .assert_problem(409, "conflict");

    let login = app.login("zhang.wei", "a long passphrase").await;
    assert_eq!(login.status, 200);
    let token = login.body["access_token"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/auth/me").bearer(&token).send().await;
    assert_eq!(me.body["roles"], json!(["water_resources"]));
    assert_eq!(me.body["department"], "water_resources_section");
    // Staff may not manage accounts.
    app.get("/api/v1/accounts").bearer(&token).send().await.assert_problem(403, "forbidden");

    // Changing roles voids the account's tokens at once.
    let got = app.get(&format!("/api/v1/accounts/{id}")).bearer(&admin).send().await;
    app.patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .json(&json!({"roles": ["leader"]}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &got.etag())
        .json(&json!({"roles": ["platform"]}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    let patched = app
        .patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &got.etag())
        .json(&json!({"roles": ["water_resources", "inspector"]}))
        .send()
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["roles"], json!(["water_resources", "inspector"]));
    assert_eq!(patched.body["version"], 2);
    app.get("/api/v1/auth/me").bearer(&token).send().await.assert_problem(401, "unauthorized");
    // Ask again after the second boundary so the new token is issued after the revocation.
    actix_rt::time::sleep(std::time::Duration::from_millis(2100)).await;
    let relog = app.login("zhang.wei", "a long passphrase").await;
    let token = relog.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/v1/auth/me").bearer(&token).send().await.body["roles"],
        json!(["water_resources", "inspector"])
    );

    // Own password: needs the current one; another's: admin only.
    let other =
        app.get("/api/v1/accounts").bearer(&admin).send().await.body["items"][0]["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/accounts/{other}/password"))
        .bearer(&token)
        .header("if-match", "\"1\"")
        .json(&json!({"password": "another long passphrase"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    let cur = app.get(&format!("/api/v1/accounts/{id}")).bearer(&admin).send().await.etag();
    app.post(&format!("/api/v1/accounts/{id}/password"))
        .bearer(&token)
        .header("if-match", &cur)
        .json(&json!({"password": "another long passphrase"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    app.post(&format!("/api/v1/accounts/{id}/password"))
        .bearer(&token)
        .header("if-match", &cur)
        .json(&json!({"password": "another long passphrase", "current_password": "wrong wrong wrong"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");
    let changed = app
        .post(&format!("/api/v1/accounts/{id}/password"))
        .bearer(&token)
        .header("if-match", &cur)
        .json(&json!({"password": "another long passphrase", "current_password": "a long passphrase"}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    app.login("zhang.wei", "a long passphrase").await.assert_problem(401, "unauthorized");
    assert_eq!(app.login("zhang.wei", "another long passphrase").await.status, 200);

    // Deactivated accounts cannot sign in.
    let cur = app.get(&format!("/api/v1/accounts/{id}")).bearer(&admin).send().await.etag();
    let off = app
        .patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &cur)
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(off.body["active"], false);
    app.login("zhang.wei", "another long passphrase").await.assert_problem(401, "unauthorized");

    // All of it is in the audit trail.
    for action in ["department_created", "account_created", "account_updated", "password_changed", "login"] {
        assert!(
            app.count(&format!("SELECT COUNT(*) AS n FROM audit_events WHERE action = '{action}'")) >= 1,
            "{action}"
        );
    }
}

async fn service_accounts_and_client_credentials(app: TestApp) {
    let admin = app.admin_token().await;
    let sa = app
        .post("/api/v1/service-accounts")
        .bearer(&admin)
        .json(&json!({"name": "省水资源平台", "department": "office", "roles": ["platform"]}))
        .send()
        .await;
    assert_eq!(sa.status, 201, "{}", sa.text);
    let client_id = sa.body["client_id"].as_str().unwrap().to_string();
    let secret = sa.body["client_secret"].as_str().unwrap().to_string();
    let id = sa.body["id"].as_str().unwrap().to_string();
    let listed = app.get("/api/v1/service-accounts").bearer(&admin).send().await;
    assert_eq!(listed.body["items"][0]["client_id"], client_id.as_str());
    assert!(listed.body["items"][0].get("client_secret").is_none());
    assert!(!listed.text.contains(&secret));

    let grant =
        |secret: String| json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret});
    let t = app.post("/api/v1/auth/token").json(&grant(secret.clone())).send().await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert!(t.body.get("refresh_token").is_none());
    let token = t.body["access_token"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/auth/me").bearer(&token).send().await;
    assert_eq!(me.body["roles"], json!(["platform"]));
    assert_eq!(me.body["display_name"], "省水资源平台");
    assert_eq!(app.get("/api/v1/changes").bearer(&token).send().await.status, 200);
    app.get("/api/v1/audit-events").bearer(&token).send().await.assert_problem(403, "forbidden");
    app.post("/api/v1/auth/token").json(&grant("wrong".into())).send().await.assert_problem(401, "unauthorized");
    app.post("/api/v1/auth/token")
        .json(&json!({"grant_type": "password", "client_id": "x", "client_secret": "y"}))
        .send()
        .await
        .assert_problem(400, "validation_failed");

    // Rotation: the old secret and tokens stop working.
    let rotated = app
        .post(&format!("/api/v1/service-accounts/{id}/rotate-secret"))
        .bearer(&admin)
        .header("if-match", "\"1\"")
        .send()
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.body["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    app.post("/api/v1/auth/token").json(&grant(secret)).send().await.assert_problem(401, "unauthorized");
    app.get("/api/v1/auth/me").bearer(&token).send().await.assert_problem(401, "unauthorized");
    actix_rt::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.post("/api/v1/auth/token").json(&grant(new_secret)).send().await.status, 200);
    // Secrets are not kept in the clear.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM service_accounts WHERE secret_hash = '{}'",
            rotated.body["client_secret"].as_str().unwrap()
        )),
        0
    );
}
