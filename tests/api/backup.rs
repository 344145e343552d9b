//! Backups that restore: a copy taken while clerks keep writing holds every write acknowledged before it began,
//! and its audit trail verifies once restored. SQLite through `shuiwu backup` / `shuiwu restore`; PostgreSQL by the
//! documented `pg_dump` / `pg_restore` procedure (when the client tools are installed).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(a_backup_taken_under_writes_restores_whole);

fn shuiwu(url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shuiwu"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SHUIWU_") {
            c.env_remove(k);
        }
    }
    c.env("SHUIWU_DATABASE_URL", url).env("SHUIWU_JWT_SECRET", JWT_SECRET);
    c
}

fn run(c: &mut Command) -> Result<String, String> {
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn installed(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Writes water users one after another until `stop`; the ids acknowledged, in order.
async fn clerk(app: &TestApp, from: u64, acked: Rc<RefCell<Vec<String>>>, stop: Rc<RefCell<bool>>) {
    let t = app.token(&[Role::WaterResources]);
    let mut n = from;
    while !*stop.borrow() {
        let r = app
            .post("/api/v1/water-users")
            .bearer(&t)
            .json(&water_user_body(&format!("备份测试户{n}"), &credit_code(n)))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        acked.borrow_mut().push(r.body["id"].as_str().unwrap().to_string());
        n += 1;
    }
}

/// Takes the copy (on a blocking thread) while two clerks write; returns how many writes had been acknowledged
/// when it began, and all that were.
async fn copy_under_writes(
    app: &TestApp,
    take: impl FnOnce() -> Result<String, String> + Send + 'static,
) -> (usize, Vec<String>) {
    let acked = Rc::new(RefCell::new(Vec::new()));
    let stop = Rc::new(RefCell::new(false));
    // Some writes before, then the copy while both clerks go on.
    for n in 0..5 {
        let t = app.token(&[Role::WaterResources]);
        let r = app
            .post("/api/v1/water-users")
            .bearer(&t)
            .json(&water_user_body(&format!("早{n}"), &credit_code(n)))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        acked.borrow_mut().push(r.body["id"].as_str().unwrap().to_string());
    }
    let copier = {
        let (acked, stop) = (acked.clone(), stop.clone());
        async move {
            actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
            let began = acked.borrow().len();
            let out = actix_rt::task::spawn_blocking(take).await.unwrap();
            let ended = acked.borrow().len();
            *stop.borrow_mut() = true;
            (began, ended, out)
        }
    };
    let ((began, ended, out), (), ()) = futures_util::join!(
        copier,
        clerk(app, 1_000, acked.clone(), stop.clone()),
        clerk(app, 2_000, acked.clone(), stop.clone())
    );
    let out = out.unwrap_or_else(|e| panic!("the copy failed: {e}"));
    assert!(began >= 5, "{out}");
    let all = acked.borrow().clone();
    assert!(ended > began, "writes went on while the copy was taken");
    (began, all)
}

/// The restored database, opened by the service: every write acknowledged before the copy began is there, the
/// copy is one moment (every water user in it has its audit event), and the audit trail verifies.
async fn check_restored(app: &TestApp, restored_url: String, began: usize, acked: &[String]) {
    let restored = app.instance_with(|s| s.database_url = restored_url.parse().unwrap()).await;
    let reader = restored.token(&[Role::WaterResources]);
    for id in &acked[..began] {
        let r = restored.get(&format!("/api/v1/water-users/{id}")).bearer(&reader).send().await;
        assert_eq!(r.status, 200, "acknowledged write {id} is missing");
    }
    let users = restored.count("SELECT COUNT(*) AS n FROM water_users");
    let created = restored.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'water_user_created'");
    assert_eq!(users, created, "a water user without its audit event, or the reverse");
    assert!(users as usize >= began && users as usize <= acked.len());
    let v = restored.get("/api/v1/audit-events/verify").bearer(&restored.token(&[Role::Auditor])).send().await;
    assert_eq!((v.status, &v.body["ok"]), (200, &serde_json::Value::Bool(true)), "{}", v.text);
    // The restored service takes writes again.
    let t = restored.token(&[Role::WaterResources]);
    let r = restored
        .post("/api/v1/water-users")
        .bearer(&t)
        .json(&water_user_body("恢复后新户", &credit_code(9_999)))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn a_backup_taken_under_writes_restores_whole(app: TestApp) {
    let dir = app.data_dir.join("backups");
    std::fs::create_dir_all(&dir).unwrap();
    match app.backend {
        Backend::Sqlite => sqlite(&app, &dir).await,
        Backend::Postgres => postgres(&app, &dir).await,
    }
}

async fn sqlite(app: &TestApp, dir: &Path) {
    let copy = dir.join("shuiwu-backup.db");
    let (url, to) = (app.database_url.clone(), copy.clone());
    let (began, acked) = copy_under_writes(app, move || run(shuiwu(&url).args(["backup", "--to"]).arg(&to))).await;
    // A copy is never written over.
    let again = run(shuiwu(&app.database_url).args(["backup", "--to"]).arg(&copy));
    assert!(again.unwrap_err().contains("exists"));

    // Restored into a new place (a new machine) and opened by the service.
    let target = dir.join("restored/shuiwu.db");
    let restored_url = format!("sqlite://{}", target.display());
    let out = run(shuiwu(&restored_url).args(["restore", "--from"]).arg(&copy)).unwrap();
    assert!(out.contains("restored"), "{out}");
    check_restored(app, restored_url.clone(), began, &acked).await;

    // Restoring over a database (the service stopped) keeps the one replaced, whole; a file that is no database
    // is refused and changes nothing.
    let second = dir.join("second/shuiwu.db");
    let second_url = format!("sqlite://{}", second.display());
    run(shuiwu(&second_url).args(["restore", "--from"]).arg(&copy)).unwrap();
    let mut conn = shuiwu::db::DatabaseUrl::parse(&second_url).unwrap().establish().unwrap();
    conn.batch_execute("UPDATE ledger_head SET audit_hash = audit_hash; CREATE TABLE marker (x INTEGER)").unwrap();
    drop(conn);
    let junk = dir.join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some bytes").unwrap();
    let before = std::fs::read(&second).unwrap();
    let refused = run(shuiwu(&second_url).args(["restore", "--from"]).arg(&junk));
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(std::fs::read(&second).unwrap(), before);
    let out = run(shuiwu(&second_url).args(["restore", "--from"]).arg(&copy)).unwrap();
    assert!(out.contains("before-restore"), "{out}");
    let kept: Vec<PathBuf> = std::fs::read_dir(second.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("before-restore") && !p.to_string_lossy().ends_with("-wal"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let has_marker = |path: &Path| {
        let url = format!("sqlite://{}", path.display());
        let mut c = shuiwu::db::DatabaseUrl::parse(&url).unwrap().establish().unwrap();
        c.batch_execute("SELECT x FROM marker").is_ok()
    };
    assert!(has_marker(&kept[0]), "the replaced database is kept with its last writes");
    assert!(!has_marker(&second), "the restored database is the copy");

    // Over the running service's database, while a reader is at work: refused, nothing replaced or left behind.
    let live = app.database_url.strip_prefix("sqlite://").unwrap().to_string();
    let mut reader = app.db();
    reader.batch_execute("BEGIN; SELECT COUNT(*) FROM water_users;").unwrap();
    let t = app.token(&[Role::WaterResources]);
    let r = app
        .post("/api/v1/water-users")
        .bearer(&t)
        .json(&water_user_body("恢复时在用", &credit_code(5000)))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = app.count("SELECT COUNT(*) AS n FROM water_users");
    let refused = run(shuiwu(&app.database_url).args(["restore", "--from"]).arg(&copy));
    assert!(refused.as_ref().unwrap_err().contains("in use"), "{refused:?}");
    reader.batch_execute("COMMIT").unwrap();
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM water_users"), before);
    let left: Vec<PathBuf> = std::fs::read_dir(Path::new(&live).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("restoring") || p.to_string_lossy().contains("before-restore"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

async fn postgres(app: &TestApp, dir: &Path) {
    // The SQLite commands point PostgreSQL users at the procedure.
    let refused = run(shuiwu(&app.database_url).args(["backup", "--to"]).arg(dir.join("x")));
    assert!(refused.unwrap_err().contains("pg_dump"));
    if !installed("pg_dump") || !installed("pg_restore") {
        eprintln!("pg_dump/pg_restore not installed: the PostgreSQL procedure is not exercised");
        return;
    }
    let dump = dir.join("shuiwu.dump");
    let (url, to) = (app.database_url.clone(), dump.clone());
    let (began, acked) = copy_under_writes(app, move || {
        let mut c = Command::new("pg_dump");
        c.args(["--format=custom", "--no-owner", "--file"]).arg(&to).arg(format!("--dbname={url}"));
        run(&mut c)
    })
    .await;
    // Restored into a new, empty database.
    let name = format!("{}_restored", app.pg_database());
    let base = postgres_base_url();
    let mut admin = diesel::PgConnection::establish(&base).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).unwrap();
    let restored_url = app.database_url.replace(app.pg_database(), &name);
    let mut c = Command::new("pg_restore");
    c.args(["--no-owner", "--exit-on-error", "--single-transaction"])
        .arg(format!("--dbname={restored_url}"))
        .arg(&dump);
    run(&mut c).unwrap();
    check_restored(app, restored_url, began, &acked).await;
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
}
