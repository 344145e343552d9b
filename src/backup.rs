//! `shuiwu backup` and `shuiwu restore` for the embedded SQLite database, and `shuiwu migrate --dry-run`.
//!
//! A backup is SQLite's `VACUUM INTO`: one read transaction, so the copy is the database as one moment saw it while
//! the service keeps writing (a file copy under writers could mix two moments). It is written beside the target and
//! renamed into place once synced, then checked (`PRAGMA integrity_check`). A restore checks the copy the same way
//! and that this release knows every migration it has, keeps the replaced database as `…before-restore-<time>`,
//! and moves the copy into place with no stale WAL beside it. PostgreSQL is backed up with `pg_dump` (see
//! docs/operations.md); these commands say so.

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::SqliteConnection;
use diesel_migrations::MigrationHarness;

use crate::config::Settings;
use crate::db::{DbConn, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

const PG_HINT: &str = "the database is PostgreSQL: back it up with pg_dump --format=custom and restore it with \
                       pg_restore (docs/operations.md, \"Backups\")";

/// What a backup or restore found in the copy.
#[derive(Debug)]
pub struct Copy {
    pub path: PathBuf,
    pub bytes: u64,
    /// The newest migration the copy has.
    pub schema: String,
    /// Events in the audit trail.
    pub audit_events: i64,
}

impl std::fmt::Display for Copy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} bytes, schema {}, {} audit events)",
            self.path.display(),
            self.bytes,
            self.schema,
            self.audit_events
        )
    }
}

fn sqlite_path(settings: &Settings) -> Result<PathBuf, String> {
    let url = settings.database()?;
    url.sqlite_path().map(PathBuf::from).ok_or_else(|| PG_HINT.to_string())
}

/// Opens an SQLite file by its absolute path (a relative name starting with `file:` would be read as a URI).
fn open(path: &Path) -> Result<SqliteConnection, String> {
    let path = absolute(path)?;
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.batch_execute("PRAGMA busy_timeout = 30000;").map_err(|e| e.to_string())?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Checks a copy: intact, a shuiwu database, and not newer than this release.
fn check(path: &Path) -> Result<Copy, String> {
    let bytes = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    let mut conn = open(path)?;
    let verdict: Vec<Line> = diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check")
        .load(&mut conn)
        .map_err(|e| format!("{} is not an SQLite database: {e}", path.display()))?;
    if verdict.len() != 1 || verdict[0].line != "ok" {
        let found: Vec<String> = verdict.into_iter().take(5).map(|l| l.line).collect();
        return Err(format!("{} is damaged: {}", path.display(), found.join("; ")));
    }
    let versions: Vec<Line> =
        diesel::sql_query("SELECT version AS line FROM __diesel_schema_migrations ORDER BY version")
            .load(&mut conn)
            .map_err(|_| format!("{} is not a shuiwu database (it has no migrations)", path.display()))?;
    let known: Vec<String> =
        diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
    if let Some(unknown) = versions.iter().find(|v| !known.contains(&v.line)) {
        return Err(format!(
            "{} was made by a newer release (migration {} is unknown to this one): restore it with that release",
            path.display(),
            unknown.line
        ));
    }
    let audit_events = diesel::sql_query("SELECT COUNT(*) AS n FROM audit_events")
        .get_result::<Count>(&mut conn)
        .map_err(|e| e.to_string())?
        .n;
    let schema = versions.last().map(|v| v.line.clone()).unwrap_or_default();
    Ok(Copy { path: path.to_path_buf(), bytes, schema, audit_events })
}

/// Writes a consistent copy of the live SQLite database to `to` (which must not exist).
pub fn backup(settings: &Settings, to: &Path) -> Result<Copy, String> {
    let source = sqlite_path(settings)?;
    if !source.exists() {
        return Err(format!("no database at {}", source.display()));
    }
    if to.exists() {
        return Err(format!("{} exists: choose a new file name", to.display()));
    }
    let to = &absolute(to)?;
    let partial = sibling(to, "partial");
    let _ = std::fs::remove_file(&partial);
    let mut conn = open(&source)?;
    let written = diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(partial.to_string_lossy().to_string())
        .execute(&mut conn)
        .map_err(|e| format!("backup failed: {e}"));
    // Checked before it takes its name: a file at `to` is always a good copy.
    let checked = written.and_then(|_| sync(&partial)).and_then(|_| check(&partial));
    let copy = match checked {
        Ok(copy) => copy,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, to).map_err(|e| format!("cannot move the copy to {}: {e}", to.display()))?;
    sync_dir(to);
    Ok(Copy { path: to.to_path_buf(), ..copy })
}

/// Replaces the SQLite database with the copy `from`. The service must be stopped; it applies any newer
/// migrations when it starts. Returns the copy restored and where the replaced database was kept.
pub fn restore(settings: &Settings, from: &Path) -> Result<(Copy, Option<PathBuf>), String> {
    let target = sqlite_path(settings)?;
    let copy = check(from)?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let incoming = sibling(&target, "restoring");
    std::fs::copy(from, &incoming).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    sync(&incoming)?;
    let kept = if target.exists() {
        // Fold the WAL into the database file, so that what is kept is whole. A reader or writer still at work
        // (the service was not stopped) keeps the checkpoint from finishing: refuse then. A database too damaged
        // to open is set aside as it is, its WAL beside it.
        if let Ok(mut conn) = open(&target) {
            let done: Result<Vec<Checkpoint>, _> = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").load(&mut conn);
            if let Ok(Some(c)) = done.map(|rows| rows.into_iter().next()) {
                if c.busy != 0 {
                    let _ = std::fs::remove_file(&incoming);
                    return Err(format!("{} is in use: stop the service first", target.display()));
                }
            }
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let mut kept = sibling(&target, &format!("before-restore-{stamp}"));
        let mut n = 1;
        while kept.exists() {
            n += 1;
            kept = sibling(&target, &format!("before-restore-{stamp}-{n}"));
        }
        // A second name for the database being replaced; the rename below then swaps the restored copy in
        // atomically, so there is never a moment without a database at the target.
        std::fs::hard_link(&target, &kept).map_err(|e| format!("cannot keep {}: {e}", target.display()))?;
        let wal = with_suffix(&target, "-wal");
        if wal.exists() {
            std::fs::rename(&wal, with_suffix(&kept, "-wal"))
                .map_err(|e| format!("cannot move {}: {e}", wal.display()))?;
        }
        Some(kept)
    } else {
        None
    };
    let shm = with_suffix(&target, "-shm");
    if shm.exists() {
        std::fs::remove_file(&shm).map_err(|e| format!("cannot remove {}: {e}", shm.display()))?;
    }
    std::fs::rename(&incoming, &target).map_err(|e| format!("cannot move the copy into place: {e}"))?;
    sync_dir(&target);
    Ok((Copy { path: target, ..copy }, kept))
}

/// The migrations this release would apply to the configured database, without applying them.
pub fn pending_migrations(settings: &Settings) -> Result<Vec<String>, String> {
    settings.validate()?;
    let url = settings.database()?;
    if let Some(path) = url.sqlite_path() {
        if !Path::new(path).exists() {
            let all = diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                .map_err(|e| e.to_string())?;
            return Ok(all.iter().map(|m| m.name().to_string()).collect());
        }
    }
    let mut conn = url.establish().map_err(|e| format!("cannot connect to the database: {e}"))?;
    let pending = match &conn {
        DbConn::Postgres(_) => conn.pending_migrations(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(_) => conn.pending_migrations(SQLITE_MIGRATIONS),
    };
    Ok(pending.map_err(|e| e.to_string())?.iter().map(|m| m.name().to_string()).collect())
}

fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "shuiwu.db".into());
    path.with_file_name(format!("{name}.{tag}"))
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn sync(path: &Path) -> Result<(), String> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| format!("cannot sync {}: {e}", path.display()))
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}
