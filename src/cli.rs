//! The `shuiwu` command line: `serve` (default), `migrate`, `openapi`, `token`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::identity::Role;
use crate::security::jwt::load_jwt_secret;
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
        /// Lifetime, e.g. `15m`, `1h`.
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
            if parsed.is_empty() {
                return Err("at least one role is required".into());
            }
            let secret = load_jwt_secret(&cli.settings)?;
            let keys = TokenKeys::new(&secret, &cli.settings.jwt_issuer, &cli.settings.jwt_audience);
            let (token, _) = keys.issue(&sub, username.as_deref(), &department, &parsed, ttl);
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
