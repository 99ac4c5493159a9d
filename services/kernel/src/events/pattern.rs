//! AMQP topic patterns (`content.*`, `audit.#`), matched the way RabbitMQ's topic exchange does,
//! so that in-process delivery routes exactly as the broker would.

/// Whether `key` (words separated by `.`) matches `pattern`, where `*` is exactly one word and
/// `#` is zero or more words.
pub fn matches(pattern: &str, key: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    match_words(&p, &k)
}

fn match_words(p: &[&str], k: &[&str]) -> bool {
    match p.split_first() {
        None => k.is_empty(),
        Some((&"#", rest)) => (0..=k.len()).any(|i| match_words(rest, &k[i..])),
        Some((&w, rest)) => match k.split_first() {
            Some((kw, krest)) => (w == "*" || w == *kw) && match_words(rest, krest),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn follows_topic_exchange_rules() {
        assert!(matches("content.*", "content.uploaded"));
        assert!(!matches("content.*", "content.uploaded.v2"));
        assert!(!matches("content.*", "content"));
        assert!(matches("audit.#", "audit"));
        assert!(matches("audit.#", "audit.sign_in.failed"));
        assert!(matches("#", "anything.at.all"));
        assert!(matches("*.deleted", "user.deleted"));
        assert!(!matches("user.deleted", "user.registered"));
        assert!(matches("a.#.z", "a.z"));
        assert!(matches("a.#.z", "a.b.c.z"));
    }
}
