//! Field checks that collect every problem of a request at once, for one 400 with all `errors`.

use crate::error::{ApiError, ErrorCode, FieldError};
use crate::messages::Msg;

/// Bidirectional-formatting characters (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F): invisible, and able to make
/// text read differently from what it is.
pub fn is_bidi_control(ch: char) -> bool {
    matches!(ch, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Characters no single-line text field may hold: control characters (C0, DEL, C1) and bidirectional controls.
pub fn is_forbidden_in_line(ch: char) -> bool {
    ch.is_control() || is_bidi_control(ch)
}

/// Characters no text at all may hold: as in a line, except tab and line breaks (notes, facts, descriptions).
pub fn is_forbidden_in_text(ch: char) -> bool {
    is_forbidden_in_line(ch) && !matches!(ch, '\t' | '\n' | '\r')
}

/// Text a caller controls as the audit trail keeps it: at most `max` characters (an ellipsis marks a cut), with
/// control and bidirectional-formatting characters escaped (`\u{1b}`), so that nothing stored can forge a line,
/// colour a terminal or reorder what an auditor reads.
pub fn untrusted(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, ch) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if ch.is_control() || is_bidi_control(ch) {
            out.push_str(&ch.escape_unicode().to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

#[derive(Default)]
pub struct Checks {
    errors: Vec<FieldError>,
    code: Option<ErrorCode>,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: &str, message: Msg) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Like [`Checks::fail`], with a specific error `code` for the whole response (e.g. `invalid_credit_code`).
    pub fn fail_with(&mut self, code: ErrorCode, field: &str, message: Msg) {
        self.code.get_or_insert(code);
        self.fail(field, message);
    }

    /// Trims a required single-line text; reports empty, too long, or holding control characters.
    pub fn required(&mut self, field: &str, value: &str, max_chars: usize) -> String {
        let v = value.trim();
        if v.is_empty() {
            self.fail(field, Msg::NotEmpty);
        } else {
            self.line(field, v, max_chars);
        }
        v.to_string()
    }

    /// Trims an optional single-line text; empty becomes absent.
    pub fn optional(&mut self, field: &str, value: Option<&str>, max_chars: usize) -> Option<String> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?;
        self.line(field, v, max_chars);
        Some(v.to_string())
    }

    /// Trims an optional multi-line text (notes, facts): line breaks and tabs allowed, `\r\n` kept as `\n`.
    pub fn optional_text(&mut self, field: &str, value: Option<&str>, max_chars: usize) -> Option<String> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?.replace("\r\n", "\n");
        if v.chars().count() > max_chars {
            self.fail(field, Msg::AtMostChars(max_chars));
        } else if v.chars().any(is_forbidden_in_text) {
            self.fail(field, Msg::NoControlChars);
        }
        Some(v)
    }

    fn line(&mut self, field: &str, v: &str, max_chars: usize) {
        if v.chars().count() > max_chars {
            self.fail(field, Msg::AtMostChars(max_chars));
        } else if v.chars().any(is_forbidden_in_line) {
            self.fail(field, Msg::OneLine);
        }
    }

    /// A volume in m³: 0 ..= 10¹².
    pub fn volume(&mut self, field: &str, v: i64) {
        if !(0..=super::MAX_VOLUME_M3).contains(&v) {
            self.fail(field, Msg::VolumeRange { min: 0 });
        }
    }

    /// A volume in m³ that must be more than nothing: 1 ..= 10¹².
    pub fn positive_volume(&mut self, field: &str, v: i64) {
        if !(1..=super::MAX_VOLUME_M3).contains(&v) {
            self.fail(field, Msg::VolumeRange { min: 1 });
        }
    }

    /// A 6-digit administrative division code (GB/T 2260).
    pub fn region_code(&mut self, field: &str, value: &str) -> String {
        let v = value.trim();
        if v.len() != 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
            self.fail(field, Msg::RegionCode);
        }
        v.to_string()
    }

    /// A phone number: digits with optional `+`, `-`, spaces and parentheses, 5..=20 digits.
    pub fn phone(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let v = self.optional(field, value, 32)?;
        let digits = v.bytes().filter(u8::is_ascii_digit).count();
        if !(5..=20).contains(&digits) || !v.bytes().all(|b| b.is_ascii_digit() || b"+-() ".contains(&b)) {
            self.fail(field, Msg::Phone);
        }
        Some(v)
    }

    /// The problems found so far, taken out (a file's rows are checked one by one, each with its line).
    pub fn take(&mut self) -> Vec<FieldError> {
        std::mem::take(&mut self.errors)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation { code: self.code.unwrap_or(ErrorCode::ValidationFailed), errors: self.errors })
        }
    }
}
