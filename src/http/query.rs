//! Query strings and path ids (docs/api.md). A query string must decode to UTF-8, every parameter must be one the
//! operation knows (400 naming the unknown one), no value may hold control characters, and a value of the wrong
//! form is reported against its parameter in plain words. A path id that is not an id the service issues answers
//! 404 before anything is looked up.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};
use serde::de::{DeserializeOwned, Visitor};

use super::json::humanize;
use super::pagination::PageQuery;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::messages::Msg;

/// An optional instant parameter (RFC 3339, any offset) in UTC; anything else is 400 against `field`.
pub fn instant(field: &str, v: Option<&str>) -> Result<Option<chrono::NaiveDateTime>, ApiError> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.naive_utc())
            .map_err(|_| ApiError::invalid(field, Msg::Instant))
    })
    .transpose()
}

/// The query parameters of an operation, as `T`.
pub struct Query<T>(pub T);

/// A list's query parameters: paging (`limit`, `cursor`, `include_total`) and the list's filters.
pub struct ListQuery<F> {
    pub page: PageQuery,
    pub filter: F,
}

/// The filters of a list that has none.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct NoFilter {}

/// The field names of a struct that derives `Deserialize` (serde hands them to `deserialize_struct`).
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for &mut Probe {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("probe"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(serde::de::Error::custom("probe"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

fn decode(part: &str) -> Result<String, ()> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().map(|s| s.into_owned()).map_err(|_| ())
}

/// Checks the raw query string against the parameters `allowed`.
fn check(raw: &str, allowed: &[&[&str]]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let Ok(key) = decode(k) else {
            errors.push(FieldError::new("query", Msg::NotUtf8));
            continue;
        };
        let name = crate::domain::text::untrusted(&key, 64);
        if key.chars().any(crate::domain::text::is_forbidden_in_line) {
            errors.push(FieldError::new(name, Msg::FieldNameControlChars));
        } else if !allowed.iter().any(|fields| fields.contains(&key.as_str())) {
            errors.push(FieldError::new(name, Msg::UnknownParameter));
        } else {
            match decode(v) {
                Err(()) => errors.push(FieldError::new(name, Msg::NotUtf8)),
                Ok(value) if value.chars().any(crate::domain::text::is_forbidden_in_line) => {
                    errors.push(FieldError::new(name, Msg::NoControlChars))
                }
                Ok(_) => {}
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation { code: ErrorCode::ValidationFailed, errors })
    }
}

fn deserialize<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let error = humanize(&path, &e.into_inner().to_string());
        // A parameter's problem is named by the parameter, never as the request body.
        let error = if error.field == "body" { FieldError::new("query", error.message) } else { error };
        ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![error] }
    })
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.query_string();
        ready(check(raw, &[field_names::<T>()]).and_then(|()| deserialize(raw)).map(Query))
    }
}

impl<F: DeserializeOwned> FromRequest for ListQuery<F> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.query_string();
        let parsed = check(raw, &[field_names::<PageQuery>(), field_names::<F>()])
            .and_then(|()| Ok(ListQuery { page: deserialize(raw)?, filter: deserialize(raw)? }));
        ready(parsed)
    }
}

/// The `{id}` of a path, when it is an id the service could have issued (a UUID); anything else is 404.
pub struct PathId(pub String);

impl PathId {
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl FromRequest for PathId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.match_info().get("id").filter(|s| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok());
        ready(id.map(|s| PathId(s.to_ascii_lowercase())).ok_or(ApiError::NotFound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Filter {
        status: Option<String>,
        q: Option<String>,
    }

    #[test]
    fn field_names_come_from_serde() {
        assert_eq!(field_names::<Filter>(), &["status", "q"]);
        assert!(field_names::<PageQuery>().contains(&"cursor"));
    }

    #[test]
    fn unknown_and_hostile_parameters_are_refused() {
        let allowed: &[&[&str]] = &[&["status", "q"]];
        assert!(check("status=approved&q=%E6%B0%B4", allowed).is_ok());
        let errors = |raw| match check(raw, allowed) {
            Err(ApiError::Validation { errors, .. }) => errors,
            other => panic!("{other:?}"),
        };
        assert_eq!(errors("valid_to_from=2030-01-01")[0].field, "valid_to_from");
        assert_eq!(errors("q=%00")[0].message, Msg::NoControlChars);
        assert_eq!(errors("q=%FF")[0].message, Msg::NotUtf8);
    }
}
