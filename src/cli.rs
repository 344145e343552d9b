//! The `shuiwu` command line: `serve` (default), `migrate [--dry-run]`, `backup`, `restore`, `openapi`, `token`,
//! `healthcheck`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::identity::{check_roles, Holder, Role};
use crate::messages::{Lang, Msg};
use crate::security::jwt::{load_signing_keys, Subject, MAX_TOKEN_LIFETIME_SECS};
use crate::security::revocation::Standing;
use crate::security::TokenKeys;

/// The first five minutes of a new deployment, as `shuiwu --help` shows them.
const FIRST_STEPS: &str = r#"The first five minutes (一、启动；二、管理员登录；三、建部门；四、建账号；五、交付登录):

  # 1. Start (PostgreSQL in production; SQLite by default). Set a JWT key and the first admin's password.
  export SHUIWU_DATABASE_URL=postgres://shuiwu:secret@db/shuiwu SHUIWU_JWT_SECRET=$(openssl rand -hex 32)
  export SHUIWU_BOOTSTRAP_ADMIN_PASSWORD='choose-a-long-one'   # or leave it unset: see data/initial-admin-password
  shuiwu &

  # 2. Sign in as admin and keep the token.
  API=http://127.0.0.1:8080/api/v1
  TOKEN=$(curl -s $API/auth/login -H 'content-type: application/json' \
    -d '{"username":"admin","password":"choose-a-long-one"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

  # 3. Departments (code + name).
  curl -s $API/departments -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"code":"water_resources_section","name":"水资源管理科"}'

  # 4. Staff accounts with their roles (admin holds no business role).
  curl -s $API/accounts -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"username":"zhang.wei","display_name":"张伟","department":"water_resources_section",
         "roles":["water_resources"],"password":"a first password for zhang"}'

  # 5. Hand each person their username and first password; they change it at once
  #    (POST $API/accounts/{id}/password with current_password). Change the admin's password too.
  #    Swagger UI: http://127.0.0.1:8080/swagger-ui/ (sign in, then Authorize with the access_token).
"#;

#[derive(Parser)]
#[command(
    name = "shuiwu",
    version,
    about = "Back-end service of a county water affairs bureau (水务局)",
    after_long_help = FIRST_STEPS
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate {
        /// List the migrations that would be applied, and apply none.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a consistent copy of the SQLite database while the service runs (PostgreSQL: pg_dump).
    Backup {
        /// The copy to write (must not exist).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Replace the SQLite database with a backup; stop the service first (PostgreSQL: pg_restore).
    Restore {
        /// The backup to restore.
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Remove evidence files that no record refers to (left by a crash during an upload); safe while serving.
    SweepEvidence {
        /// Leave files younger than this alone, e.g. `1h`, `30m`.
        #[arg(long, default_value = "1h", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
        older_than: Duration,
        /// Count them, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when the service at SHUIWU_BIND answers `/health/ready` with 200 (a container's HEALTHCHECK).
    Healthcheck,
    /// Mint an access token with the configured key, for operators.
    Token {
        /// Subject (account id or a name for the operator's purpose).
        #[arg(long)]
        sub: String,
        /// Department code.
        #[arg(long)]
        department: String,
        /// Comma-separated roles, e.g. `admin` or `platform`.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Lifetime, e.g. `15m`, `1h` (at most 30 days).
        #[arg(long, default_value = "1h", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
        ttl: Duration,
        /// Username to put into the token.
        #[arg(long)]
        username: Option<String>,
    },
}

pub fn run() -> Result<(), String> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!("{}", crate::startup::api_document_string());
            Ok(())
        }
        Command::Token { sub, department, roles, ttl, username } => {
            let parsed: Vec<Role> = roles
                .iter()
                .map(|r| Role::parse(r.trim()).ok_or_else(|| format!("unknown role {r:?}")))
                .collect::<Result<_, _>>()?;
            if ttl.is_zero() || ttl.as_secs() > MAX_TOKEN_LIFETIME_SECS as u64 {
                return Err("--ttl must be between 1s and 30 days".into());
            }
            // The subject is checked against the database: a deactivated account gets no token, and an account's
            // token carries its current token epoch (so that it ends with the account's sessions).
            let standing = subject_standing(&cli.settings, &sub)?;
            let holder = match &standing {
                Some((holder, _)) => *holder,
                None if parsed.contains(&Role::Platform) => Holder::Service,
                None => Holder::Staff,
            };
            check_roles(&parsed, holder).map_err(|r| Msg::Roles(r).render(Lang::En))?;
            let epoch = match standing {
                Some((_, s)) if !s.active => return Err(format!("{sub} is a deactivated account")),
                Some((_, s)) => s.epoch,
                None => 0,
            };
            let own = load_signing_keys(&cli.settings)?;
            let keys = TokenKeys::with_keys(&own, &cli.settings.jwt_issuer, &cli.settings.jwt_audience);
            let subject = Subject {
                sub: &sub,
                username: username.as_deref(),
                department: &department,
                roles: &parsed,
                epoch,
                session: None,
            };
            let (token, _) = keys.issue(&subject, ttl);
            println!("{token}");
            Ok(())
        }
        Command::Healthcheck => healthcheck(&cli.settings.bind),
        Command::Migrate { dry_run: true } => {
            let pending = crate::backup::pending_migrations(&cli.settings)?;
            if pending.is_empty() {
                println!("no pending migrations: the database is up to date");
            }
            for m in pending {
                println!("pending: {m}");
            }
            Ok(())
        }
        Command::SweepEvidence { older_than, dry_run } => {
            let settings = cli.settings;
            let db = crate::startup::prepare_database(&settings)?;
            let store = crate::startup::evidence_store(&settings)?;
            let cutoff = chrono::Utc::now()
                - chrono::TimeDelta::from_std(older_than).map_err(|_| "--older-than is too long".to_string())?;
            let swept = actix_web::rt::System::new()
                .block_on(crate::evidence::sweep::sweep(&store, &db, cutoff, dry_run))
                .map_err(|e| e.to_string())?;
            let verb = if dry_run { "would remove" } else { "removed" };
            println!(
                "checked {} evidence files older than {}: {verb} {} that no record refers to",
                swept.checked,
                humantime::format_duration(older_than),
                swept.removed
            );
            Ok(())
        }
        Command::Backup { to } => {
            let copy = crate::backup::backup(&cli.settings, &to)?;
            println!("backed up to {copy}");
            Ok(())
        }
        Command::Restore { from } => {
            let (copy, kept) = crate::backup::restore(&cli.settings, &from)?;
            println!("restored {copy}");
            if let Some(kept) = kept {
                println!("the replaced database is kept as {}", kept.display());
            }
            println!("start the service: it applies any newer migrations");
            Ok(())
        }
        Command::Migrate { dry_run: false } => {
            crate::telemetry::init(cli.settings.log_format);
            crate::startup::prepare_database(&cli.settings)?;
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::Serve => {
            crate::telemetry::init(cli.settings.log_format);
            let settings = cli.settings;
            tracing::info!(database = ?settings.database()?, bind = %settings.bind, "starting shuiwu");
            actix_web::rt::System::new().block_on(async move {
                let app = crate::startup::Application::build(settings.clone())?;
                let host = settings.bind.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
                tracing::info!(port = app.port(), "ready: Swagger UI at http://{host}:{}/swagger-ui/", app.port());
                app.run_until_stopped().await.map_err(|e| e.to_string())
            })
        }
    }
}

/// Whether `sub` is an account or a service account of the database, and its standing.
fn subject_standing(settings: &Settings, sub: &str) -> Result<Option<(Holder, Standing)>, String> {
    use crate::db::schema::{accounts as a, service_accounts as s};
    use diesel::prelude::*;
    let url = settings.database()?;
    let mut conn = url.establish().map_err(|e| format!("cannot open the database to check the subject: {e}"))?;
    let read = |e: diesel::result::Error| format!("cannot check the subject against the database (migrated?): {e}");
    let staff: Option<(i64, bool)> =
        a::table.find(sub).select((a::token_epoch, a::active)).first(&mut conn).optional().map_err(read)?;
    if let Some((epoch, active)) = staff {
        return Ok(Some((Holder::Staff, Standing { epoch, active })));
    }
    let service: Option<(i64, bool)> =
        s::table.find(sub).select((s::token_epoch, s::active)).first(&mut conn).optional().map_err(read)?;
    Ok(service.map(|(epoch, active)| (Holder::Service, Standing { epoch, active })))
}

/// Asks the service listening on `bind` (`0.0.0.0` is reached on loopback) whether it is ready.
fn healthcheck(bind: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    let mut addr: SocketAddr = bind.parse().map_err(|e| format!("SHUIWU_BIND {bind:?}: {e}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.write_all(b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| format!("{addr}: {e}"))?;
    let mut answer = Vec::new();
    let _ = stream.take(4096).read_to_end(&mut answer);
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("not ready: {status_line:?}"))
    }
}
