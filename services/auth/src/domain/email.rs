//! An e-mail address, normalised so that one mailbox is one account: surrounding spaces go and
//! the whole address is lower-cased. (The local part is case-sensitive in theory, but no
//! provider treats it so, and two accounts differing only in case would be a trap.)

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

const MAX_LEN: usize = 254;
const MAX_LOCAL: usize = 64;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err("is required");
        }
        if s.len() > MAX_LEN {
            return Err("is too long (at most 254 characters)");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("must contain an @");
        };
        if local.is_empty() || local.len() > MAX_LOCAL || domain.contains('@') {
            return Err("is not an e-mail address");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err("has no valid domain");
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the @, for the password policy and a default display name.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalises_case_and_spaces() {
        let e = Email::parse("  Ada.Lovelace@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace@example.org");
        assert_eq!(e.local_part(), "ada.lovelace");
        assert_eq!(e, Email::parse("ada.lovelace@example.org").unwrap());
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.org",
            "a@",
            "a@b",
            "a@@b.org",
            "a@b@c.org",
            "a b@c.org",
            "a@-b.org",
            "a@b..org",
            "a\u{0}@b.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.org", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
        let long = format!("a@{}.org", "b".repeat(260));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn any_accepted_address_parses_to_itself() {
        // Normalisation is idempotent: parsing the normal form changes nothing.
        for raw in [
            "X@Y.Z",
            "  üser@bücher.de",
            "first.last+tag@sub.example.co.uk",
        ] {
            let once = Email::parse(raw).unwrap();
            assert_eq!(Email::parse(once.as_str()).unwrap(), once);
        }
    }
}
