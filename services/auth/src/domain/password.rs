//! A password that meets the policy: long rather than complicated (NIST SP 800-63B): 10 to 128
//! characters, not one of the passwords every attacker tries first, not mostly one character,
//! and not the account's own e-mail. Never printed.

use std::fmt;

pub struct Password(String);

pub const MIN_CHARS: usize = 10;
pub const MAX_CHARS: usize = 128;

/// The most common leaked passwords that are long enough to pass the length rule.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789012",
    "0987654321",
    "1111111111",
    "password123",
    "password1234",
    "passwordpassword",
    "qwertyuiop",
    "qwerty12345",
    "qwerty123456",
    "1q2w3e4r5t",
    "1qaz2wsx3edc",
    "iloveyou123",
    "letmein123",
    "welcome123",
    "administrator",
    "abcdefghij",
    "abc1234567",
    "football123",
    "protostar123",
];

impl Password {
    /// Every rule the password breaks, so that the form can show them all at once.
    pub fn parse(raw: &str, email_local_part: Option<&str>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            problems.push(format!("must have at least {MIN_CHARS} characters"));
        }
        if chars > MAX_CHARS {
            problems.push(format!("must have at most {MAX_CHARS} characters"));
        }
        if raw.chars().any(char::is_control) {
            problems.push("must not contain control characters".to_owned());
        }
        let mut distinct: Vec<char> = raw.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if chars >= MIN_CHARS && distinct.len() < 4 {
            problems.push("must not repeat the same few characters".to_owned());
        }
        let lower = raw.to_lowercase();
        if COMMON.contains(&lower.as_str()) {
            problems.push("is one of the most common passwords".to_owned());
        }
        if let Some(local) = email_local_part
            && local.chars().count() >= 4
            && lower.contains(&local.to_lowercase())
        {
            problems.push("must not contain your e-mail address".to_owned());
        }
        if problems.is_empty() {
            Ok(Self(raw.to_owned()))
        } else {
            Err(problems)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn long_passphrases_pass() {
        assert!(Password::parse("correct horse battery staple", Some("ada")).is_ok());
        assert!(Password::parse("비밀번호는길어야해요", None).is_ok());
    }

    #[test]
    fn each_rule_is_reported() {
        let e = Password::parse("short", None).unwrap_err();
        assert!(e.iter().any(|m| m.contains("at least 10")), "{e:?}");
        let e = Password::parse(&"x".repeat(129), None).unwrap_err();
        assert!(e.iter().any(|m| m.contains("at most 128")), "{e:?}");
        let e = Password::parse("aaaaaaaaaaaa", None).unwrap_err();
        assert!(e.iter().any(|m| m.contains("same few")), "{e:?}");
        let e = Password::parse("Password123", None).unwrap_err();
        assert!(e.iter().any(|m| m.contains("common")), "{e:?}");
        let e = Password::parse("my-name-is-lovelace!", Some("lovelace")).unwrap_err();
        assert!(e.iter().any(|m| m.contains("e-mail")), "{e:?}");
        let e = Password::parse("tab\tinside-here", None).unwrap_err();
        assert!(e.iter().any(|m| m.contains("control")), "{e:?}");
    }

    #[test]
    fn never_prints_itself() {
        let p = Password::parse("correct horse battery staple", None).unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
    }
}
