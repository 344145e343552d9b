//! Test harness: every test gets a fresh database (an SQLite file, or a new PostgreSQL database) and the real
//! service on a random port, and talks HTTP to it.

use std::time::Duration;

use awc::http::header::HeaderMap;
use awc::http::Method;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;
use shuiwu::clock::Clock;
use shuiwu::config::{Secret, Settings};
use shuiwu::db::{DatabaseUrl, DbConn};
use shuiwu::identity::Role;
use shuiwu::security::jwt::Subject;
use shuiwu::security::TokenKeys;

pub const JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-password";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on. Unreachable → the test fails (never skipped).
/// Without TLS by default: the server is on loopback, and libpq's OpenSSL state must not be torn down by the
/// test process's exit while the in-process server's threads still hold connections.
pub fn postgres_base_url() -> String {
    std::env::var("SHUIWU_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into())
}

/// The URL of database `name` on the server of `base`, keeping `base`'s connection options.
fn database_on(base: &str, name: &str) -> String {
    let (path, options) = base.split_once('?').map_or((base, None), |(p, o)| (p, Some(o)));
    let (prefix, _) = path.rsplit_once('/').expect("database URL with a path");
    match options {
        Some(o) => format!("{prefix}/{name}?{o}"),
        None => format!("{prefix}/{name}"),
    }
}

pub struct TestApp {
    pub address: String,
    /// The metrics listener (`SHUIWU_METRICS_BIND`), when the test configured one.
    pub metrics_address: Option<String>,
    pub database_url: String,
    pub backend: Backend,
    pub data_dir: std::path::PathBuf,
    pub keys: TokenKeys,
    /// The service's clock: tests move it (`clock.set`) instead of waiting.
    pub clock: std::sync::Arc<Clock>,
    /// The S3 evidence store (`SHUIWU_EVIDENCE_URL`), when the test configured one.
    pub evidence_url: Option<String>,
    pg_database: Option<String>,
    client: awc::Client,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_database {
            if let Ok(mut conn) = diesel::PgConnection::establish(&postgres_base_url()) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn test_settings(backend: Backend) -> (Settings, Option<String>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("shuiwu-test-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (url, pg) = match backend {
        Backend::Sqlite => (format!("sqlite://{}", dir.join("shuiwu.db").display()), None),
        Backend::Postgres => {
            let base = postgres_base_url();
            let mut conn = diesel::PgConnection::establish(&base).unwrap_or_else(|e| {
                panic!("PostgreSQL for tests is unreachable at {base}: {e}. Start it or set SHUIWU_TEST_POSTGRES_URL.")
            });
            let name = format!("shuiwu_t_{}", uuid::Uuid::now_v7().simple());
            conn.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("create test database");
            (database_on(&base, &name), Some(name))
        }
    };
    let mut s = Settings::from_env();
    s.database_url = url.parse().unwrap();
    s.bind = "127.0.0.1:0".into();
    s.data_dir = Some(dir.clone());
    s.jwt_secret = Some(JWT_SECRET.parse::<Secret>().unwrap());
    s.jwt_issuer = "shuiwu".into();
    s.jwt_audience = "shuiwu-api".into();
    s.jwt_external_issuers = None;
    s.bootstrap_admin_password = Some(ADMIN_PASSWORD.parse::<Secret>().unwrap());
    s.workers = Some(1);
    s.db_pool_size = Some(4);
    s.db_acquire_timeout = Duration::from_secs(3);
    s.login_max_failures = 5;
    s.login_window = Duration::from_secs(900);
    s.revocation_refresh = Duration::from_secs(1);
    (s, pg, dir)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_prepared(backend, |s| configure(s)).await
}

/// An app on a fresh database that `prepare` may fill first (an older database to upgrade): it gets the settings
/// before the service opens the database and migrates it.
pub async fn spawn_app_prepared(backend: Backend, prepare: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, pg_database, data_dir) = test_settings(backend);
    prepare(&mut settings);
    let database_url = settings.database_url.expose().to_string();
    let evidence_url = settings.evidence_url.clone();
    let keys = TokenKeys::new(&JWT_SECRET.parse().unwrap(), "shuiwu", "shuiwu-api");
    let clock = std::sync::Arc::new(Clock::system());
    let app = shuiwu::startup::Application::build_with_clock(settings, clock.clone()).expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    actix_rt::spawn(app.run_until_stopped());
    let client = client();
    TestApp {
        address,
        metrics_address,
        database_url,
        backend,
        data_dir,
        keys,
        clock,
        evidence_url,
        pg_database,
        client,
    }
}

/// An app whose evidence is kept in S3-compatible storage, under a prefix of its own in the bucket of
/// `SHUIWU_TEST_S3_URL` (e.g. `s3://shuiwu-test`, with the `AWS_*` variables of its endpoint). Unset → the test
/// fails: the S3 tests are built only when asked for (`--features s3`).
#[cfg(feature = "s3")]
pub async fn spawn_app_in_s3(backend: Backend) -> TestApp {
    let base = std::env::var("SHUIWU_TEST_S3_URL")
        .expect("SHUIWU_TEST_S3_URL (e.g. s3://shuiwu-test, and AWS_ENDPOINT etc.) for the tests of the s3 feature");
    let url = format!("{}/t-{}", base.trim_end_matches('/'), uuid::Uuid::now_v7().simple());
    spawn_app_with(backend, |s| s.evidence_url = Some(url)).await
}

/// Today at the bureau by the real clock (apps start on it).
/// The HTTP client of the tests. Pooled connections are dropped after a second idle: the service closes idle
/// keep-alive connections after 5 s, and a long upload in between would otherwise be written to a connection the
/// server has closed (EPIPE on a slow machine).
fn client() -> awc::Client {
    let connector = awc::Connector::new().conn_keep_alive(Duration::from_secs(1));
    awc::Client::builder().connector(connector).timeout(Duration::from_secs(60)).finish()
}

pub fn today() -> chrono::NaiveDate {
    Clock::system().now().today
}

impl TestApp {
    /// The name of this test's PostgreSQL database (PostgreSQL apps only).
    pub fn pg_database(&self) -> &str {
        self.pg_database.as_deref().expect("a PostgreSQL test app")
    }

    /// A second instance of the service on the same database (it does not own the database).
    pub async fn second_instance(&self) -> TestApp {
        self.instance_with(|_| {}).await
    }

    /// Another instance on the same database, configured by `configure` (e.g. other signing keys).
    pub async fn instance_with(&self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let (mut settings, _, data_dir) = test_settings(Backend::Sqlite);
        settings.database_url = self.database_url.parse().unwrap();
        configure(&mut settings);
        let database_url = settings.database_url.expose().to_string();
        let evidence_url = settings.evidence_url.clone();
        let keys = TokenKeys::new(&JWT_SECRET.parse().unwrap(), "shuiwu", "shuiwu-api");
        let app = shuiwu::startup::Application::build_with_clock(settings, self.clock.clone())
            .expect("second instance builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
        actix_rt::spawn(app.run_until_stopped());
        let client = client();
        TestApp {
            address,
            metrics_address,
            database_url,
            backend: self.backend,
            data_dir,
            keys,
            clock: self.clock.clone(),
            evidence_url,
            pg_database: None,
            client,
        }
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    pub fn etag(&self) -> String {
        self.header("etag").expect("response has an ETag")
    }

    /// Asserts an RFC 9457 problem with this status and code, carrying a request id.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.header("content-type").as_deref(), Some("application/problem+json"), "body: {}", self.text);
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["type"].is_string() && self.body["title"].is_string() && self.body["detail"].is_string());
        let rid = self.body["request_id"].as_str().expect("request_id in the problem");
        assert_eq!(Some(rid.to_string()), self.header("x-request-id"));
    }
}

pub struct Req<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<(Vec<u8>, String)>,
}

impl<'a> Req<'a> {
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some((serde_json::to_vec(body).unwrap(), "application/json".into()));
        self
    }

    pub fn raw(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        self.body = Some((body.into(), content_type.into()));
        self
    }

    pub async fn send(self) -> Resp {
        // A path on the service, or a whole URL (another listener).
        let url = if self.path.starts_with("http") {
            self.path.clone()
        } else {
            format!("{}{}", self.app.address, self.path)
        };
        let mut req = self.app.client.request(self.method.clone(), &url);
        for (k, v) in &self.headers {
            req = req.insert_header((k.as_str(), v.as_str()));
        }
        let mut res = match self.body {
            Some((bytes, ct)) => req.insert_header(("content-type", ct)).send_body(bytes).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.path));
        let bytes = res.body().limit(64 * 1024 * 1024).await.expect("response body");
        let text = String::from_utf8_lossy(&bytes).to_string();
        Resp {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
            bytes: bytes.to_vec(),
        }
    }
}

impl TestApp {
    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req { app: self, method, path: path.into(), headers: vec![], body: None }
    }
    pub fn get(&self, path: &str) -> Req<'_> {
        self.request(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Req<'_> {
        self.request(Method::POST, path)
    }
    pub fn patch(&self, path: &str) -> Req<'_> {
        self.request(Method::PATCH, path)
    }
    pub fn delete(&self, path: &str) -> Req<'_> {
        self.request(Method::DELETE, path)
    }

    /// A token for a made-up subject with these roles (what an operator's `shuiwu token` gives).
    pub fn token(&self, roles: &[Role]) -> String {
        self.token_for(&format!("tester-{}", uuid::Uuid::now_v7().simple()), roles)
    }

    pub fn token_for(&self, sub: &str, roles: &[Role]) -> String {
        let subject = Subject { sub, username: Some(sub), department: "office", roles, epoch: 0, session: None };
        self.keys.issue(&subject, Duration::from_secs(600)).0
    }

    /// Signs in through the API and returns the token response.
    pub async fn login(&self, username: &str, password: &str) -> Resp {
        self.post("/api/v1/auth/login")
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
    }

    pub async fn admin_token(&self) -> String {
        let r = self.login("admin", ADMIN_PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// A direct database connection, for preparing and inspecting state behind the API's back.
    pub fn db(&self) -> DbConn {
        DatabaseUrl::parse(&self.database_url).unwrap().establish().expect("test database connection")
    }

    pub fn sql(&self, statements: &str) {
        let mut conn = self.db();
        match &mut conn {
            DbConn::Postgres(c) => c.batch_execute(statements),
            DbConn::Sqlite(c) => c.batch_execute(statements),
        }
        .unwrap_or_else(|e| panic!("{statements}: {e}"));
    }

    /// A single integer from a query (`SELECT COUNT(*) AS n …`: the column must be named `n`).
    pub fn count(&self, query: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db();
        diesel::sql_query(query).get_result::<N>(&mut conn).unwrap_or_else(|e| panic!("{query}: {e}")).n
    }

    /// Runs `query` (one row, a nullable text column `t`) against the test database.
    pub fn text(&self, query: &str) -> Option<String> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            t: Option<String>,
        }
        let mut conn = self.db();
        diesel::sql_query(query).get_result::<T>(&mut conn).unwrap_or_else(|e| panic!("{query}: {e}")).t
    }
}

/// Runs each named `async fn(TestApp)` against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[actix_rt::test]
                async fn sqlite() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await
                }
                #[actix_rt::test]
                async fn postgres() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await).await
                }
            }
        )*
    };
}

/// Reads the whole change feed (as a platform) and checks its numbers increase strictly.
pub async fn whole_feed(app: &TestApp, entity_types: &str) -> Vec<serde_json::Value> {
    let token = app.token(&[Role::Platform]);
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/changes?limit=500&entity_types={entity_types}&cursor={cursor}");
        let path = if cursor.is_empty() { path.replace("&cursor=", "") } else { path };
        let page = app.get(&path).bearer(&token).send().await;
        assert_eq!(page.status, 200, "{}", page.text);
        let batch = page.body["items"].as_array().unwrap().clone();
        cursor = page.body["next_cursor"].as_str().unwrap().to_string();
        if batch.is_empty() {
            break;
        }
        items.extend(batch);
    }
    let seqs: Vec<i64> = items.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "feed numbers increase strictly: {seqs:?}");
    items
}

/// Valid 统一社会信用代码 (GB 32100) printed on real business licences.
pub const REAL_CODES: [&str; 5] =
    ["91350100M000100Y43", "91110108551385082Q", "91440300708461136T", "91110000717828315T", "913100001322013497"];

/// A valid code made from a number, for bulk data.
pub fn credit_code(n: u64) -> String {
    shuiwu::domain::CreditCode::complete(&format!("91520381{n:09}")).unwrap().into_string()
}

pub fn water_user_body(name: &str, code: &str) -> Value {
    serde_json::json!({
        "name": name, "credit_code": code, "legal_representative": "王建国", "region_code": "520381",
        "address": "赤水市市中街道", "industry": "D4610", "contact_phone": "0851-22881234"
    })
}

/// Percent-encodes a query-string value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
