//! Invite codes: 16 characters of Crockford's base32 (80 random bits), shown in groups of four.
//! People type them, so parsing forgives case, spaces, dashes and the letters that look like
//! digits (O→0, I/L→1).

use sha2::{Digest, Sha256};
use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LEN: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct InviteCode(String);

impl InviteCode {
    pub fn generate() -> Self {
        let bytes: [u8; LEN] = rand::random();
        // 256 is a multiple of 32, so taking each byte modulo 32 is unbiased.
        Self(
            bytes
                .iter()
                .map(|b| ALPHABET[usize::from(b % 32)] as char)
                .collect(),
        )
    }

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut out = String::with_capacity(LEN);
        for c in raw.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err("is not an invite code");
            }
            out.push(c);
            if out.len() > LEN {
                return Err("is not an invite code");
            }
        }
        if out.len() != LEN {
            return Err("is not an invite code");
        }
        Ok(Self(out))
    }

    /// What the database keeps instead of the code.
    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

/// Grouped for reading: `ABCD-EFGH-JKMN-PQRS`.
impl fmt::Display for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<&str> = (0..LEN).step_by(4).map(|i| &self.0[i..i + 4]).collect();
        f.write_str(&groups.join("-"))
    }
}

impl fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteCode(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::InviteCode;

    #[test]
    fn generated_codes_parse_back_however_they_are_typed() {
        for _ in 0..100 {
            let code = InviteCode::generate();
            let shown = code.to_string();
            assert_eq!(shown.len(), 19);
            assert_eq!(InviteCode::parse(&shown).unwrap(), code);
            assert_eq!(
                InviteCode::parse(&shown.to_lowercase().replace('-', " ")).unwrap(),
                code
            );
            assert_eq!(InviteCode::parse(&shown).unwrap().hash(), code.hash());
        }
    }

    #[test]
    fn look_alike_letters_are_read_as_digits() {
        let a = InviteCode::parse("O0IL-0000-1111-2222").unwrap();
        assert_eq!(a, InviteCode::parse("0011000011112222").unwrap());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "ABCD",
            "ABCD-EFGH-JKMN-PQRS-T",
            "ABCD-EFGH-JKMN-PQR!",
            "ÄBCD-EFGH-JKMN-PQRS",
            "UUUU-UUUU-UUUU-UUUU",
        ] {
            assert!(InviteCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
