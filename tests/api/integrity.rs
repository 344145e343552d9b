//! The shared write path under pressure: requests fired together on PostgreSQL (READ COMMITTED, where a lost
//! update can really happen), retries with one Idempotency-Key, an abandoned key, chain verification while others
//! write, and the clock crossing midnight in Shanghai.

use chrono::TimeDelta;
use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::db::DbConn;
use shuiwu::identity::Role;
use shuiwu::write::idempotency::{claim, Claim, Claimed, IN_FLIGHT_TAKEOVER};
use shuiwu::write::Reply;

use crate::helpers::*;
use crate::on_both_databases;
use crate::permits::{act, approve_body, create, permit_body, staff};

on_both_databases!(
    an_abandoned_key_is_taken_over_and_the_first_claim_can_no_longer_commit,
    verify_stays_consistent_while_others_write,
    the_bureau_date_turns_at_16_utc,
);

const N: usize = 10;

async fn pg_app() -> TestApp {
    spawn_app_with(Backend::Postgres, |s| s.db_pool_size = Some(12)).await
}

/// Exactly one success (`ok`), every other answer 412; returns the winner.
fn one_winner(results: &[Resp], ok: u16) -> &Resp {
    let winners: Vec<&Resp> = results.iter().filter(|r| r.status == ok).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one winner: {:?}",
        results.iter().map(|r| (r.status, &r.text)).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != ok) {
        r.assert_problem(412, "precondition_failed");
    }
    winners[0]
}

fn events(app: &TestApp, action: &str, entity_id: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) AS n FROM audit_events WHERE action = '{action}' AND entity_id = '{entity_id}'"
    ))
}

fn permit_numbers_consumed(app: &TestApp) -> i64 {
    app.count("SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT) AS n FROM counters WHERE name LIKE 'permit_no:%'")
}

/// Ten approvals of one application with one ETag (a double-click, a mobile retry): one approval, one permit
/// number, one audit event, and the stored number is the one answered. The same for suspensions.
#[actix_rt::test]
async fn racing_actions_with_one_etag_have_one_winner() {
    let app = pg_app().await;
    let s = staff(&app).await;
    for round in 0..3 {
        let p = create(&app, &s, &permit_body(&s.holder, None, "groundwater_deep", 1000)).await;
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(act(&app, &s.clerk, &id, "submit", json!({})).await.status, 200);
        let path = format!("/api/v1/permits/{id}/approve");
        let results = join_all(
            (0..N).map(|_| app.post(&path).bearer(&s.leader).header("if-match", "\"2\"").json(&approve_body()).send()),
        )
        .await;
        let winner = one_winner(&results, 200);
        assert_eq!(winner.etag(), "\"3\"");
        let stored = app.get(&format!("/api/v1/permits/{id}")).bearer(&s.clerk).send().await;
        assert_eq!(stored.body["permit_no"], winner.body["permit_no"], "the stored number is the one answered");
        assert_eq!(stored.body["version"], 3);
        assert_eq!(events(&app, "permit_approve", &id), 1);
        assert_eq!(permit_numbers_consumed(&app), round + 1, "one permit number per approval");

        let path = format!("/api/v1/permits/{id}/suspend");
        let results = join_all((0..N).map(|i| {
            app.post(&path)
                .bearer(&s.clerk)
                .header("if-match", "\"3\"")
                .json(&json!({"reason": format!("原因{i}")}))
                .send()
        }))
        .await;
        assert_eq!(one_winner(&results, 200).body["status"], "suspended");
        let history = app.get(&format!("/api/v1/permits/{id}/history")).bearer(&s.clerk).send().await;
        let actions: Vec<&str> =
            history.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["created", "submit", "approve", "suspend"]);
        assert_eq!(events(&app, "permit_suspend", &id), 1);
    }
}

/// Ten PATCHes of one record with one ETag, each with its own change: one is applied and audited, the others
/// get 412, and what is stored is what the winner was answered — for every resource that has a PATCH or an
/// action on the shared write path.
#[actix_rt::test]
async fn racing_patches_with_one_etag_have_one_winner() {
    let app = pg_app().await;
    let clerk = app.token(&[Role::WaterResources]);
    let admin = app.token(&[Role::Admin]);

    async fn race(app: &TestApp, token: &str, path: &str, bodies: Vec<Value>) -> Value {
        let results =
            join_all(bodies.iter().map(|b| app.patch(path).bearer(token).header("if-match", "\"1\"").json(b).send()))
                .await;
        let winner = one_winner(&results, 200).body.clone();
        let stored = app.get(path).bearer(token).send().await;
        assert_eq!(stored.body, winner, "{path}: the stored record is the one answered");
        assert_eq!(stored.body["version"], 2);
        winner
    }

    let user = app.post("/api/v1/water-users").bearer(&clerk).json(&water_user_body("甲", REAL_CODES[0])).send().await;
    let uid = user.body["id"].as_str().unwrap().to_string();
    let bodies = (0..N).map(|i| json!({"name": format!("名称{i}")})).collect();
    race(&app, &clerk, &format!("/api/v1/water-users/{uid}"), bodies).await;
    assert_eq!(events(&app, "water_user_updated", &uid), 1);

    let zone = app
        .post("/api/v1/water-zones")
        .bearer(&admin)
        .json(&json!({"name": "区", "source_type": "surface", "zone_class": "normal", "allowable_m3_per_year": 1000}))
        .send()
        .await;
    let zid = zone.body["id"].as_str().unwrap().to_string();
    let bodies = (0..N).map(|i| json!({"allowable_m3_per_year": 2000 + i})).collect();
    race(&app, &admin, &format!("/api/v1/water-zones/{zid}"), bodies).await;
    assert_eq!(events(&app, "zone_updated", &zid), 1);

    let permit =
        app.post("/api/v1/permits").bearer(&clerk).json(&permit_body(&uid, Some(&zid), "surface", 100)).send().await;
    let pid = permit.body["id"].as_str().unwrap().to_string();
    let bodies = (0..N).map(|i| json!({"annual_volume_m3": 100 + i})).collect();
    race(&app, &clerk, &format!("/api/v1/permits/{pid}"), bodies).await;
    assert_eq!(events(&app, "permit_updated", &pid), 1);

    let account = app
        .post("/api/v1/accounts")
        .bearer(&admin)
        .json(&json!({"username": "li.na", "display_name": "李娜", "department": "office", "roles": ["auditor"],
            "password": "a long enough password"}))
        .send()
        .await;
    let aid = account.body["id"].as_str().unwrap().to_string();
    let bodies = (0..N).map(|i| json!({"display_name": format!("李娜{i}")})).collect();
    race(&app, &admin, &format!("/api/v1/accounts/{aid}"), bodies).await;
    assert_eq!(events(&app, "account_updated", &aid), 1);

    // Secret rotation: one new secret wins, and it is the one that works.
    let sa = app
        .post("/api/v1/service-accounts")
        .bearer(&admin)
        .json(&json!({"name": "省平台", "department": "office", "roles": ["platform"]}))
        .send()
        .await;
    let (sid, client_id) = (sa.body["id"].as_str().unwrap().to_string(), sa.body["client_id"].clone());
    let path = format!("/api/v1/service-accounts/{sid}/rotate-secret");
    let results = join_all((0..N).map(|_| app.post(&path).bearer(&admin).header("if-match", "\"1\"").send())).await;
    let winner = one_winner(&results, 200);
    assert_eq!(events(&app, "service_account_secret_rotated", &sid), 1);
    for r in &results {
        let secret = r.body["client_secret"].clone();
        let grant = app
            .post("/api/v1/auth/token")
            .json(&json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}))
            .send()
            .await;
        assert_eq!(grant.status == 200, std::ptr::eq(r, winner), "only the answered secret works: {}", grant.text);
    }
}

/// Retries of one request with one Idempotency-Key, all at once (a mobile app on a poor connection): one record,
/// one audit event; every answer is the original outcome or 409 "still running", never a second write.
#[actix_rt::test]
async fn retries_with_one_key_fired_together_write_once() {
    let app = pg_app().await;
    let s = staff(&app).await;
    let body = water_user_body("重试公司", REAL_CODES[3]);
    let results =
        join_all((0..N).map(|_| {
            app.post("/api/v1/water-users").bearer(&s.clerk).header("idempotency-key", "r-1").json(&body).send()
        }))
        .await;
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    for r in &results {
        if r.status != 201 {
            r.assert_problem(409, "idempotency_key_in_flight");
        }
        if r.status == 201 {
            assert_eq!(r.body, created[0].body, "every success is the one outcome");
        }
    }
    let id = created[0].body["id"].as_str().unwrap();
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM water_users WHERE credit_code = '{}'", REAL_CODES[3])), 1);
    assert_eq!(events(&app, "water_user_created", id), 1);
    // Retried after it finished: replayed, nothing written.
    let again =
        app.post("/api/v1/water-users").bearer(&s.clerk).header("idempotency-key", "r-1").json(&body).send().await;
    assert_eq!((again.status, &again.body), (201, &created[0].body));
    assert_eq!(again.header("idempotency-replayed").as_deref(), Some("true"));

    // An action retried with its key and its (soon stale) ETag: one approval; the replays carry its outcome.
    let p = create(&app, &s, &permit_body(&s.holder, None, "surface", 500)).await;
    let pid = p["id"].as_str().unwrap().to_string();
    act(&app, &s.clerk, &pid, "submit", json!({})).await;
    let path = format!("/api/v1/permits/{pid}/approve");
    let results = join_all((0..N).map(|_| {
        app.post(&path)
            .bearer(&s.leader)
            .header("if-match", "\"2\"")
            .header("idempotency-key", "r-2")
            .json(&approve_body())
            .send()
    }))
    .await;
    let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    assert!(!ok.is_empty());
    for r in &results {
        match r.status {
            200 => assert_eq!(r.body, ok[0].body),
            _ => r.assert_problem(409, "idempotency_key_in_flight"),
        }
    }
    assert_eq!(events(&app, "permit_approve", &pid), 1);
    assert_eq!(permit_numbers_consumed(&app), 1);
    let replay = app
        .post(&path)
        .bearer(&s.leader)
        .header("if-match", "\"2\"")
        .header("idempotency-key", "r-2")
        .json(&approve_body())
        .send()
        .await;
    assert_eq!((replay.status, &replay.body), (200, &ok[0].body), "a replay answers even with a stale If-Match");
}

/// A key whose request died (in flight for longer than the takeover time) is taken over by a retry, which runs
/// once. A first request that was merely slow can then no longer commit its write under the key: its claim
/// token is gone, so its transaction rolls back.
async fn an_abandoned_key_is_taken_over_and_the_first_claim_can_no_longer_commit(app: TestApp) {
    let clerk = app.token_for("clerk", &[Role::WaterResources]);
    let long_ago = (chrono::Utc::now() - TimeDelta::minutes(5)).naive_utc();
    let t = |at: chrono::NaiveDateTime| at.format("%Y-%m-%d %H:%M:%S").to_string();
    app.sql(&format!(
        "INSERT INTO idempotency_keys (scope, key, request_hash, state, claim_token, created_at, expires_at) \
         VALUES ('clerk', 'k-dead', 'h', 'in_flight', 'dead', '{}', '{}')",
        t(long_ago),
        t(long_ago + TimeDelta::hours(24))
    ));
    let body = water_user_body("接管公司", REAL_CODES[2]);
    let r = app.post("/api/v1/water-users").bearer(&clerk).header("idempotency-key", "k-dead").json(&body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r2 =
        app.post("/api/v1/water-users").bearer(&clerk).header("idempotency-key", "k-dead").json(&body).send().await;
    assert_eq!((r2.status, r2.header("idempotency-replayed").as_deref()), (201, Some("true")));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), 1);

    // The same, step by step on the machinery: A claims, B takes over after the takeover time, A's write fails.
    let mut conn: DbConn = app.db();
    let now = chrono::Utc::now().naive_utc();
    let ttl = TimeDelta::hours(24);
    let in_tx = |conn: &mut DbConn, f: &mut dyn FnMut(&mut DbConn) -> Result<Claimed, shuiwu::error::ApiError>| {
        shuiwu::db::write_transaction(conn, |c| f(c))
    };
    let Claimed::Proceed(a) = in_tx(&mut conn, &mut |c| claim(c, "s", "k", "h1", now, ttl)).unwrap() else {
        panic!("first claim proceeds")
    };
    assert!(in_tx(&mut conn, &mut |c| claim(c, "s", "k", "h1", now + TimeDelta::seconds(5), ttl)).is_err());
    let later = now + IN_FLIGHT_TAKEOVER + TimeDelta::seconds(1);
    let Claimed::Proceed(b) = in_tx(&mut conn, &mut |c| claim(c, "s", "k", "h1", later, ttl)).unwrap() else {
        panic!("takeover proceeds")
    };
    assert_ne!(a, b);
    let reply = Reply::no_content();
    let first = shuiwu::db::write_transaction(&mut conn, |c| Claim::new("s", "k", &a).finish_in(c, &reply));
    assert!(first.is_err(), "the first claim lost its key and cannot commit under it");
    shuiwu::db::write_transaction(&mut conn, |c| Claim::new("s", "k", &b).finish_in(c, &reply)).unwrap();
    let Claimed::Replay { status, .. } = in_tx(&mut conn, &mut |c| claim(c, "s", "k", "h1", later, ttl)).unwrap()
    else {
        panic!("done keys replay")
    };
    assert_eq!(status, 204);
}

/// `verify` checks the chain up to the head it reads, so writers committing meanwhile never make an intact
/// chain look broken.
async fn verify_stays_consistent_while_others_write(app: TestApp) {
    let clerk = app.token(&[Role::WaterSaving]);
    let auditor = app.token(&[Role::Auditor]);
    let app = &app;
    let writers = async {
        for round in 0..8u64 {
            let batch = (0..4u64).map(|i| {
                let n = round * 4 + i;
                let body = water_user_body(&format!("并发{n}"), &credit_code(n));
                let clerk = &clerk;
                async move { app.post("/api/v1/water-users").bearer(clerk).json(&body).send().await.status }
            });
            assert!(join_all(batch).await.iter().all(|s| *s == 201));
        }
    };
    let verifier = async {
        let mut runs = 0;
        for _ in 0..12 {
            let v = app.get("/api/v1/audit-events/verify").bearer(&auditor).send().await;
            assert_eq!(v.body["ok"], true, "{}", v.text);
            runs += 1;
        }
        runs
    };
    let ((), runs) = futures_util::future::join(writers, verifier).await;
    assert_eq!(runs, 12);
    let v = app.get("/api/v1/audit-events/verify").bearer(&auditor).send().await;
    assert_eq!(v.body["ok"], true);
    assert!(v.body["checked"].as_i64().unwrap() >= 32);
}

/// "Today" is the bureau's date (Asia/Shanghai), read once per request from one clock: at 15:59:59 UTC on
/// 31 March it is still March there; at 16:00:01 it is April. Statuses, future-date checks and step dates follow.
async fn the_bureau_date_turns_at_16_utc(app: TestApp) {
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    app.clock.set(at("2026-03-31T15:59:00Z"));
    let s = staff(&app).await;
    let p = create(&app, &s, &permit_body(&s.holder, None, "surface", 1000)).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(act(&app, &s.clerk, &id, "submit", json!({})).await.status, 200);
    let approved =
        act(&app, &s.leader, &id, "approve", json!({"valid_from": "2026-01-01", "valid_to": "2026-03-31"})).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["approved_on"], "2026-03-31", "the step's date is the bureau's today");
    assert_eq!(approved.body["status"], "approved");
    let wpath = format!("/api/v1/permits/{id}/withdrawals");
    let april = json!({"period": "2026-04", "volume_m3": 10, "method": "manual_reading"});
    app.post(&wpath).bearer(&s.clerk).json(&april).send().await.assert_problem(400, "validation_failed");
    let march = json!({"period": "2026-03", "volume_m3": 10, "method": "manual_reading"});
    assert_eq!(app.post(&wpath).bearer(&s.clerk).json(&march).send().await.status, 201);
    let p2 = create(&app, &s, &permit_body(&s.holder, None, "surface", 1000)).await;
    let id2 = p2["id"].as_str().unwrap().to_string();
    act(&app, &s.clerk, &id2, "submit", json!({"effective_date": "2026-04-01"}))
        .await
        .assert_problem(400, "validation_failed");

    app.clock.set(at("2026-03-31T16:00:01Z"));
    let now = app.get(&format!("/api/v1/permits/{id}")).bearer(&s.clerk).send().await;
    assert_eq!(now.body["status"], "expired", "past valid_to once it is 1 April in Shanghai");
    let expired = app.get("/api/v1/permits?status=expired").bearer(&s.clerk).send().await;
    assert_eq!(expired.body["items"].as_array().unwrap().len(), 1);
    let submitted = act(&app, &s.clerk, &id2, "submit", json!({"effective_date": "2026-04-01"})).await;
    assert_eq!(submitted.status, 200, "{}", submitted.text);
    assert_eq!(submitted.body["submitted_on"], "2026-04-01");
    // April is no longer in the future, but the permit was not in force then.
    app.post(&wpath).bearer(&s.clerk).json(&april).send().await.assert_problem(409, "permit_not_active");
}
