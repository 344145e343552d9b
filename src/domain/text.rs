//! Field checks that collect every problem of a request at once, for one 400 with all `errors`.

use crate::error::{ApiError, ErrorCode, FieldError};

#[derive(Default)]
pub struct Checks {
    errors: Vec<FieldError>,
    code: Option<ErrorCode>,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Like [`Checks::fail`], with a specific error `code` for the whole response (e.g. `invalid_credit_code`).
    pub fn fail_with(&mut self, code: ErrorCode, field: &str, message: impl Into<String>) {
        self.code.get_or_insert(code);
        self.fail(field, message);
    }

    /// Trims a required text; reports empty or too long.
    pub fn required(&mut self, field: &str, value: &str, max_chars: usize) -> String {
        let v = value.trim();
        if v.is_empty() {
            self.fail(field, "must not be empty");
        } else if v.chars().count() > max_chars {
            self.fail(field, format!("must be at most {max_chars} characters"));
        }
        v.to_string()
    }

    /// Trims an optional text; empty becomes absent.
    pub fn optional(&mut self, field: &str, value: Option<&str>, max_chars: usize) -> Option<String> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?;
        if v.chars().count() > max_chars {
            self.fail(field, format!("must be at most {max_chars} characters"));
        }
        Some(v.to_string())
    }

    /// A 6-digit administrative division code (GB/T 2260).
    pub fn region_code(&mut self, field: &str, value: &str) -> String {
        let v = value.trim();
        if v.len() != 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
            self.fail(field, "must be a 6-digit administrative division code");
        }
        v.to_string()
    }

    /// A phone number: digits with optional `+`, `-`, spaces and parentheses, 5..=20 digits.
    pub fn phone(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let v = self.optional(field, value, 32)?;
        let digits = v.bytes().filter(u8::is_ascii_digit).count();
        if !(5..=20).contains(&digits) || !v.bytes().all(|b| b.is_ascii_digit() || b"+-() ".contains(&b)) {
            self.fail(field, "must be a phone number");
        }
        Some(v)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation { code: self.code.unwrap_or(ErrorCode::ValidationFailed), errors: self.errors })
        }
    }
}
