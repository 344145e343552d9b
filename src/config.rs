//! Configuration from the environment (docs/api.md), with command-line flags as an alternative.
//! Secrets are wrapped so that neither `Debug` nor logs ever show them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::db::DatabaseUrl;

/// A secret string: shown as `***` everywhere.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

fn date(s: &str) -> Result<chrono::NaiveDate, String> {
    crate::domain::dates::Date::parse(s).map(|d| d.get()).map_err(|m| m.render(crate::messages::Lang::En))
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// `sqlite://PATH` (embedded) or `postgres://…`.
    #[arg(
        long,
        env = "SHUIWU_DATABASE_URL",
        default_value = "sqlite://./data/shuiwu.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Secret,

    /// Listen address.
    #[arg(long, env = "SHUIWU_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,

    /// Where the generated JWT key and initial admin password are kept
    /// (default: the SQLite file's folder, else `./data`).
    #[arg(long, env = "SHUIWU_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// HS256 key for tokens this service issues (≥ 32 bytes); generated once into the data dir when unset.
    #[arg(long, env = "SHUIWU_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<Secret>,

    /// Rotating HS256 keys instead of SHUIWU_JWT_SECRET: `kid:secret` pairs separated by commas, the first signs
    /// and every one verifies (docs/operations.md, "Rotating the signing key").
    #[arg(long, env = "SHUIWU_JWT_KEYS", hide_env_values = true, global = true)]
    pub jwt_keys: Option<Secret>,

    #[arg(long, env = "SHUIWU_JWT_ISSUER", default_value = "shuiwu", global = true)]
    pub jwt_issuer: String,

    #[arg(long, env = "SHUIWU_JWT_AUDIENCE", default_value = "shuiwu-api", global = true)]
    pub jwt_audience: String,

    /// JSON file listing external token issuers: `[{"issuer", "algorithm": "RS256"|"EdDSA", "public_key_pem_file"}]`.
    #[arg(long, env = "SHUIWU_JWT_EXTERNAL_ISSUERS", global = true)]
    pub jwt_external_issuers: Option<PathBuf>,

    /// Lifetime of access tokens.
    #[arg(long, env = "SHUIWU_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = duration, global = true)]
    pub access_token_ttl: Duration,

    /// Lifetime of refresh tokens.
    #[arg(long, env = "SHUIWU_REFRESH_TOKEN_TTL", default_value = "12h", value_parser = duration, global = true)]
    pub refresh_token_ttl: Duration,

    /// Password of the first account `admin` on an empty database.
    #[arg(long, env = "SHUIWU_BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true, global = true)]
    pub bootstrap_admin_password: Option<Secret>,

    /// Failed sign-ins (or `current_password` checks) for one account from one client address within the
    /// window before further attempts get 429.
    #[arg(long, env = "SHUIWU_LOGIN_MAX_FAILURES", default_value_t = 5, global = true)]
    pub login_max_failures: u32,

    /// Failed attempts for one account from all addresses together within the window (a higher ceiling, so that
    /// guessing from elsewhere does not lock the owner out first).
    #[arg(long, env = "SHUIWU_LOGIN_MAX_FAILURES_PER_ACCOUNT", default_value_t = 30, global = true)]
    pub login_max_failures_per_account: u32,

    /// Failed attempts from one client address for all accounts together within the window.
    #[arg(long, env = "SHUIWU_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 100, global = true)]
    pub login_max_failures_per_address: u32,

    /// Requests a minute a service account may make when its own limit is not set (bursts of a tenth of it, at
    /// least 10, at once).
    #[arg(long, env = "SHUIWU_SERVICE_RATE_LIMIT", default_value_t = 600, global = true)]
    pub service_rate_limit: u32,

    /// How long an export waits for a client that has stopped reading before it gives up (and frees its place).
    #[arg(long, env = "SHUIWU_EXPORT_STALL_TIMEOUT", default_value = "60s", value_parser = duration, global = true)]
    pub export_stall_timeout: Duration,

    #[arg(long, env = "SHUIWU_LOGIN_WINDOW", default_value = "15m", value_parser = duration, global = true)]
    pub login_window: Duration,

    /// Take the client address for throttling from `Forwarded` / `X-Forwarded-For` (only behind a reverse proxy
    /// that sets them).
    #[arg(long, env = "SHUIWU_TRUST_FORWARDED_FOR", default_value_t = false, global = true)]
    pub trust_forwarded_for: bool,

    /// Password hashes computed at once (default: one per core); more sign-ins wait, then get 503.
    #[arg(long, env = "SHUIWU_PASSWORD_HASHING_CONCURRENCY", global = true)]
    pub password_hashing_concurrency: Option<usize>,

    /// How often each instance reloads revoked tokens from the database.
    #[arg(long, env = "SHUIWU_REVOCATION_REFRESH", default_value = "1s", value_parser = duration, global = true)]
    pub revocation_refresh: Duration,

    /// How long Idempotency-Key results are kept (at least 24 h per the contract).
    #[arg(long, env = "SHUIWU_IDEMPOTENCY_TTL", default_value = "24h", value_parser = duration, global = true)]
    pub idempotency_ttl: Duration,

    /// Database connections per instance (default: 4 per core, at most 32).
    #[arg(long, env = "SHUIWU_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "SHUIWU_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = duration, global = true)]
    pub db_acquire_timeout: Duration,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "SHUIWU_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// The bureau's name as documents print it (certificates, notices, decisions).
    #[arg(long, env = "SHUIWU_BUREAU_NAME", default_value = "县水务局", global = true)]
    pub bureau_name: String,

    /// Pattern of case numbers (案号), assigned on filing: `{year}` the filing year, `{n}` the serial in that year.
    #[arg(long, env = "SHUIWU_CASE_NO_PATTERN", default_value = "清水罚〔{year}〕{n}号", global = true)]
    pub case_no_pattern: String,

    /// Pattern of decision numbers (决定书文号), assigned on decision: `{year}` and `{n}` as for case numbers.
    #[arg(long, env = "SHUIWU_DECISION_NO_PATTERN", default_value = "清水罚决〔{year}〕{n}号", global = true)]
    pub decision_no_pattern: String,

    /// A fine (yuan) from which a decision on an organisation is major (legal review) and a hearing may be requested.
    #[arg(long, env = "SHUIWU_MAJOR_FINE_ORGANISATION_YUAN", default_value_t = 80_000, global = true)]
    pub major_fine_organisation_yuan: i64,

    /// The same threshold for a person (yuan).
    #[arg(long, env = "SHUIWU_MAJOR_FINE_PERSON_YUAN", default_value_t = 10_000, global = true)]
    pub major_fine_person_yuan: i64,

    /// First letter of new permit numbers (`D520181G2022-0001`).
    #[arg(long, env = "SHUIWU_PERMIT_LETTER", default_value = "D", global = true)]
    pub permit_letter: String,

    /// Late fee per day, per mille of the principal outstanding after the due date (SF §70, TL §54: 2‰).
    #[arg(long, env = "SHUIWU_LATE_FEE_PER_MILLE", default_value = "2", global = true)]
    pub late_fee_per_mille: String,

    /// From this date (the first of a month) the water-resource tax replaces the fee: the quarterly run refers the
    /// volumes of months from it on to the tax office instead of billing them.
    #[arg(long, env = "SHUIWU_WATER_RESOURCE_TAX_FROM", default_value = "2024-12-01", value_parser = date, global = true)]
    pub water_resource_tax_from: chrono::NaiveDate,

    /// Planned use: a planned user whose recorded usage in a year reached this many m³ is on the next year's
    /// key-monitoring list (重点监控用水单位).
    #[arg(long, env = "SHUIWU_KEY_MONITORING_M3", default_value_t = 100_000, global = true)]
    pub key_monitoring_m3: i64,

    /// Planned use: a quarter more than this many percent over its planned quantity raises an early warning.
    #[arg(long, env = "SHUIWU_PLAN_WARNING_PCT", default_value_t = 10, global = true)]
    pub plan_warning_pct: u32,

    /// Where evidence files are kept (default: `<data dir>/evidence`).
    #[arg(long, env = "SHUIWU_EVIDENCE_DIR", global = true)]
    pub evidence_dir: Option<PathBuf>,

    /// Keep evidence files in S3-compatible object storage instead, as `s3://bucket` or `s3://bucket/prefix`
    /// (a build with the `s3` feature). Endpoint, region and credentials come from the usual `AWS_*` variables
    /// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`; `AWS_ALLOW_HTTP=true` for a
    /// plain-HTTP endpoint on the bureau's network).
    #[arg(long, env = "SHUIWU_EVIDENCE_URL", global = true)]
    pub evidence_url: Option<String>,

    /// Bearer token that Prometheus presents to scrape `GET /metrics` on the service's listener (≥ 32 characters;
    /// not a JWT: an account's token is refused). Unset: `/metrics` is not served there.
    #[arg(long, env = "SHUIWU_METRICS_TOKEN", hide_env_values = true, global = true)]
    pub metrics_token: Option<Secret>,

    /// A second listen address that serves `GET /metrics` alone, without a token (bind it to an address only the
    /// monitoring network reaches, e.g. `10.0.0.5:9464`).
    #[arg(long, env = "SHUIWU_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,

    #[arg(long, env = "SHUIWU_LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,
}

/// Longest access-token lifetime accepted in the configuration.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest refresh-token lifetime accepted in the configuration.
pub const MAX_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl Settings {
    /// Refuses token lifetimes beyond their bounds (the bootstrap password is checked by `auth::bootstrap_admin`).
    pub fn validate(&self) -> Result<(), String> {
        if self.access_token_ttl.is_zero() || self.access_token_ttl > MAX_ACCESS_TOKEN_TTL {
            return Err("SHUIWU_ACCESS_TOKEN_TTL must be between 1s and 24h".into());
        }
        if self.refresh_token_ttl.is_zero() || self.refresh_token_ttl > MAX_REFRESH_TOKEN_TTL {
            return Err("SHUIWU_REFRESH_TOKEN_TTL must be between 1s and 30 days".into());
        }
        self.daily_late_fee_rate()?;
        if !(0..=crate::domain::MAX_VOLUME_M3).contains(&self.key_monitoring_m3) {
            return Err("SHUIWU_KEY_MONITORING_M3 must be a volume in m³ between 0 and 10^12".into());
        }
        if !(1..=1_000_000).contains(&self.service_rate_limit) {
            return Err("SHUIWU_SERVICE_RATE_LIMIT must be between 1 and 1000000 requests a minute".into());
        }
        if self.plan_warning_pct > 10_000 {
            return Err("SHUIWU_PLAN_WARNING_PCT must be a percentage between 0 and 10000".into());
        }
        if chrono::Datelike::day(&self.water_resource_tax_from) != 1 {
            return Err("SHUIWU_WATER_RESOURCE_TAX_FROM must be the first day of a month (e.g. 2024-12-01)".into());
        }
        for (name, pattern) in [
            ("SHUIWU_CASE_NO_PATTERN", &self.case_no_pattern),
            ("SHUIWU_DECISION_NO_PATTERN", &self.decision_no_pattern),
        ] {
            // Serials restart each year: without the year, next year's numbers would repeat this year's.
            if !pattern.contains("{n}") || !pattern.contains("{year}") || pattern.chars().count() > 60 {
                return Err(format!(
                    "{name} must contain {{year}} and {{n}} (the serial restarts each year) and be at most 60 characters"
                ));
            }
        }
        if let Some(t) = &self.metrics_token {
            let t = t.expose();
            if t.len() < 32 || t.len() > 256 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("SHUIWU_METRICS_TOKEN must be 32 to 256 printable ASCII characters".into());
            }
        }
        for (name, yuan) in [
            ("SHUIWU_MAJOR_FINE_ORGANISATION_YUAN", self.major_fine_organisation_yuan),
            ("SHUIWU_MAJOR_FINE_PERSON_YUAN", self.major_fine_person_yuan),
        ] {
            if !(1..=crate::domain::MAX_AMOUNT_FEN / 100).contains(&yuan) {
                return Err(format!("{name} must be an amount in yuan between 1 and 10^10"));
            }
        }
        Ok(())
    }

    /// The late fee per day as a fraction (2‰ → 0.002), checked: 0 to 100 ‰ with at most 4 decimals.
    pub fn daily_late_fee_rate(&self) -> Result<rust_decimal::Decimal, String> {
        use rust_decimal::Decimal;
        let per_mille: Decimal = self
            .late_fee_per_mille
            .trim()
            .parse()
            .ok()
            .filter(|d: &Decimal| !d.is_sign_negative() && *d <= Decimal::ONE_HUNDRED && d.scale() <= 4)
            .ok_or("SHUIWU_LATE_FEE_PER_MILLE must be a number of per mille between 0 and 100 (e.g. 2)")?;
        Ok(per_mille / Decimal::ONE_THOUSAND)
    }

    /// The bootstrap admin password, if one is set: an empty value counts as unset (a generated one is used).
    pub fn bootstrap_password(&self) -> Option<&Secret> {
        self.bootstrap_admin_password.as_ref().filter(|p| !p.expose().is_empty())
    }

    /// Settings from the environment only (for tests and embedding).
    pub fn from_env() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            s: Settings,
        }
        <Only as clap::Parser>::parse_from(["shuiwu"]).s
    }

    pub fn database(&self) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(self.database_url.expose())
    }

    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let Ok(url) = self.database() {
            if let Some(path) = url.sqlite_path() {
                if let Some(parent) = Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        return parent.to_path_buf();
                    }
                }
            }
        }
        PathBuf::from("./data")
    }
}

/// Writes a secret file readable by the owner only.
pub fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_patterns_need_the_year_and_the_serial() {
        let mut s = Settings::from_env();
        assert_eq!(s.validate(), Ok(()));
        // Serials restart each year: a pattern without the year would number next year's first case like this one's.
        s.case_no_pattern = "清水罚{n}号".into();
        assert!(s.validate().unwrap_err().contains("SHUIWU_CASE_NO_PATTERN"));
        s.case_no_pattern = "清水罚〔{year}〕号".into();
        assert!(s.validate().is_err());
        s.case_no_pattern = "清水罚〔{year}〕{n}号".into();
        s.decision_no_pattern = "决〔{n}〕".into();
        assert!(s.validate().unwrap_err().contains("SHUIWU_DECISION_NO_PATTERN"));
    }
}
