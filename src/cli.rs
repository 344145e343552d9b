//! The `shuiwu` command line: `serve` (default), `migrate`, `openapi`, `token`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::identity::{check_roles, Holder, Role};
use crate::messages::{Lang, Msg};
use crate::security::jwt::{load_jwt_secret, Subject, MAX_TOKEN_LIFETIME_SECS};
use crate::security::revocation::Standing;
use crate::security::TokenKeys;

#[derive(Parser)]
#[command(name = "shuiwu", version, about = "Back-end service of a county water affairs bureau (水务局)")]
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
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
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
            let secret = load_jwt_secret(&cli.settings)?;
            let keys = TokenKeys::new(&secret, &cli.settings.jwt_issuer, &cli.settings.jwt_audience);
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
        Command::Migrate => {
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
