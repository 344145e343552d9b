//! The change feed as a provincial platform uses it: changes the calendar makes reach it (once, however many
//! readers and instances ask), and a reader paging through while many writers commit and fail ends with exactly the
//! committed changes — no gap, no duplicate, nothing rolled back — and resuming from any cursor gets exactly the rest.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, Duration, TimeZone, Utc};
use futures_util::future::join_all;
use serde_json::{json, Value};
use shuiwu::identity::Role;

use crate::fees::{add_rate, fee_act, fees_staff, report as withdraw, run};
use crate::helpers::*;
use crate::on_both_databases;
use crate::permits::{act, create, permit_body};

mod the_calendar_s_changes_reach_the_feed_once {
    use crate::helpers::{spawn_app_with, Backend, TestApp};

    /// Fees still billed (the tax cut-over put years after today), so that a fee can become overdue.
    async fn app(backend: Backend) -> TestApp {
        spawn_app_with(backend, |s| s.water_resource_tax_from = "2099-12-01".parse().unwrap()).await
    }

    #[actix_rt::test]
    async fn sqlite() {
        super::the_calendar_s_changes_reach_the_feed_once(app(Backend::Sqlite).await).await
    }

    #[actix_rt::test]
    async fn postgres() {
        super::the_calendar_s_changes_reach_the_feed_once(app(Backend::Postgres).await).await
    }
}

/// The feed after `cursor` (all of it), as a platform reads it.
async fn feed_after(app: &TestApp, cursor: &str, limit: usize) -> (Vec<Value>, Vec<String>) {
    let token = app.token(&[Role::Platform]);
    let (mut items, mut cursors) = (Vec::new(), Vec::new());
    let mut cursor = cursor.to_string();
    loop {
        let r = app.get(&format!("/api/v1/changes?limit={limit}&cursor={cursor}")).bearer(&token).send().await;
        assert_eq!(r.status, 200, "{}", r.text);
        let batch = r.body["items"].as_array().unwrap().clone();
        cursor = r.body["next_cursor"].as_str().unwrap().to_string();
        cursors.push(cursor.clone());
        if batch.is_empty() {
            return (items, cursors);
        }
        items.extend(batch);
    }
}

async fn end_of_feed(app: &TestApp) -> String {
    let r = app.get("/api/v1/changes?limit=500").bearer(&app.token(&[Role::Platform])).send().await;
    let mut cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    loop {
        let r = app
            .get(&format!("/api/v1/changes?limit=500&cursor={cursor}"))
            .bearer(&app.token(&[Role::Platform]))
            .send()
            .await;
        if r.body["items"].as_array().unwrap().is_empty() {
            return cursor;
        }
        cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    }
}

async fn the_calendar_s_changes_reach_the_feed_once(app: TestApp) {
    let f = fees_staff(&app).await;
    let today = today();
    let day = |n: i64| (today + Duration::days(n)).to_string();

    // A permit whose term ends the day after tomorrow, in a zone (whose allocation then no longer counts it).
    let admin = app.admin_token().await;
    let zone = json!({"name": "深层地下水区", "source_type": "groundwater_deep", "zone_class": "normal",
        "allowable_m3_per_year": 1_000_000});
    let r = app.post("/api/v1/water-zones").bearer(&admin).json(&zone).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    let zone = r.body["id"].as_str().unwrap().to_string();
    let p = create(&app, &f.s, &permit_body(&f.s.holder, Some(&zone), "groundwater_deep", 50_000)).await;
    let permit = p["id"].as_str().unwrap().to_string();
    assert_eq!(act(&app, &f.s.clerk, &permit, "submit", json!({"effective_date": day(-20)})).await.status, 200);
    let approve = json!({"effective_date": day(-10), "valid_from": day(-10), "valid_to": day(2)});
    let r = act(&app, &f.s.leader, &permit, "approve", approve).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A fee due the day after tomorrow: last quarter's withdrawals of an older permit, served five days ago.
    let old = create(&app, &f.s, &permit_body(&f.s.holder, None, "groundwater_deep", 500_000)).await;
    let old = old["id"].as_str().unwrap().to_string();
    assert_eq!(act(&app, &f.s.clerk, &old, "submit", json!({"effective_date": "2021-01-05"})).await.status, 200);
    let approve = json!({"effective_date": "2021-01-10", "valid_from": "2021-01-01", "valid_to": "2030-12-31"});
    assert_eq!(act(&app, &f.s.leader, &old, "approve", approve).await.status, 200);
    let rate = json!({"source_type": "groundwater_deep", "purpose": "industrial", "zone_class": null,
        "rate_yuan_per_m3": "1.5", "effective_from": "2020-01-01", "effective_to": null});
    assert_eq!(add_rate(&app, &f, rate).await.status, 201);
    let quarter_start = (today - Duration::days(100)).with_day(1).unwrap();
    let q = (quarter_start.month() - 1) / 3;
    let quarter = format!("{}-Q{}", quarter_start.year(), q + 1);
    let first_month = format!("{}-{:02}", quarter_start.year(), q * 3 + 1);
    withdraw(&app, &f, &old, &first_month, 1000).await;
    run(&app, &f, &quarter).await;
    let r = app.get(&format!("/api/v1/fee-assessments?permit_id={old}")).bearer(&f.finance).send().await;
    let fee = r.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = fee_act(&app, &f.finance, &fee, "notify", json!({"effective_date": day(-5)})).await;
    assert_eq!(r.body["due_date"], day(2), "{}", r.text);

    // A rectification due in three days, found yesterday.
    let enforcement = app.token_for("zhifa01", &[Role::Enforcement]);
    let body = json!({"kind": "water_permit", "target_water_user_id": f.s.holder, "inspected_at": format!("{}T02:00:00Z", day(-1)),
        "findings": [{"type": "meter_not_working", "description": "计量设施损坏", "rectification_due": day(3)}]});
    let r = app.post("/api/v1/inspections").bearer(&enforcement).json(&body).send().await;
    assert_eq!(r.status, 201, "{}", r.text);
    let inspection = r.body["id"].as_str().unwrap().to_string();
    let rectification = r.body["findings"][0]["rectification_id"].as_str().unwrap().to_string();

    // A case filed 88 days ago: its decision is due the day after tomorrow.
    let mut officers = Vec::new();
    for name in ["zhifa01", "zhifa02"] {
        let r = app
            .post("/api/v1/accounts")
            .bearer(&admin)
            .json(&json!({"username": name, "display_name": name,
            "department": "office", "roles": ["enforcement"], "password": "a long passphrase"}))
            .send()
            .await;
        officers.push(r.body["id"].as_str().unwrap().to_string());
    }
    let enforcement = app.token_for(&officers[0], &[Role::Enforcement]);
    let r = app
        .post("/api/v1/cases")
        .bearer(&enforcement)
        .json(&json!({"water_user_id": f.s.holder,
        "violation_type": "unlicensed_abstraction", "facts": "擅自取水。", "effective_date": day(-90)}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let case = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(&format!("/api/v1/cases/{case}/file"))
        .bearer(&enforcement)
        .header("if-match", "\"1\"")
        .json(&json!({"effective_date": day(-88), "officer_ids": officers}))
        .send()
        .await;
    assert_eq!(r.body["decision_due"], day(2), "{}", r.text);

    // Nothing has turned yet; a platform is caught up here.
    let cursor = end_of_feed(&app).await;
    let watched: HashSet<&str> = [&permit, &zone, &fee, &inspection, &rectification, &case].map(String::as_str).into();

    // Ten days later (the clock moved, nobody wrote): four readers at once, as instances and retries would.
    let later = Utc.from_utc_datetime(&(today + Duration::days(10)).and_hms_opt(2, 0, 0).unwrap());
    app.clock.set(later);
    let reads = join_all((0..4).map(|_| feed_after(&app, &cursor, 3))).await;
    for (items, _) in &reads {
        assert_eq!(items.len(), reads[0].0.len(), "every reader reads the same feed");
    }
    let items = &reads[0].0;
    let mine: Vec<&Value> = items.iter().filter(|i| watched.contains(i["entity_id"].as_str().unwrap())).collect();
    let seen: Vec<(&str, &str)> =
        mine.iter().map(|i| (i["entity_type"].as_str().unwrap(), i["entity_id"].as_str().unwrap())).collect();
    assert_eq!(seen.len(), 6, "each record once: {seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 6, "{seen:?}");

    // Each as GET shows it now.
    let leader = app.token(&[Role::Leader]);
    let paths: HashMap<&str, String> = HashMap::from([
        ("permit", format!("/api/v1/permits/{permit}")),
        ("zone", format!("/api/v1/water-zones/{zone}")),
        ("fee_assessment", format!("/api/v1/fee-assessments/{fee}")),
        ("inspection", format!("/api/v1/inspections/{inspection}")),
        ("rectification", format!("/api/v1/rectifications/{rectification}")),
        ("case", format!("/api/v1/cases/{case}")),
    ]);
    for item in &mine {
        let path = &paths[item["entity_type"].as_str().unwrap()];
        let now = app.get(path).bearer(&leader).send().await;
        assert_eq!(now.status, 200, "{}", now.text);
        assert_eq!(item["data"], now.body, "{path}");
        assert_eq!(item["op"], "upsert");
    }
    let data = |t: &str| &mine.iter().find(|i| i["entity_type"] == t).unwrap()["data"];
    assert_eq!(data("permit")["status"], "expired");
    assert_eq!(data("zone")["approved_m3_per_year"], 0);
    assert_eq!(data("fee_assessment")["overdue"], true);
    assert_eq!(data("rectification")["status"], "overdue");
    assert_eq!(data("inspection")["findings"][0]["status"], "overdue");
    assert_eq!(data("case")["decision_overdue"], true);

    // Recorded by the system, with the day it turned, in the records' histories.
    let auditor = app.token(&[Role::Auditor]);
    let h = app.get(&format!("/api/v1/permits/{permit}/history")).bearer(&auditor).send().await;
    let last = h.body["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["effective_date"].as_str()), (Some("expired"), Some(&*day(3))));
    assert_eq!(last["actor"]["sub"], "system");
    let v = app.get("/api/v1/audit-events/verify").bearer(&auditor).send().await;
    assert_eq!(v.body["ok"], true, "{}", v.text);

    // Read again, and after a restart of the day's work: nothing more.
    let (again, _) = feed_after(&app, &cursor, 50).await;
    assert_eq!(again.len(), items.len());
    let other = app.second_instance().await;
    other.clock.set(later);
    let (from_other, _) = feed_after(&other, &cursor, 50).await;
    assert_eq!(from_other.len(), items.len(), "another instance records nothing twice");
}

on_both_databases!(a_decision_not_published_in_time_reaches_the_feed_once);

/// A penalty decided yesterday and not published: once its publication deadline (7 working days) has passed, the
/// case reads `publication_overdue` and the feed has it once, recorded by the system on the day after the deadline.
async fn a_decision_not_published_in_time_reaches_the_feed_once(app: TestApp) {
    let today = today();
    let day = |n: i64| (today + Duration::days(n)).to_string();
    // Working-day arithmetic needs the years' calendars: the shipped ones, or plain weeks for years after them.
    let admin = app.admin_token().await;
    for year in (today - Duration::days(1)).year()..=today.year() + 1 {
        let path = format!("/api/v1/calendar/{year}");
        if app.get(&path).bearer(&admin).send().await.status == 404 {
            let plain = json!({"holidays": [], "workdays": []});
            let r = app.request(actix_web::http::Method::PUT, &path).bearer(&admin).json(&plain).send().await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
    }
    let o = crate::cases::office(&app).await;
    let case = crate::cases::open(
        &app,
        &o,
        json!({"water_user_id": o.party, "violation_type": "no_meter",
        "facts": "未安装计量设施。", "effective_date": day(-10)}),
    )
    .await;
    let step = crate::cases::step;
    let case =
        step(&app, &o.enforcement, &case, "file", json!({"effective_date": day(-9), "officer_ids": o.officers})).await;
    let case = step(&app, &o.enforcement, &case, "start-investigation", json!({"effective_date": day(-8)})).await;
    let notice = json!({"proposed_fine_fen": 500_000, "statement_waived": true, "effective_date": day(-7)});
    let case = step(&app, &o.enforcement, &case, "notify", notice).await;
    let decision = json!({"outcome": "penalty", "fine_fen": 500_000, "penalty_content": "罚款人民币伍仟元整",
        "effective_date": day(-1)});
    let case = step(&app, &o.leader, &case, "decide", decision).await;
    assert_eq!(case["publication_overdue"], false);
    let due: chrono::NaiveDate = case["publication_due"].as_str().unwrap().parse().unwrap();
    let id = case["id"].as_str().unwrap().to_string();
    let cursor = end_of_feed(&app).await;

    // The day of the deadline: not yet. The day after: overdue, in the feed once, however often it is read.
    let at = |d: chrono::NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(2, 0, 0).unwrap());
    app.clock.set(at(due));
    let (items, _) = feed_after(&app, &cursor, 10).await;
    assert!(items.iter().all(|i| i["entity_id"] != id.as_str()), "not overdue on its due day: {items:?}");
    app.clock.set(at(due + Duration::days(3)));
    let (items, _) = feed_after(&app, &cursor, 10).await;
    let mine: Vec<&Value> = items.iter().filter(|i| i["entity_id"] == id.as_str()).collect();
    assert_eq!(mine.len(), 1, "{items:?}");
    let now = app.get(&format!("/api/v1/cases/{id}")).bearer(&o.legal).send().await;
    assert_eq!(mine[0]["data"], now.body);
    assert_eq!(now.body["publication_overdue"], true);
    let (again, _) = feed_after(&app, &cursor, 10).await;
    assert_eq!(again.len(), items.len(), "nothing recorded twice");
    let auditor = app.token(&[Role::Auditor]);
    let h = app.get(&format!("/api/v1/cases/{id}/history")).bearer(&auditor).send().await;
    let last = h.body["items"].as_array().unwrap().last().unwrap().clone();
    let turned = (due + Duration::days(1)).to_string();
    assert_eq!(
        (last["action"].as_str(), last["effective_date"].as_str()),
        (Some("publication_overdue"), Some(&*turned))
    );
    assert_eq!(last["actor"]["sub"], "system");
}

/// PostgreSQL, many writers at once (creates, updates, refused duplicates and stale updates) while a platform
/// pages through the feed in small pages: the feed it read, and what any resumed reader reads from any of its
/// cursors, is exactly the committed changes in order.
#[actix_rt::test]
async fn a_reader_under_many_writers_gets_exactly_the_committed_changes() {
    let app = spawn_app_with(Backend::Postgres, |s| s.db_pool_size = Some(10)).await;
    let start = end_of_feed(&app).await;
    let clerk = app.token(&[Role::WaterResources]);
    const WRITERS: u64 = 8;
    const EACH: u64 = 40;
    let done = std::rc::Rc::new(std::cell::Cell::new(0u64));
    // Each writer: creates, updates what it created, and tries a duplicate and a stale update (both refused).
    let writer = |w: u64| {
        let (app, clerk, done) = (&app, clerk.clone(), done.clone());
        async move {
            let mut committed: Vec<(String, i64)> = Vec::new();
            for i in 0..EACH {
                let n = 10_000 + w * 1_000 + i;
                let r = app
                    .post("/api/v1/water-users")
                    .bearer(&clerk)
                    .json(&water_user_body(&format!("并发{n}"), &credit_code(n)))
                    .send()
                    .await;
                assert_eq!(r.status, 201, "{}", r.text);
                let id = r.body["id"].as_str().unwrap().to_string();
                committed.push((id.clone(), 1));
                let dup = app
                    .post("/api/v1/water-users")
                    .bearer(&clerk)
                    .json(&water_user_body("重复", &credit_code(n)))
                    .send()
                    .await;
                assert_eq!(dup.status, 409, "{}", dup.text);
                if i % 2 == 0 {
                    let path = format!("/api/v1/water-users/{id}");
                    let r = app
                        .patch(&path)
                        .bearer(&clerk)
                        .header("if-match", "\"1\"")
                        .json(&json!({"address": "赤水市文华街道"}))
                        .send()
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    committed.push((id.clone(), 2));
                    let stale = app
                        .patch(&path)
                        .bearer(&clerk)
                        .header("if-match", "\"1\"")
                        .json(&json!({"address": "赤水市天台镇"}))
                        .send()
                        .await;
                    assert_eq!(stale.status, 412, "{}", stale.text);
                }
            }
            done.set(done.get() + 1);
            committed
        }
    };
    // The platform pages through while they write, resuming from its last cursor, until they are done and it is
    // caught up.
    let reader = {
        let (app, done, start) = (&app, done.clone(), start.clone());
        async move {
            let token = app.token(&[Role::Platform]);
            let (mut items, mut cursors) = (Vec::<Value>::new(), vec![start.clone()]);
            let mut cursor = start;
            loop {
                let finished = done.get() == WRITERS;
                let r = app
                    .get(&format!("/api/v1/changes?limit=7&entity_types=water_user&cursor={cursor}"))
                    .bearer(&token)
                    .send()
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                let batch = r.body["items"].as_array().unwrap().clone();
                cursor = r.body["next_cursor"].as_str().unwrap().to_string();
                cursors.push(cursor.clone());
                if batch.is_empty() {
                    if finished {
                        return (items, cursors);
                    }
                    actix_rt::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                items.extend(batch);
            }
        }
    };
    let (writes, (items, cursors)) = futures_util::join!(join_all((0..WRITERS).map(writer)), reader);
    let committed: HashSet<(String, i64)> = writes.into_iter().flatten().collect();
    assert_eq!(committed.len() as u64, WRITERS * EACH * 3 / 2);

    // Exactly the committed changes: each once, nothing refused, in strictly increasing order.
    let read: Vec<(String, i64)> = items
        .iter()
        .map(|i| (i["entity_id"].as_str().unwrap().to_string(), i["data"]["version"].as_i64().unwrap()))
        .collect();
    let seqs: Vec<i64> = items.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "strictly increasing");
    assert_eq!(read.len(), committed.len(), "no duplicate, no gap");
    assert_eq!(read.iter().cloned().collect::<HashSet<_>>(), committed);
    assert!(items.iter().all(|i| i["data"]["name"] != "重复"), "refused writes never appear");
    // A record's versions in order: its update after its creation.
    let mut last_version: HashMap<&str, i64> = HashMap::new();
    for (id, version) in &read {
        let before = last_version.insert(id, *version).unwrap_or(0);
        assert_eq!(*version, before + 1, "{id}");
    }

    // A platform resuming from any cursor it was given gets exactly the rest.
    for (k, cursor) in cursors.iter().enumerate().step_by(11) {
        let (rest, _) = feed_after(&app, cursor, 100).await;
        let rest: Vec<i64> =
            rest.iter().filter(|i| i["entity_type"] == "water_user").map(|i| i["seq"].as_i64().unwrap()).collect();
        let expected: Vec<i64> = seqs.iter().copied().filter(|s| *s > decode(cursor)).collect();
        assert_eq!(rest, expected, "resuming from cursor {k}");
    }
}

/// The sequence number a cursor stands for (its encoding is opaque to platforms; tests know it).
fn decode(cursor: &str) -> i64 {
    shuiwu::http::pagination::decode_cursor(cursor).unwrap()
}
