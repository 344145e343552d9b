//! 统一社会信用代码 (GB 32100-2015): 18 characters over `0-9A-HJ-NPQRTUWXY`, the last a check character.

use std::fmt;

const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    #[error("must be 18 characters")]
    Length,
    #[error("character {0:?} at position {1} is not allowed (0-9 and A-Z without I, O, S, V, Z)")]
    Character(char, usize),
    #[error("check character is wrong (expected {0})")]
    Check(char),
}

impl CreditCodeError {
    /// What is wrong, as the catalogue says it.
    pub fn message(&self) -> crate::messages::Msg {
        use crate::messages::Msg;
        match *self {
            Self::Length => Msg::CreditCodeLength,
            Self::Character(ch, position) => Msg::CreditCodeCharacter { ch, position },
            Self::Check(expected) => Msg::CreditCodeCheck { expected },
        }
    }
}

fn value(c: u8) -> Option<u32> {
    CHARSET.iter().position(|&x| x == c).map(|p| p as u32)
}

impl CreditCode {
    /// Parses a code; lower-case letters are accepted and normalised to upper case.
    pub fn parse(input: &str) -> Result<Self, CreditCodeError> {
        let s = input.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(CreditCodeError::Length);
        }
        let bytes = s.as_bytes();
        let mut sum = 0u32;
        for (i, &b) in bytes.iter().enumerate() {
            let v = value(b).ok_or(CreditCodeError::Character(b as char, i + 1))?;
            if i < 17 {
                sum += v * WEIGHTS[i];
            }
        }
        let check = (31 - sum % 31) % 31;
        let expected = CHARSET[check as usize];
        if bytes[17] != expected {
            return Err(CreditCodeError::Check(expected as char));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Appends the right check character to 17 characters (for generating test and sample data).
    pub fn complete(first17: &str) -> Option<Self> {
        let b = first17.as_bytes();
        if b.len() != 17 {
            return None;
        }
        let mut sum = 0;
        for (i, &c) in b.iter().enumerate() {
            sum += value(c)? * WEIGHTS[i];
        }
        let check = CHARSET[((31 - sum % 31) % 31) as usize] as char;
        Some(Self(format!("{first17}{check}")))
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_published_codes() {
        // Codes printed on real business licences.
        for code in ["91350100M000100Y43", "91110108551385082Q", "91440300708461136T", "91110000717828315T"] {
            assert!(CreditCode::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn rejects_corrupted_codes() {
        assert_eq!(CreditCode::parse("91350100M000100Y44"), Err(CreditCodeError::Check('3')));
        assert_eq!(CreditCode::parse("91350100M000100Y4"), Err(CreditCodeError::Length));
        assert!(matches!(CreditCode::parse("91350100I000100Y43"), Err(CreditCodeError::Character('I', 9))));
        // Two transposed characters change the weighted sum.
        assert!(CreditCode::parse("91350100M000010Y43").is_err());
    }

    #[test]
    fn completes_a_code() {
        assert_eq!(CreditCode::complete("91350100M000100Y4").unwrap().as_str(), "91350100M000100Y43");
    }
}
