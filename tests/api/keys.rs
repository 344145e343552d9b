//! Rotating the token signing key under traffic (docs/operations.md, "Rotating the signing key"): the new key is
//! listed second on every instance, then first, then the old one is removed; nobody is signed out on the way, and
//! a removed key's tokens are refused.

use futures_util::future::join_all;
use serde_json::json;
use shuiwu::config::{Secret, Settings};

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(signing_keys_rotate_without_signing_anyone_out);

const OLD: &str = "2026a:old-key-0123456789-abcdefghijklmnopqrstuvwxyz";
const NEW: &str = "2026b:new-key-0123456789-abcdefghijklmnopqrstuvwxyz";

fn keys(list: String) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.jwt_secret = None;
        s.jwt_keys = Some(list.parse::<Secret>().unwrap());
    }
}

/// `n` reads at once with `token` on `app`; their statuses.
async fn traffic(app: &TestApp, token: &str, n: usize) -> Vec<u16> {
    join_all((0..n).map(|_| async { app.get("/api/v1/auth/me").bearer(token).send().await.status })).await
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn signing_keys_rotate_without_signing_anyone_out(app: TestApp) {
    // The fleet before: the old key alone (two instances).
    let before = app.instance_with(keys(OLD.into())).await;
    let login = before.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let old_token = login.body["access_token"].as_str().unwrap().to_string();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(kid(&old_token), "2026a");

    // Step 1: every instance also knows the new key; the old one still signs.
    let step1 = app.instance_with(keys(format!("{OLD},{NEW}"))).await;
    let t = step1.login("admin", ADMIN_PASSWORD).await.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(kid(&t), "2026a");
    let (a, b) = futures_util::join!(traffic(&before, &old_token, 10), traffic(&step1, &old_token, 10));
    assert!(a.iter().chain(&b).all(|s| *s == 200), "{a:?} {b:?}");

    // Step 2: the new key signs. Old tokens keep working, new ones work on every instance that has step 1.
    let step2 = app.instance_with(keys(format!("{NEW},{OLD}"))).await;
    let r = step2.post("/api/v1/auth/refresh").json(&json!({"refresh_token": refresh})).send().await;
    assert_eq!(r.status, 200, "the session survives the rotation: {}", r.text);
    let new_token = r.body["access_token"].as_str().unwrap().to_string();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(kid(&new_token), "2026b");
    let (a, b, c) = futures_util::join!(
        traffic(&step1, &new_token, 10),
        traffic(&step2, &new_token, 10),
        traffic(&step2, &old_token, 10)
    );
    assert!(a.iter().chain(&b).chain(&c).all(|s| *s == 200), "{a:?} {b:?} {c:?}");
    // (An instance skipped in step 1 would refuse the new tokens: that is why step 1 comes first.)
    before.get("/api/v1/auth/me").bearer(&new_token).send().await.assert_problem(401, "unauthorized");

    // Step 3, once the old key's tokens have expired: the old key is removed. Its tokens are refused; the new
    // ones, and the session (its refresh token), carry on.
    let after = app.instance_with(keys(NEW.into())).await;
    after.get("/api/v1/auth/me").bearer(&old_token).send().await.assert_problem(401, "unauthorized");
    assert!(traffic(&after, &new_token, 10).await.iter().all(|s| *s == 200));
    let r = after.post("/api/v1/auth/refresh").json(&json!({"refresh_token": refresh})).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(kid(r.body["access_token"].as_str().unwrap()), "2026b");
}
