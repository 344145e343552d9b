//! The binary's subcommands.

use std::process::Command;

use crate::helpers::*;

fn shuiwu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shuiwu"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SHUIWU_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn openapi_subcommand_prints_the_committed_spec() {
    let out = shuiwu().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json")).unwrap();
    assert!(out.stdout == committed, "shuiwu openapi differs from openapi/openapi.json");
}

#[test]
fn token_subcommand_mints_a_valid_token() {
    let dir = std::env::temp_dir().join(format!("shuiwu-cli-{}", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}/shuiwu.db", dir.display());
    let migrated = shuiwu().arg("migrate").env("SHUIWU_DATABASE_URL", &url).output().unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let token = |args: &[&str]| {
        shuiwu()
            .arg("token")
            .args(args)
            .env("SHUIWU_JWT_SECRET", JWT_SECRET)
            .env("SHUIWU_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    let out = token(&["--sub", "operator", "--department", "office", "--roles", "auditor,platform", "--ttl", "5m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let minted = String::from_utf8(out.stdout).unwrap();
    let keys = shuiwu::security::TokenKeys::new(&JWT_SECRET.parse().unwrap(), "shuiwu", "shuiwu-api");
    let p = keys.verify(minted.trim()).expect("verifies");
    assert_eq!(p.sub, "operator");
    assert_eq!(p.roles, vec![shuiwu::identity::Role::Auditor, shuiwu::identity::Role::Platform]);
    assert!(p.exp - p.iat == 300);
    for bad in [
        vec!["--sub", "x", "--department", "office", "--roles", "wizard"],
        vec!["--sub", "x", "--department", "office", "--roles", "admin,finance"],
        vec!["--sub", "x", "--department", "office", "--roles", "auditor", "--ttl", "10000y"],
        vec!["--sub", "x", "--department", "office", "--roles", "auditor", "--ttl", "31days"],
    ] {
        assert!(!token(&bad).status.success(), "{bad:?}");
    }
    // An account's token carries its epoch; a deactivated account gets none.
    let mut conn = shuiwu::db::DatabaseUrl::parse(&url).unwrap().establish().unwrap();
    let admin_id: String = {
        use diesel::prelude::*;
        use shuiwu::db::schema::accounts::dsl as a;
        a::accounts.select(a::id).first(&mut conn).unwrap()
    };
    assert!(token(&["--sub", &admin_id, "--department", "office", "--roles", "admin"]).status.success());
    {
        use diesel::prelude::*;
        use shuiwu::db::schema::accounts::dsl as a;
        diesel::update(a::accounts).set(a::active.eq(false)).execute(&mut conn).unwrap();
    }
    let refused = token(&["--sub", &admin_id, "--department", "office", "--roles", "admin"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("deactivated"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn migrate_subcommand_prepares_a_database_and_bad_urls_are_refused() {
    let dir = std::env::temp_dir().join(format!("shuiwu-cli-{}", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}/nested/shuiwu.db", dir.display());
    // A dry run lists what would be applied and applies nothing.
    let dry = |url: &str| {
        let out = shuiwu().args(["migrate", "--dry-run"]).env("SHUIWU_DATABASE_URL", url).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let pending = dry(&url);
    let migrations =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite")).unwrap().count();
    assert_eq!(pending.lines().filter(|l| l.starts_with("pending: ")).count(), migrations, "{pending}");
    assert!(pending.contains("pending: 2026-11-22-000001_foundation"), "{pending}");
    assert!(!dir.join("nested/shuiwu.db").exists(), "a dry run creates no database");
    let out = shuiwu().arg("migrate").env("SHUIWU_DATABASE_URL", &url).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("nested/shuiwu.db").exists());
    assert_eq!(dry(&url).trim(), "no pending migrations: the database is up to date");
    // Without a bootstrap password, a random one is written next to the database, readable by the owner only.
    let pw = dir.join("nested/initial-admin-password");
    assert!(pw.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let logs = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let password = std::fs::read_to_string(&pw).unwrap();
    assert!(!logs.contains(password.trim()), "the password is never logged");
    assert!(logs.contains("initial-admin-password"), "the log says where it is");
    let out = shuiwu().arg("migrate").env("SHUIWU_DATABASE_URL", "mysql://nope").output().unwrap();
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(dir);
}
