//! The route table: which target answers which path, on which listener. It is the one place
//! that knows the URL space; a path not listed here gets `404 not-found` from the gateway
//! itself, and `/internal/*` is never reachable from outside.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Public,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub prefix: &'static str,
    pub target: &'static str,
    /// Uploads may be larger than any other request.
    pub upload: bool,
}

const fn route(prefix: &'static str, target: &'static str) -> Route {
    Route {
        prefix,
        target,
        upload: false,
    }
}

pub const PUBLIC: &[Route] = &[
    route("/.well-known/jwks.json", "auth"),
    route("/api/auth", "auth"),
    route("/api/users", "user"),
    route("/api/invites", "user"),
    Route {
        prefix: "/api/documents",
        target: "chat",
        upload: true,
    },
    route("/api/chatbots", "chat"),
    route("/api/conversations", "chat"),
    route("/api/answers", "chat"),
    route("/api/talent", "chat"),
    route("/api/notifications", "noti"),
    route("/api/psych", "psych"),
];

pub const ADMIN: &[Route] = &[
    route("/admin/api/auth", "auth"),
    route("/admin/api/invites", "user"),
    // Roles are credentials: the auth service owns them.
    route("/admin/api/users", "auth"),
    // Dead letters by schema (the user service's schema is `users`).
    route("/admin/api/dead-letters/auth", "auth"),
    route("/admin/api/dead-letters/users", "user"),
    route("/admin/api/dead-letters/chat", "chat"),
    route("/admin/api/dead-letters/ai", "ai"),
    route("/admin/api/dead-letters/noti", "noti"),
    route("/admin/api/dead-letters/audit", "audit"),
    route("/admin/api/dead-letters/psych", "psych"),
];

/// The gateway's own admin page of every upstream's health.
pub const ADMIN_HEALTH: &str = "/admin/api/health";

/// The API's description, answered by the gateway on the public listener (see [`crate::openapi`]).
pub const OPENAPI: &str = "/api/openapi.json";

/// The longest prefix that matches `path` on whole segments (`/api/users` matches
/// `/api/users/me`, never `/api/usersX`).
pub fn find(listener: Listener, path: &str) -> Option<&'static Route> {
    let table = match listener {
        Listener::Public => PUBLIC,
        Listener::Admin => ADMIN,
    };
    table
        .iter()
        .filter(|r| {
            path.strip_prefix(r.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .max_by_key(|r| r.prefix.len())
}

/// Every target some route leads to.
pub fn targets() -> Vec<&'static str> {
    let mut t: Vec<&str> = PUBLIC.iter().chain(ADMIN).map(|r| r.target).collect();
    t.sort_unstable();
    t.dedup();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments_only() {
        assert_eq!(
            find(Listener::Public, "/api/users/me").unwrap().target,
            "user"
        );
        assert_eq!(find(Listener::Public, "/api/users").unwrap().target, "user");
        assert!(find(Listener::Public, "/api/usersX").is_none());
        assert!(find(Listener::Public, "/internal/ai/retrieve").is_none());
        assert!(find(Listener::Public, "/admin/api/users").is_none());
        assert!(find(Listener::Admin, "/api/users/me").is_none());
        assert_eq!(
            find(Listener::Admin, "/admin/api/dead-letters/chat/1/retry")
                .unwrap()
                .target,
            "chat"
        );
        assert!(find(Listener::Public, "/api/documents").unwrap().upload);
    }
}
