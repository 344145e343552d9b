//! The working-day calendar: shipped for 2022–2026, kept by admin, read by everyone.

use serde_json::json;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(the_calendar_ships_and_admin_keeps_it);

async fn the_calendar_ships_and_admin_keeps_it(app: TestApp) {
    let admin = app.admin_token().await;
    let reader = app.token(&[Role::Inspector]);
    for (year, holiday, workday, notice) in [
        (2022, "2022-01-31", "2022-01-29", "国办发明电〔2021〕11号"),
        (2023, "2023-01-23", "2023-01-28", "国办发明电〔2022〕16号"),
        (2024, "2024-02-12", "2024-02-04", "国办发明电〔2023〕7号"),
        (2025, "2025-01-29", "2025-01-26", "国办发明电〔2024〕12号"),
        (2026, "2026-02-16", "2026-02-14", "国办发明电〔2025〕7号"),
    ] {
        let r = app.get(&format!("/api/v1/calendar/{year}")).bearer(&reader).send().await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["holidays"].as_array().unwrap().contains(&json!(holiday)), "{year}");
        assert!(r.body["workdays"].as_array().unwrap().contains(&json!(workday)), "{year}");
        assert!(r.body["source"].as_str().unwrap().contains(notice), "{year}");
    }
    app.get("/api/v1/calendar/2027").bearer(&reader).send().await.assert_problem(404, "not_found");
    app.get("/api/v1/calendar/27").bearer(&reader).send().await.assert_problem(400, "validation_failed");
    // A year no request date can reach (dates run to 2199) has no calendar to keep.
    app.get("/api/v1/calendar/2200").bearer(&reader).send().await.assert_problem(400, "validation_failed");

    let body = json!({"holidays": ["2027-01-01", "2027-02-06", "2027-02-07", "2027-02-08"], "workdays": ["2027-02-14"],
                      "source": "国务院办公厅关于2027年部分节假日安排的通知"});
    app.request(actix_web::http::Method::PUT, "/api/v1/calendar/2027")
        .bearer(&reader)
        .json(&body)
        .send()
        .await
        .assert_problem(403, "forbidden");
    for bad in [
        json!({"holidays": ["2026-12-31"], "workdays": []}),
        json!({"holidays": [], "workdays": ["2027-02-15"]}),
        json!({"holidays": ["2027-02-14"], "workdays": ["2027-02-14"]}),
        json!({"holidays": ["2027-01-01", "2027-01-01"], "workdays": []}),
        json!({"holidays": [], "workdays": [], "extra": 1}),
    ] {
        let r =
            app.request(actix_web::http::Method::PUT, "/api/v1/calendar/2027").bearer(&admin).json(&bad).send().await;
        r.assert_problem(400, "validation_failed");
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM calendar_years WHERE year = 2027"), 0);
    let r = app.request(actix_web::http::Method::PUT, "/api/v1/calendar/2027").bearer(&admin).json(&body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["workdays"], json!(["2027-02-14"]));
    let again = json!({"holidays": ["2027-01-01"], "workdays": []});
    let put = |if_match: Option<&str>| {
        let mut req = app.request(actix_web::http::Method::PUT, "/api/v1/calendar/2027").bearer(&admin).json(&again);
        if let Some(v) = if_match {
            req = req.header("if-match", v);
        }
        req.send()
    };
    put(None).await.assert_problem(428, "precondition_required");
    put(Some("\"7\"")).await.assert_problem(412, "precondition_failed");
    let r = put(Some("\"1\"")).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(2)));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE entity_type = 'calendar'"), 2);
}
