//! Request-rate limits of service accounts: each account its own budget (configurable, counted in the database),
//! 429 with `Retry-After` past it, shared by every instance on one database; staff are not limited.

use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::helpers::*;

/// A platform's service account with `limit` requests a minute: its id, its record and a token of it.
async fn platform(app: &TestApp, name: &str, limit: Value) -> (String, Value, String) {
    let admin = app.admin_token().await;
    let sa = app
        .post("/api/v1/service-accounts")
        .bearer(&admin)
        .json(&json!({"name": name, "department": "office", "roles": ["platform"], "rate_limit_per_minute": limit}))
        .send()
        .await;
    assert_eq!(sa.status, 201, "{}", sa.text);
    let grant = json!({"grant_type": "client_credentials", "client_id": sa.body["client_id"], "client_secret": sa.body["client_secret"]});
    let t = app.post("/api/v1/auth/token").json(&grant).send().await;
    assert_eq!(t.status, 200, "{}", t.text);
    let token = t.body["access_token"].as_str().unwrap().to_string();
    (sa.body["id"].as_str().unwrap().to_string(), sa.body.clone(), token)
}

/// Sends `n` reads at once, spread over `apps`; answers their statuses (and checks each refusal).
async fn burst(apps: &[&TestApp], token: &str, n: usize) -> (usize, usize) {
    let reads = (0..n).map(|i| {
        let app = apps[i % apps.len()];
        async move { app.get("/api/v1/water-users?limit=1").bearer(token).send().await }
    });
    let answers = futures_util::future::join_all(reads).await;
    let mut ok = 0;
    let mut limited = 0;
    for r in answers {
        match r.status {
            200 => ok += 1,
            429 => {
                r.assert_problem(429, "rate_limited");
                let wait: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
                assert!((1..=10).contains(&wait), "Retry-After {wait}");
                limited += 1;
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    (ok, limited)
}

async fn each_service_account_has_its_own_budget(app: TestApp) {
    let t0 = chrono::Utc::now();
    app.clock.set(t0);
    // 6 a minute: a burst of 6, then one every 10 s.
    let (id, record, token) = platform(&app, "省水资源监控平台", json!(6)).await;
    assert_eq!(record["rate_limit_per_minute"], 6);
    assert_eq!(burst(&[&app], &token, 10).await, (6, 4), "exactly the burst gets through");
    // Another account has a budget of its own (the default, 600 a minute); staff are not counted.
    let (_, other, other_token) = platform(&app, "市级平台", Value::Null).await;
    assert_eq!(other["rate_limit_per_minute"], Value::Null);
    assert_eq!(burst(&[&app], &other_token, 30).await, (30, 0));
    let staff = app.token(&[Role::WaterResources]);
    assert_eq!(burst(&[&app], &staff, 30).await, (30, 0));
    // Ten seconds later (and a little: the burst came a little after t0) one more request is due, and only one.
    app.clock.set(t0 + chrono::TimeDelta::seconds(11));
    assert_eq!(burst(&[&app], &token, 3).await, (1, 2));

    // The administrator raises the limit: the account starts afresh under it at once.
    let admin = app.admin_token().await;
    let listed = app.get("/api/v1/service-accounts").bearer(&admin).send().await;
    let version =
        listed.body["items"].as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap()["version"].clone();
    let r = app
        .patch(&format!("/api/v1/service-accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &format!("\"{version}\""))
        .json(&json!({"rate_limit_per_minute": 120}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["rate_limit_per_minute"], 120);
    assert_eq!(burst(&[&app], &token, 15).await, (12, 3), "a burst of a tenth of 120, at least 10");
    // Bad limits are refused and change nothing.
    for bad in [json!(0), json!(1_000_001), json!("many")] {
        let r = app
            .patch(&format!("/api/v1/service-accounts/{id}"))
            .bearer(&admin)
            .header("if-match", &r.etag())
            .json(&json!({"rate_limit_per_minute": bad}))
            .send()
            .await;
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "rate_limit_per_minute", "{}", r.text);
    }
    let created = app
        .post("/api/v1/service-accounts")
        .bearer(&admin)
        .json(&json!({"name": "x", "department": "office", "roles": ["platform"], "rate_limit_per_minute": -1}))
        .send()
        .await;
    created.assert_problem(400, "validation_failed");
    // Only the administrator sets limits.
    app.patch(&format!("/api/v1/service-accounts/{id}"))
        .bearer(&app.token(&[Role::Leader]))
        .header("if-match", &r.etag())
        .json(&json!({"rate_limit_per_minute": 1}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    // Disabled: its tokens stop working at once.
    let r = app
        .patch(&format!("/api/v1/service-accounts/{id}"))
        .bearer(&admin)
        .header("if-match", &r.etag())
        .json(&json!({"active": false, "rate_limit_per_minute": null}))
        .send()
        .await;
    assert_eq!(
        (r.status, r.body["active"].clone(), r.body["rate_limit_per_minute"].clone()),
        (200, json!(false), Value::Null)
    );
    app.get("/api/v1/water-users").bearer(&token).send().await.assert_problem(401, "unauthorized");
    // The changes are in the audit trail.
    let events = app
        .get(&format!("/api/v1/audit-events?entity_id={id}&action=service_account_updated"))
        .bearer(&app.token(&[Role::Auditor]))
        .send()
        .await;
    assert_eq!(events.body["items"].as_array().unwrap().len(), 2, "{}", events.text);
}

/// Two instances on one database count one budget: parallel requests to both never get more than the burst.
async fn instances_share_the_budget(app: TestApp) {
    let other = app.second_instance().await;
    let (_, _, token) = platform(&app, "省水资源监控平台", json!(8)).await;
    // The other instance learns of the new account at its next reload of accounts (every second).
    actix_rt::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (ok, limited) = burst(&[&app, &other], &token, 20).await;
    assert_eq!((ok, limited), (8, 12));
    let budgets = app.count("SELECT COUNT(*) AS n FROM request_budgets");
    assert_eq!(budgets, 1);
}

crate::on_both_databases!(each_service_account_has_its_own_budget, instances_share_the_budget);
