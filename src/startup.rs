//! Building and running the service: database, migrations, bootstrap, keys, routes and middleware. The one
//! module that knows every route module; nothing imports it but the binary's entry points.

use std::net::TcpListener;
use std::sync::Arc;

use actix_http::{HttpService, Protocol};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Server};
use actix_web::middleware::from_fn;
use actix_web::rt::net::TcpStream;
use actix_web::{web, App, HttpResponse};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{Backend, Db};
use crate::http::connection::ProblemStream;
use crate::http::fallback::RouteTable;
use crate::http::{json, request_id};
use crate::security::password::Hashing;
use crate::security::revocation::Revocations;
use crate::security::{Authenticator, TokenKeys};
use crate::state::AppState;
use crate::write::idempotency::{self, KeyTtl};

/// Every route of the service; the OpenAPI document is generated from the same registration.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(crate::health::live).service(crate::health::ready).service(crate::health::metrics).service(
        scope::scope("/api/v1")
            .configure(crate::auth::routes::routes)
            .configure(crate::accounts::routes::routes)
            .configure(crate::water_users::routes::routes)
            .configure(crate::water_zones::routes::routes)
            .configure(crate::permits::routes::routes)
            .configure(crate::withdrawals::routes::routes)
            .configure(crate::fees::rate_routes::routes)
            .configure(crate::fees::routes::routes)
            .configure(crate::fees::payment_routes::routes)
            .configure(crate::planned_use::import::routes)
            .configure(crate::planned_use::routes::routes)
            .configure(crate::planned_use::plan_routes::routes)
            .configure(crate::planned_use::usage_routes::routes)
            .configure(crate::planned_use::monitoring::routes)
            .configure(crate::planned_use::tiers::routes)
            .configure(crate::planned_use::settle::routes)
            .configure(crate::inspections::routes::routes)
            .configure(crate::inspections::rectification_routes::routes)
            .configure(crate::inspections::evidence_routes::routes)
            .configure(crate::cases::routes::routes)
            .configure(crate::cases::documents::routes)
            .configure(crate::cases::evidence_routes::routes)
            .configure(crate::calendar::routes::routes)
            .configure(crate::audit_events::routes::routes)
            .configure(crate::changes::routes)
            .configure(crate::exports::routes::routes)
            .configure(crate::reports::routes::routes),
    );
}

/// The OpenAPI document of [`routes`].
pub fn api_document() -> serde_json::Value {
    crate::openapi::document(routes)
}

/// The document as served at `/api-docs/openapi.json` and committed as `openapi/openapi.json`.
pub fn api_document_string() -> String {
    crate::openapi::to_string(&api_document())
}

pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    state: web::Data<AppState>,
    turns: web::Data<crate::changes::calendar::Turns>,
}

/// Opens the database, applies migrations and bootstraps the first admin (under a lock on PostgreSQL, so
/// several instances starting together do this once).
pub fn prepare_database(settings: &Settings) -> Result<Db, String> {
    settings.validate()?;
    let url = settings.database()?;
    if let Some(path) = url.sqlite_path() {
        if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
    }
    // Default: four connections per core, at most 32. Measured on 2 cores against a local PostgreSQL (benches/,
    // 2026-11): the overdue-rectification list's p99 at 16 clients was 11–14 ms at 4, 21–23 ms at 6 and 8, 32–41 ms
    // at 12 (more backends than cores make the slowest requests wait for the scheduler); withdrawals/s at 32
    // clients were 1 650 at 4, 1 790 at 6, 1 860–1 980 at 8, 1 760 at 12 (writes hold their connection through the
    // WAL flush and want a few more than reads). 8 keeps both. The cap keeps a few instances on a big machine
    // inside PostgreSQL's default max_connections (100); raise it for a remote database, where each round trip
    // holds a connection longer, or for write-heavy instances.
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(2);
    let pool_size = settings.db_pool_size.unwrap_or((4 * cores).min(32)).max(1);
    let db = Db::connect(&url, pool_size, settings.db_acquire_timeout)?;
    let mut conn = db.get_blocking().map_err(|_| format!("cannot connect to the database {url:?}"))?;
    crate::db::with_startup_lock(&mut conn, |conn| {
        let applied = crate::db::run_migrations(conn)?;
        for m in &applied {
            tracing::info!(migration = %m, "applied migration");
        }
        match crate::auth::bootstrap_admin(conn, settings)? {
            Some(path) => tracing::warn!(
                password_file = %path.display(),
                "created the first account: sign in as `admin` with the password in this file, then change it"
            ),
            None if settings.bootstrap_password().is_some() => {
                tracing::info!("bootstrap admin: sign in as `admin` with SHUIWU_BOOTSTRAP_ADMIN_PASSWORD (if this database is new)")
            }
            None => {}
        }
        Ok(())
    })?;
    Ok(db)
}

/// The evidence store of `settings`: S3-compatible storage at `SHUIWU_EVIDENCE_URL` when set, otherwise the local
/// directory `SHUIWU_EVIDENCE_DIR` (by default `<data dir>/evidence`).
pub fn evidence_store(settings: &Settings) -> Result<crate::evidence::BlobStore, String> {
    match settings.evidence_url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => {
            if settings.evidence_dir.is_some() {
                tracing::warn!(
                    "SHUIWU_EVIDENCE_URL is set: evidence is kept there, not in SHUIWU_EVIDENCE_DIR (copy sha256/ from the directory into the bucket when moving an existing installation)"
                );
            }
            crate::evidence::BlobStore::s3(url.trim())
        }
        None => crate::evidence::BlobStore::local(
            &settings.evidence_dir.clone().unwrap_or_else(|| settings.data_dir().join("evidence")),
        ),
    }
}

impl Application {
    /// Prepares everything and binds the listener (port 0 picks a free port, for tests).
    pub fn build(settings: Settings) -> Result<Self, String> {
        Self::build_with_clock(settings, Arc::new(Clock::system()))
    }

    /// Like [`Application::build`], on a clock the caller keeps (tests move it).
    pub fn build_with_clock(settings: Settings, clock: Arc<Clock>) -> Result<Self, String> {
        let db = prepare_database(&settings)?;
        if db.backend == Backend::Postgres && settings.jwt_secret.is_none() && settings.jwt_keys.is_none() {
            tracing::warn!("SHUIWU_JWT_KEYS is not set: running several instances needs the same keys on each");
        }
        let keys = TokenKeys::from_settings(&settings)?;
        let revocations = Arc::new(Revocations::default());
        {
            let mut conn = db.get_blocking().map_err(|e| e.to_string())?;
            revocations.reload(&mut conn).map_err(|e| e.to_string())?;
        }
        let listener =
            TcpListener::bind(&settings.bind).map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let workers = settings.workers;
        let export_slots = web::Data::new(crate::exports::routes::Slots::default());
        let turns = web::Data::new(crate::changes::calendar::Turns::default());
        let app_turns = turns.clone();
        let rate_default =
            web::Data::new(crate::security::rate::DefaultLimit(settings.service_rate_limit.min(1_000_000) as i32));
        let key_ttl = web::Data::new(KeyTtl(
            chrono::TimeDelta::from_std(settings.idempotency_ttl).unwrap_or(chrono::TimeDelta::hours(24)),
        ));
        let authn = Arc::new(Authenticator { keys, revocations, clock });
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let hashing = Arc::new(Hashing::new(
            settings.password_hashing_concurrency.unwrap_or(cores),
            std::time::Duration::from_secs(10),
        ));
        let evidence = evidence_store(&settings)?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let metrics_listener = match &settings.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} (SHUIWU_METRICS_BIND): {e}"))?,
            ),
            None => None,
        };
        let metrics_port = match &metrics_listener {
            Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?.port()),
            None => None,
        };
        let state = web::Data::new(AppState {
            db: db.clone(),
            authn: authn.clone(),
            settings: Arc::new(settings),
            hashing,
            evidence,
            metrics: metrics.clone(),
        });
        let metrics = web::Data::from(metrics);
        let db = web::Data::new(db);
        let authn = web::Data::from(authn);
        let document = api_document();
        let spec = web::Data::new(crate::openapi::to_string(&document));
        let table = web::Data::new(RouteTable::from_document(&document));
        let app_state = state.clone();
        let scrape_state = state.clone();
        let app = move || {
            App::new()
                .into_utoipa_app()
                .configure(routes)
                .into_app()
                .app_data(app_state.clone())
                .app_data(db.clone())
                .app_data(authn.clone())
                .app_data(key_ttl.clone())
                .app_data(rate_default.clone())
                .app_data(export_slots.clone())
                .app_data(app_turns.clone())
                .app_data(table.clone())
                .app_data(spec.clone())
                .app_data(metrics.clone())
                .app_data(web::PathConfig::default().error_handler(json::path_error))
                .route("/api-docs/openapi.json", web::get().to(serve_spec))
                .route("/swagger-ui", web::get().to(to_swagger_ui))
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}")
                        .config(utoipa_swagger_ui::Config::from("/api-docs/openapi.json").persist_authorization(false)),
                )
                .default_service(web::to(crate::http::fallback::handler))
                .wrap(from_fn(idempotency::middleware))
                .wrap(from_fn(crate::security::rate::middleware))
                .wrap(TracingLogger::<request_id::RootSpan>::new())
                .wrap(from_fn(request_id::middleware))
                .wrap(from_fn(crate::metrics::middleware))
        };
        // What `HttpServer` does, with each connection wrapped in a `ProblemStream` so that the HTTP parser's own
        // bodiless error answers become problems too.
        let mut builder = actix_server::Server::build();
        if let Some(n) = workers {
            builder = builder.workers(n);
        }
        if let Some(listener) = metrics_listener {
            builder = builder
                .listen("shuiwu-metrics", listener, move || {
                    let state = scrape_state.clone();
                    let app = move || {
                        App::new()
                            .app_data(state.clone())
                            .app_data(web::Data::new(crate::health::MetricsListener))
                            .service(crate::health::metrics)
                    };
                    HttpService::build()
                        .finish(map_config(app().into_factory().map_err(|e| e.error_response()), |_| {
                            AppConfig::default()
                        }))
                        .tcp()
                })
                .map_err(|e| e.to_string())?;
        }
        let server = builder
            .listen("shuiwu", listener, move || {
                let http = HttpService::build()
                    .client_disconnect_timeout(std::time::Duration::from_secs(1))
                    .finish(map_config(app().into_factory().map_err(|e| e.error_response()), |_| AppConfig::default()));
                fn_service(|io: TcpStream| async move {
                    let peer = io.peer_addr().ok();
                    Ok::<_, actix_http::error::DispatchError>((ProblemStream::new(io), Protocol::Http1, peer))
                })
                .and_then(http)
            })
            .map_err(|e| e.to_string())?
            .run();
        Ok(Self { port, metrics_port, server, state, turns })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener (`SHUIWU_METRICS_BIND`), if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until stopped, with the background upkeep (revocation reload, the audit sweep, expiry of old keys) and
    /// the calendar's changes (`changes::calendar`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        actix_web::rt::spawn(async move { upkeep(state).await });
        let state = self.state.clone();
        actix_web::rt::spawn(async move { sequencer(state).await });
        let (state, turns) = (self.state.clone(), self.turns.clone());
        actix_web::rt::spawn(async move { crate::changes::calendar::keep_up(state, turns).await });
        self.server.await
    }
}

/// `/swagger-ui` → `/swagger-ui/` (what people type).
async fn to_swagger_ui() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((actix_web::http::header::LOCATION, "/swagger-ui/")).finish()
}

async fn serve_spec(spec: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(spec.get_ref().clone())
}

/// Numbers audit events and feed entries soon after they commit: woken by writes (gathering 50 ms of them into one
/// batch, so that under load numbering costs a few statements per hundred writes), and every second regardless (rows
/// a crashed writer or another instance left). Readers of the trail and the feed number what is pending themselves
/// before they read, so this pace never delays what they see.
async fn sequencer(state: web::Data<AppState>) {
    let written = state.db.written.clone();
    loop {
        let _ = actix_web::rt::time::timeout(std::time::Duration::from_secs(1), written.notified()).await;
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        if let Err(e) = state.db.run(|conn| Ok(crate::audit::sequence_pending(conn)?)).await {
            tracing::warn!(error = %e, "could not number pending audit events");
        }
    }
}

async fn upkeep(state: web::Data<AppState>) {
    let every = state.settings.revocation_refresh.max(std::time::Duration::from_millis(100));
    let mut tick = actix_web::rt::time::interval(every);
    let mut last_purge = std::time::Instant::now();
    loop {
        tick.tick().await;
        let revocations = state.authn.revocations.clone();
        if let Err(e) = state.db.run(move |conn| Ok(revocations.reload(conn)?)).await {
            tracing::warn!(error = %e, "could not reload revoked tokens");
        }

        if last_purge.elapsed() >= std::time::Duration::from_secs(60) {
            last_purge = std::time::Instant::now();
            let settings = state.settings.clone();
            match state.db.write(move |conn| Ok(crate::auth::purge_expired(conn, &settings)?)).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not purge expired rows"),
            }
        }
    }
}
