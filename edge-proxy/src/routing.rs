//! SNI → route lookup: exact names first, then single-label wildcards, as certificates match
//! (RFC 6125 §6.4.3: `*.example.com` covers `a.example.com`, not `a.b.example.com` nor
//! `example.com`). Two hash lookups per connection, whatever the number of routes.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("SNI pattern {0:?} is not a host name or a `*.` wildcard")]
    Invalid(String),
    #[error("SNI pattern {0:?} is listed twice")]
    Duplicate(String),
}

/// Maps names to route indexes.
#[derive(Debug, Clone, Default)]
pub struct Router {
    exact: HashMap<String, usize>,
    /// Keyed by the part after `*.`.
    wildcard: HashMap<String, usize>,
}

impl Router {
    pub fn insert(&mut self, pattern: &str, route: usize) -> Result<(), PatternError> {
        let lower = pattern.to_ascii_lowercase();
        let (table, key) = match lower.strip_prefix("*.") {
            Some(rest) => (&mut self.wildcard, rest.to_owned()),
            None => (&mut self.exact, lower.clone()),
        };
        if !is_host_name(&key) {
            return Err(PatternError::Invalid(pattern.to_owned()));
        }
        if table.insert(key, route).is_some() {
            return Err(PatternError::Duplicate(pattern.to_owned()));
        }
        Ok(())
    }

    /// `sni` is already lower-cased by the parser.
    pub fn lookup(&self, sni: &str) -> Option<usize> {
        if let Some(&r) = self.exact.get(sni) {
            return Some(r);
        }
        let (_, parent) = sni.split_once('.')?;
        self.wildcard.get(parent).copied()
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::default();
        r.insert("admin.example.com", 0).expect("exact");
        r.insert("*.example.com", 1).expect("wildcard");
        r.insert("Example.COM", 2).expect("apex");
        r
    }

    #[test]
    fn exact_beats_wildcard() {
        assert_eq!(router().lookup("admin.example.com"), Some(0));
        assert_eq!(router().lookup("www.example.com"), Some(1));
        assert_eq!(router().lookup("example.com"), Some(2));
    }

    #[test]
    fn wildcard_covers_one_label_only() {
        assert_eq!(router().lookup("a.b.example.com"), None);
        assert_eq!(router().lookup("example.org"), None);
        assert_eq!(router().lookup("com"), None);
    }

    #[test]
    fn bad_and_duplicate_patterns_are_refused() {
        let mut r = router();
        assert!(matches!(
            r.insert("*.example.com", 3),
            Err(PatternError::Duplicate(_))
        ));
        for bad in ["*", "a.*.com", "*example.com", "", "a..b", "**.x.com"] {
            assert!(
                matches!(r.insert(bad, 3), Err(PatternError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
