//! Web origins, as a chatbot's owner lists them for the widget and as browsers send them in
//! `Origin`: compared in one normal form.

/// `https://Blog.Example.com:443/` → `https://blog.example.com`; anything that is not a bare
/// http(s) origin is `None`.
pub fn normalise_origin(origin: &str) -> Option<String> {
    let uri: http::Uri = origin.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    let default_port = if scheme == "https" { 443 } else { 80 };
    Some(match authority.port_u16() {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::normalise_origin;

    #[test]
    fn origins_compare_in_one_form() {
        assert_eq!(
            normalise_origin("https://Blog.Example.com:443/").as_deref(),
            Some("https://blog.example.com")
        );
        assert_eq!(
            normalise_origin("http://localhost:4000").as_deref(),
            Some("http://localhost:4000")
        );
        assert!(normalise_origin("https://blog.example.com/path").is_none());
        assert!(normalise_origin("ftp://blog.example.com").is_none());
        assert!(normalise_origin("https://user@blog.example.com").is_none());
        assert!(normalise_origin("blog.example.com").is_none());
    }
}
