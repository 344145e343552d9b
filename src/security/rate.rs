//! Request-rate limits of service accounts (provincial platforms): each account may make `N` requests a minute
//! (its own `rate_limit_per_minute`, or `SHUIWU_SERVICE_RATE_LIMIT`), in bursts of up to a tenth of `N` (at least 10,
//! at most `N`); past that, 429 `rate_limited` with `Retry-After`.
//!
//! The budget is kept in the database, so that every instance sharing it counts the same requests: the generic cell
//! rate algorithm (GCRA) keeps one number per account, the theoretical arrival time (TAT) of its next request, and
//! one statement both decides and records a request — `INSERT … ON CONFLICT DO UPDATE … WHERE` admits it only if the
//! new TAT stays within the burst, atomically, so parallel requests can never all slip through on one reading.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{http::header, web, Error};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{bearer_token, Authenticator};
use crate::db::{Db, DbConn};
use crate::error::ApiError;

const MINUTE_US: i64 = 60_000_000;

/// The limit of service accounts without their own (`SHUIWU_SERVICE_RATE_LIMIT`), as app data.
#[derive(Debug, Clone, Copy)]
pub struct DefaultLimit(pub i32);

/// How an account's requests are spaced: one every `interval_us`, and up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub interval_us: i64,
    pub burst: i64,
}

impl Limit {
    pub fn per_minute(n: i32) -> Self {
        let n = i64::from(n.max(1));
        Self { interval_us: (MINUTE_US / n).max(1), burst: (n / 10).max(10).min(n) }
    }

    /// How far ahead of now the TAT may run: the burst's requests beyond the first.
    fn tolerance_us(self) -> i64 {
        self.interval_us * (self.burst - 1)
    }
}

/// A row `admit` wrote back (its value is not needed: that one came back is the answer).
#[derive(QueryableByName)]
#[allow(dead_code)]
struct Tat {
    #[diesel(sql_type = BigInt)]
    tat_us: i64,
}

/// Admits one request of `account` at `now_us` (microseconds since 1970) under `limit`, or says in how many
/// seconds the next one will be admitted.
pub fn admit(conn: &mut DbConn, account: &str, limit: Limit, now_us: i64) -> QueryResult<Result<(), u64>> {
    // The new TAT is max(TAT, now) + interval; it is admitted while it stays within now + interval + tolerance.
    let sql = match conn {
        DbConn::Postgres(_) => {
            "INSERT INTO request_budgets (account_id, tat_us) VALUES ($1, $2 + $3)
             ON CONFLICT (account_id) DO UPDATE SET tat_us = GREATEST(request_budgets.tat_us, $2) + $3
             WHERE GREATEST(request_budgets.tat_us, $2) - $2 <= $4
             RETURNING tat_us"
        }
        DbConn::Sqlite(_) => {
            "INSERT INTO request_budgets (account_id, tat_us) VALUES (?1, ?2 + ?3)
             ON CONFLICT (account_id) DO UPDATE SET tat_us = MAX(request_budgets.tat_us, ?2) + ?3
             WHERE MAX(request_budgets.tat_us, ?2) - ?2 <= ?4
             RETURNING tat_us"
        }
    };
    let admitted: Vec<Tat> = diesel::sql_query(sql)
        .bind::<Text, _>(account)
        .bind::<BigInt, _>(now_us)
        .bind::<BigInt, _>(limit.interval_us)
        .bind::<BigInt, _>(limit.tolerance_us())
        .load(conn)?;
    if !admitted.is_empty() {
        return Ok(Ok(()));
    }
    use crate::db::schema::request_budgets as b;
    let tat: i64 = b::table.find(account).select(b::tat_us).first(conn).optional()?.unwrap_or(now_us);
    // Admitted again once max(TAT, t) − t ≤ tolerance, i.e. at t = TAT − tolerance.
    let wait_us = (tat - limit.tolerance_us() - now_us).max(1);
    Ok(Err((wait_us as u64).div_ceil(1_000_000)))
}

/// Forgets an account's budget (its limit changed: the new one starts afresh).
pub fn reset(conn: &mut DbConn, account: &str) -> QueryResult<()> {
    use crate::db::schema::request_budgets as b;
    diesel::delete(b::table.find(account)).execute(conn).map(|_| ())
}

/// Counts each request of a service account against its budget before it is served; other callers pass.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let (Some(db), Some(authn), Some(default)) = (
        req.app_data::<web::Data<Db>>().cloned(),
        req.app_data::<web::Data<Authenticator>>().cloned(),
        req.app_data::<web::Data<DefaultLimit>>().map(|d| d.0),
    ) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let token = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
    let limit = match authn.authenticate(token) {
        Ok(p) if p.local => authn.revocations.service_limit(&p.sub).map(|own| (p.sub, own)),
        _ => None,
    };
    let Some((account, own)) = limit else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let limit = Limit::per_minute(own.unwrap_or(default));
    let now_us = authn.clock.now().at.and_utc().timestamp_micros();
    let check = move |conn: &mut DbConn| admit(conn, &account, limit, now_us).map_err(ApiError::from);
    // SQLite: in the queue of this process's writers (one statement on PostgreSQL needs no transaction).
    let admitted = match db.backend {
        crate::db::Backend::Sqlite => db.write(check).await,
        crate::db::Backend::Postgres => db.run(check).await,
    };
    match admitted {
        Ok(Ok(())) => Ok(next.call(req).await?.map_into_boxed_body()),
        Ok(Err(retry_after_secs)) => Ok(req.error_response(ApiError::RateLimited { retry_after_secs })),
        Err(e) => Ok(req.error_response(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_space_requests_and_allow_bursts() {
        assert_eq!(Limit::per_minute(600), Limit { interval_us: 100_000, burst: 60 });
        assert_eq!(Limit::per_minute(20), Limit { interval_us: 3_000_000, burst: 10 });
        assert_eq!(Limit::per_minute(3), Limit { interval_us: 20_000_000, burst: 3 });
        assert_eq!(Limit::per_minute(1), Limit { interval_us: 60_000_000, burst: 1 });
        assert_eq!(Limit::per_minute(1).tolerance_us(), 0);
    }
}
