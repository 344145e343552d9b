//! `GET /metrics`: counters that move with the requests made, gauges of the pool and the audit trail, and an
//! endpoint only the monitoring system reaches (the scrape token, or the metrics listener).

use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(metrics_count_requests_and_only_the_monitor_reads_them);

const SCRAPE_TOKEN: &str = "prometheus-scrape-token-0123456789abcdef";

/// The value of one sample line (`name{labels} value`), or 0 when the series does not exist yet.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap_or_else(|_| panic!("{series}: {v}")))
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").bearer(SCRAPE_TOKEN).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    assert!(r.text.ends_with("# EOF\n"), "{}", r.text);
    r.text
}

async fn metrics_count_requests_and_only_the_monitor_reads_them(plain: TestApp) {
    // Without a scrape token the service's listener does not serve the metrics.
    plain.get("/metrics").bearer(SCRAPE_TOKEN).send().await.assert_problem(404, "not_found");
    let app = plain
        .instance_with(|s| {
            s.metrics_token = Some(SCRAPE_TOKEN.parse().unwrap());
            s.metrics_bind = Some("127.0.0.1:0".into());
        })
        .await;

    // Refused to anyone else: no token, an account's token (even the admin's), a wrong one.
    app.get("/metrics").send().await.assert_problem(401, "unauthorized");
    let admin = app.admin_token().await;
    app.get("/metrics").bearer(&admin).send().await.assert_problem(403, "forbidden");
    app.get("/metrics").bearer(&app.token(&[Role::Admin])).send().await.assert_problem(403, "forbidden");
    app.get("/metrics")
        .bearer("prometheus-scrape-token-0123456789abcdeX")
        .send()
        .await
        .assert_problem(403, "forbidden");

    // A request moves its route's counter by one, under the route template (never the id itself).
    let t = app.token(&[Role::WaterResources]);
    let created =
        app.post("/api/v1/water-users").bearer(&t).json(&water_user_body("指标测试户", &credit_code(7))).send().await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();
    let series = r#"shuiwu_http_requests_total{method="GET",route="/api/v1/water-users/{id}",status="200"}"#;
    let missing = r#"shuiwu_http_requests_total{method="GET",route="/api/v1/water-users/{id}",status="404"}"#;
    let before = scrape(&app).await;
    assert_eq!(app.get(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await.status, 200);
    assert_eq!(app.get(&format!("/api/v1/water-users/{id}")).bearer(&t).send().await.status, 200);
    app.get("/api/v1/water-users/00000000-0000-0000-0000-000000000000")
        .bearer(&t)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get("/no/such/path/12345").send().await.assert_problem(404, "not_found");
    let after = scrape(&app).await;
    assert_eq!(sample(&after, series) - sample(&before, series), 2.0, "{after}");
    assert_eq!(sample(&after, missing) - sample(&before, missing), 1.0);
    assert!(!after.contains(&id) && !after.contains("12345"), "ids and unknown paths never become labels");
    assert!(sample(&after, r#"shuiwu_http_requests_total{method="GET",route="(unmatched)",status="404"}"#) >= 1.0);
    // A method a route does not have counts as one series, whatever the route.
    let put = app.request(awc::http::Method::PUT, &format!("/api/v1/water-users/{id}")).bearer(&t).send().await;
    put.assert_problem(405, "method_not_allowed");
    let puts = scrape(&app).await;
    assert_eq!(
        sample(&puts, r#"shuiwu_http_requests_total{method="PUT",route="(unmatched)",status="405"}"#),
        1.0,
        "{puts}"
    );
    assert!(!puts.contains(r#"method="PUT",route="/api"#), "{puts}");
    let count = r#"shuiwu_http_request_duration_seconds_count{method="GET",route="/api/v1/water-users/{id}"}"#;
    assert_eq!(sample(&after, count) - sample(&before, count), 3.0);
    assert!(
        after.contains(
            r#"shuiwu_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/v1/water-users/{id}"}"#
        ) || after.contains(
            r#"shuiwu_http_request_duration_seconds_bucket{method="GET",route="/api/v1/water-users/{id}",le="+Inf"}"#
        ),
        "{after}"
    );

    // The pool and the audit trail.
    assert_eq!(sample(&after, "shuiwu_db_pool_max_connections"), 4.0);
    let open = sample(&after, r#"shuiwu_db_pool_connections{state="in_use"}"#)
        + sample(&after, r#"shuiwu_db_pool_connections{state="idle"}"#);
    assert!((1.0..=4.0).contains(&open), "{after}");
    assert!(after.contains("shuiwu_db_pool_waiting "));
    assert_eq!(sample(&after, "shuiwu_database_up"), 1.0);
    // (A gauge that is left out when the scrape could not ask the database: an empty label set.)
    assert!(after.lines().any(|l| l.starts_with("shuiwu_audit_events_pending{} ")), "{after}");
    // Reading the trail numbers whatever is pending.
    let verify = app.get("/api/v1/audit-events/verify").bearer(&app.token(&[Role::Auditor])).send().await;
    assert_eq!(verify.body["ok"], true);
    assert_eq!(sample(&scrape(&app).await, "shuiwu_audit_events_pending{}"), 0.0);

    // Failed and throttled sign-ins.
    let failed = r#"shuiwu_sign_in_failures_total{kind="password"}"#;
    let throttled = r#"shuiwu_sign_in_throttled_total{kind="password"}"#;
    for _ in 0..5 {
        app.login("admin", "wrong password!").await.assert_problem(401, "unauthorized");
    }
    app.login("admin", "wrong password!").await.assert_problem(429, "rate_limited");
    let signs = scrape(&app).await;
    assert_eq!(sample(&signs, failed), 5.0, "{signs}");
    assert_eq!(sample(&signs, throttled), 1.0);
    app.post("/api/v1/auth/token")
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}))
        .send()
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(sample(&scrape(&app).await, r#"shuiwu_sign_in_failures_total{kind="client_secret"}"#), 1.0);

    // The metrics listener serves them without a token, and nothing else.
    let listener = app.metrics_address.clone().expect("a metrics listener");
    let r = app.get(&format!("{listener}/metrics")).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("shuiwu_http_requests_total"));
    assert_eq!(app.get(&format!("{listener}/api/v1/water-users")).bearer(&t).send().await.status, 404);
}
