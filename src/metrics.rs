//! The service's metrics in the Prometheus (OpenMetrics) text format, kept with `prometheus-client`: requests by
//! route template and status, their latency, the connection pool, audit events waiting for their sequence
//! number, and failed or throttled sign-ins. Each instance keeps its own; Prometheus scrapes every instance
//! (`GET /metrics`, see `health.rs` for who may) and sums. The metric names are listed in docs/operations.md.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::db::PoolStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// What a sign-in proved or failed to prove: the label of the failure and throttle counters.
#[derive(Debug, Clone, Copy)]
pub enum Credential {
    /// `POST /auth/login`.
    Password,
    /// `POST /auth/token` (service accounts).
    ClientSecret,
    /// `current_password` when setting one's own password.
    CurrentPassword,
    /// `POST /auth/refresh` with an unknown, used or expired token.
    RefreshToken,
}

impl Credential {
    fn label(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientSecret => "client_secret",
            Self::CurrentPassword => "current_password",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// The route label of requests that matched no route: one value, so that scanners cannot grow the series.
pub const UNMATCHED: &str = "(unmatched)";

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    failures: Family<KindLabels, Counter>,
    throttled: Family<KindLabels, Counter>,
    pool_connections: Family<StateLabels, Gauge>,
    pool_max: Gauge,
    pool_waiting: Gauge,
    audit_pending: Family<Vec<(String, String)>, Gauge>,
    database_up: Gauge,
}

/// What the scrape learned of the database.
#[derive(Debug, Clone, Copy)]
pub enum DatabaseProbe {
    /// It answered: the audit events pending numbering (counted up to [`PENDING_COUNT_CAP`]).
    Up { audit_pending: i64 },
    /// Every connection was busy for the scrape's short wait: up, by the connections in use, but not asked.
    Busy,
    /// It did not answer.
    Down,
}

/// The audit-pending gauge counts at most this many (reading a bounded prefix of the partial index): far more than a
/// healthy trail ever has pending, and cheap to count on every scrape.
pub const PENDING_COUNT_CAP: i64 = 10_000;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("shuiwu");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by method, route template and status", requests.clone());
        // 1 ms … ~16 s: the contract's targets are tens of milliseconds, exports and imports take seconds.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15))
        });
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response head, by method and route template",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let failures = Family::<KindLabels, Counter>::default();
        registry.register(
            "sign_in_failures",
            "Failed sign-ins and credential checks by credential (password, client_secret, current_password, refresh_token)",
            failures.clone(),
        );
        let throttled = Family::<KindLabels, Counter>::default();
        registry.register("sign_in_throttled", "Sign-in attempts refused with 429 by the throttle", throttled.clone());
        let pool_connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Open database connections of this instance, in use or idle",
            pool_connections.clone(),
        );
        let pool_max = Gauge::default();
        registry.register("db_pool_max_connections", "The pool's size (SHUIWU_DB_POOL_SIZE)", pool_max.clone());
        let pool_waiting = Gauge::default();
        registry.register("db_pool_waiting", "Requests waiting for a database connection", pool_waiting.clone());
        let audit_pending = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "audit_events_pending",
            "Committed audit events not yet numbered into the chain (normally 0 within a second; counted up to 10000; absent when the scrape could not ask)",
            audit_pending.clone(),
        );
        let database_up = Gauge::default();
        registry.register("database_up", "1 when the last scrape reached the database, else 0", database_up.clone());
        let build = Family::<VersionLabels, Gauge>::default();
        build.get_or_create(&VersionLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "The running release", build);
        Self {
            registry,
            requests,
            latency,
            failures,
            throttled,
            pool_connections,
            pool_max,
            pool_waiting,
            audit_pending,
            database_up,
        }
    }

    /// Counts a finished request.
    pub fn observe_request(&self, method: &actix_web::http::Method, route: Option<&str>, status: u16, seconds: f64) {
        let method = method_label(method);
        let route = route.unwrap_or(UNMATCHED).to_string();
        self.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).inc();
        self.latency.get_or_create(&RouteLabels { method, route }).observe(seconds);
    }

    pub fn sign_in_failed(&self, credential: Credential) {
        self.failures.get_or_create(&KindLabels { kind: credential.label() }).inc();
    }

    pub fn sign_in_throttled(&self, credential: Credential) {
        self.throttled.get_or_create(&KindLabels { kind: credential.label() }).inc();
    }

    /// The exposition, with the gauges read now: the pool's state and what the scrape learned of the database.
    pub fn render(&self, pool: PoolStatus, database: DatabaseProbe) -> String {
        self.pool_connections.get_or_create(&StateLabels { state: "in_use" }).set(i64::from(pool.in_use));
        self.pool_connections.get_or_create(&StateLabels { state: "idle" }).set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        self.pool_waiting.set(pool.waiting);
        self.database_up.set(i64::from(!matches!(database, DatabaseProbe::Down)));
        match database {
            DatabaseProbe::Up { audit_pending } => {
                self.audit_pending.get_or_create(&Vec::new()).set(audit_pending);
            }
            DatabaseProbe::Busy | DatabaseProbe::Down => self.audit_pending.clear(),
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The standard methods by name, anything else as `OTHER` (a client cannot grow the series).
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts every request by the route template it matches (`/api/v1/permits/{id}`, never the id itself). A request
/// whose client went away before the answer counts as status 499 (nginx's "client closed request"). Requests the
/// HTTP parser refuses before the application sees them (a malformed request line, oversized headers) are not
/// counted.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(metrics) = req.app_data::<web::Data<Metrics>>().cloned() else {
        return next.call(req).await;
    };
    // The route comes from the path (the router's table), so it is known even when the answer never comes.
    let mut pending = Pending {
        metrics,
        method: req.method().clone(),
        route: req.match_pattern(),
        started: Instant::now(),
        status: None,
    };
    let result = next.call(req).await;
    pending.status = Some(match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    });
    result
}

/// A request being answered; observed when dropped, with status 499 if no answer came.
struct Pending {
    metrics: web::Data<Metrics>,
    method: actix_web::http::Method,
    route: Option<String>,
    started: Instant,
    status: Option<u16>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let status = self.status.unwrap_or(499);
        // A method the route does not have is one series, whatever the route: a client cannot multiply them.
        let route = if status == 405 { None } else { self.route.as_deref() };
        self.metrics.observe_request(&self.method, route, status, self.started.elapsed().as_secs_f64());
    }
}
