//! 公民身份号码 (GB 11643-1999): 17 digits and a check character over ISO 7064 MOD 11-2.

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// The number, upper-cased, when it is 18 characters with a valid check character.
pub fn parse(input: &str) -> Option<String> {
    let s = input.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    (CHECK[(sum % 11) as usize] == b[17]).then_some(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_check_character_is_checked() {
        // The standard's worked example.
        assert_eq!(super::parse("11010519491231002x").as_deref(), Some("11010519491231002X"));
        assert_eq!(super::parse("110105194912310021"), None);
        assert_eq!(super::parse("1101051949123100"), None);
    }
}
