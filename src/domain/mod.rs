//! Domain value types shared by every area: they parse input into values that are valid by construction.

pub mod credit_code;
pub mod text;

pub use credit_code::CreditCode;

/// A new record id: UUIDv7 (time-ordered), as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Instants in JSON: RFC 3339 UTC, e.g. `2022-03-31T08:00:00Z`.
pub mod instant {
    use chrono::NaiveDateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

    pub fn format(at: &NaiveDateTime) -> String {
        at.format(FORMAT).to_string()
    }

    pub fn serialize<S: Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let s = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&s).map(|t| t.naive_utc()).map_err(serde::de::Error::custom)
    }
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
