//! Several stateless instances on one PostgreSQL: everything that must be shared lives in the database.

use shuiwu::identity::Role;

use crate::helpers::*;

#[actix_rt::test]
async fn two_instances_share_one_postgresql() {
    let a = spawn_app(Backend::Postgres).await;
    let b = a.second_instance().await;

    // Writes through both at once: one audit chain, one gapless feed.
    let t = a.token(&[Role::WaterResources]);
    let mut reqs = Vec::new();
    for i in 0..20u64 {
        let app = if i % 2 == 0 { &a } else { &b };
        reqs.push(
            app.post("/api/v1/water-users")
                .bearer(&t)
                .json(&water_user_body(&format!("双实例{i}"), &credit_code(i)))
                .send(),
        );
    }
    for r in futures_util::future::join_all(reqs).await {
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let v = b.get("/api/v1/audit-events/verify").bearer(&b.token(&[Role::Auditor])).send().await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(a.count("SELECT COUNT(*) AS n FROM audit_events WHERE seq IS NULL"), 0);
    assert_eq!(whole_feed(&b, "water_user").await.len(), 20);

    // An Idempotency-Key used on one instance replays on the other.
    let body = water_user_body("幂等", REAL_CODES[0]);
    let first = a.post("/api/v1/water-users").bearer(&t).header("idempotency-key", "shared").json(&body).send().await;
    assert_eq!(first.status, 201);
    let again = b.post("/api/v1/water-users").bearer(&t).header("idempotency-key", "shared").json(&body).send().await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotency-replayed").as_deref(), Some("true"));
    assert_eq!(again.body["id"], first.body["id"]);

    // Login throttling counts failures from every instance.
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.login("admin", "wrong password!").await.assert_problem(401, "unauthorized");
    }
    a.login("admin", ADMIN_PASSWORD).await.assert_problem(429, "rate_limited");
    b.login("admin", ADMIN_PASSWORD).await.assert_problem(429, "rate_limited");

    // A logout on one instance reaches the other within its reload interval.
    let token = b.token_for("someone", &[Role::Auditor]);
    assert_eq!(b.get("/api/v1/water-users").bearer(&token).send().await.status, 200);
    assert_eq!(a.post("/api/v1/auth/logout").bearer(&token).send().await.status, 204);
    let mut refused = false;
    for _ in 0..30 {
        if b.get("/api/v1/water-users").bearer(&token).send().await.status == 401 {
            refused = true;
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "revocation reaches the other instance");

    // Permit numbers from both instances never collide.
    let clerk = a.token(&[Role::WaterResources]);
    let leader = a.token(&[Role::Leader]);
    let holder = a.get("/api/v1/water-users?limit=1").bearer(&clerk).send().await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for _ in 0..6 {
        let p = a
            .post("/api/v1/permits")
            .bearer(&clerk)
            .json(&crate::permits::permit_body(&holder, None, "surface", 10))
            .send()
            .await;
        let id = p.body["id"].as_str().unwrap().to_string();
        assert_eq!(
            a.post(&format!("/api/v1/permits/{id}/submit"))
                .bearer(&clerk)
                .header("if-match", "\"1\"")
                .send()
                .await
                .status,
            200
        );
        ids.push(id);
    }
    let reqs: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let app = if i % 2 == 0 { &a } else { &b };
            app.post(&format!("/api/v1/permits/{id}/approve"))
                .bearer(&leader)
                .header("if-match", "\"2\"")
                .json(&crate::permits::approve_body())
                .send()
        })
        .collect();
    let mut numbers: Vec<String> = futures_util::future::join_all(reqs)
        .await
        .into_iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["permit_no"].as_str().unwrap().to_string()
        })
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 6);
}
