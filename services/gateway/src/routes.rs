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

/// The admin pages' sign-in on the admin listener: the auth service's public endpoints of the
/// same name without `/admin` (the admin side must stay usable while the public one is flooded).
pub const ADMIN_SIGN_IN: &[&str] = &[
    "/admin/api/auth/login",
    "/admin/api/auth/refresh",
    "/admin/api/auth/logout",
];

/// Where [`ADMIN_SIGN_IN`] requests go.
pub const SIGN_IN: Route = route("/admin/api/auth", "auth");

/// The gateway's own admin page of every upstream's health.
pub const ADMIN_HEALTH: &str = "/admin/api/health";

/// The API's description, answered by the gateway on the public listener (see [`crate::openapi`]).
pub const OPENAPI: &str = "/api/openapi.json";

/// What the gateway answers itself from the web files compiled into it (see [`crate::web`]):
/// the widget, the pages and their fingerprinted assets. Checked before the upstream table, so
/// none of these paths can reach a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Web<'a> {
    /// `/widget.js`: a stable address that blogs embed.
    Widget,
    /// An HTML page by file name; the page's script reads the rest of the URL.
    Page(&'static str),
    /// A fingerprinted asset by its served name.
    Asset(&'a str),
    /// A bare address with a better home.
    Redirect(&'static str),
}

/// The web route for `path` on `listener`, if it is one.
pub fn web(listener: Listener, path: &str) -> Option<Web<'_>> {
    match listener {
        Listener::Public => match path {
            "/" => Some(Web::Redirect("/dashboard")),
            "/widget.js" => Some(Web::Widget),
            "/dashboard" | "/dashboard/" => Some(Web::Page("dashboard.html")),
            // The widget preview on the dashboard (an iframe of our own origin).
            "/dashboard/preview" => Some(Web::Page("preview.html")),
            _ => {
                if let Some(slug) = path.strip_prefix("/c/") {
                    let slug = slug.strip_suffix('/').unwrap_or(slug);
                    return (!slug.is_empty() && !slug.contains('/'))
                        .then_some(Web::Page("chat.html"));
                }
                asset(path.strip_prefix("/assets/")?)
            }
        },
        Listener::Admin => match path {
            "/admin" | "/admin/" => Some(Web::Page("admin.html")),
            _ => asset(path.strip_prefix("/admin/assets/")?),
        },
    }
}

fn asset(name: &str) -> Option<Web<'_>> {
    (!name.is_empty() && !name.contains('/')).then_some(Web::Asset(name))
}

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

    #[test]
    fn web_routes_stay_off_the_api_and_internal_paths() {
        use Listener::*;
        assert_eq!(web(Public, "/widget.js"), Some(Web::Widget));
        assert_eq!(web(Public, "/c/ada"), Some(Web::Page("chat.html")));
        assert_eq!(web(Public, "/c/ada/"), Some(Web::Page("chat.html")));
        assert_eq!(web(Public, "/c/"), None);
        assert_eq!(web(Public, "/c/ada/x"), None);
        assert_eq!(web(Public, "/dashboard"), Some(Web::Page("dashboard.html")));
        assert_eq!(web(Public, "/assets/a.1.js"), Some(Web::Asset("a.1.js")));
        assert_eq!(web(Public, "/assets/x/y.js"), None);
        assert_eq!(web(Public, "/admin"), None);
        assert_eq!(web(Admin, "/admin"), Some(Web::Page("admin.html")));
        assert_eq!(web(Admin, "/admin/assets/a.js"), Some(Web::Asset("a.js")));
        assert_eq!(web(Admin, "/dashboard"), None);
        for path in [
            "/internal/chat/widget-origins",
            "/api/openapi.json",
            "/api/users/me",
        ] {
            assert_eq!(web(Public, path), None, "{path}");
            assert_eq!(web(Admin, path), None, "{path}");
        }
        assert_eq!(web(Admin, "/admin/api/health"), None);
    }
}
