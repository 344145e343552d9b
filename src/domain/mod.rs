//! Domain value types shared by every area: they parse input into values that are valid by construction.

pub mod credit_code;
pub mod dates;
pub mod id_number;
pub mod late_fee;
pub mod money;
pub mod text;
pub mod water;

pub use credit_code::CreditCode;

/// The largest volume (m³) the service accepts anywhere: 10¹² (docs/api.md). Sums of a few million of them still
/// fit in an `i64`, and checked arithmetic guards the rest.
pub const MAX_VOLUME_M3: i64 = 1_000_000_000_000;
/// The largest amount of money (fen) the service accepts anywhere: 10¹² fen.
pub const MAX_AMOUNT_FEN: i64 = 1_000_000_000_000;

/// A new record id: UUIDv7 (time-ordered), as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Instants in JSON: RFC 3339 UTC, e.g. `2022-03-31T08:00:00Z`.
pub mod instant {
    use chrono::NaiveDateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

    /// An instant as RFC 3339 in UTC to the second (`2026-03-31T08:00:00Z`), written field by field: every record
    /// carries two, and an export writes millions.
    struct Rfc3339(NaiveDateTime);

    impl std::fmt::Display for Rfc3339 {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            use chrono::{Datelike, Timelike};
            let (d, t) = (self.0.date(), self.0.time());
            if (0..=9999).contains(&d.year()) {
                write!(
                    f,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    d.year(),
                    d.month(),
                    d.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                )
            } else {
                write!(f, "{}", self.0.format(FORMAT))
            }
        }
    }

    pub fn format(at: &NaiveDateTime) -> String {
        Rfc3339(*at).to_string()
    }

    pub fn serialize<S: Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Rfc3339(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let s = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&s).map(|t| t.naive_utc()).map_err(serde::de::Error::custom)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn instants_read_as_chrono_writes_them() {
            for text in ["2026-03-31T08:00:00Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"]
            {
                let at = chrono::DateTime::parse_from_rfc3339(text).unwrap().naive_utc();
                assert_eq!(super::format(&at), text);
                assert_eq!(super::format(&at), at.format(super::FORMAT).to_string());
            }
            let fraction = chrono::DateTime::parse_from_rfc3339("2026-03-31T08:00:00.999999Z").unwrap().naive_utc();
            assert_eq!(super::format(&fraction), "2026-03-31T08:00:00Z");
        }
    }
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// The OpenAPI schema of a closed set of strings: the values, and each value's Chinese label beside it (in the
/// description, and as `x-enum-descriptions` for client generators).
pub fn enum_schema(doc: &str, values: &[(&str, &str)]) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::extensions::Extensions;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let mut description = doc.lines().map(str::trim).collect::<Vec<_>>().join("\n").trim().to_string();
    description.push_str("\n\n");
    for (value, zh) in values {
        description.push_str(&format!("- `{value}` — {zh}\n"));
    }
    let labels: Vec<&str> = values.iter().map(|(_, zh)| *zh).collect();
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .enum_values(Some(values.iter().map(|(v, _)| *v)))
        .description(Some(description.trim_end()))
        .extensions(Some(Extensions::builder().add("x-enum-descriptions", labels).build()))
        .into()
}

/// Declares a closed set of snake_case strings stored as TEXT, each with its Chinese label:
/// serde, OpenAPI schema, `as_str`, `label_zh`, `parse`, `ALL`.
#[macro_export]
macro_rules! text_enum {
    ($(#[doc = $doc:expr])* $vis:vis enum $name:ident { $($variant:ident = ($text:literal, $zh:literal)),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $(#[doc = $zh] #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value's name in Chinese, as documents and the API documentation show it.
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }

            /// Code and Chinese name, for messages.
            pub fn label(self) -> $crate::messages::Label {
                $crate::messages::Label { code: self.as_str(), zh: self.label_zh() }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::domain::enum_schema(concat!($($doc, "\n"),*), &[$(($text, $zh)),+])
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
