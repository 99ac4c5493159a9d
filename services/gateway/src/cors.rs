//! CORS for the widget: a chatbot's API answers cross-origin requests only from the origins
//! its owner configured (the blog it is embedded on), and the few other endpoints the widget
//! needs (a guest token, login, refresh, feedback on an answer) answer any chatbot's origin. Everything else is
//! same-origin only, plus the operator's `gateway.cors.allowed_origins`.
//!
//! The chatbots' origins belong to the chat service; the gateway reads them from its internal
//! `GET /internal/chat/widget-origins` and keeps the last good answer, so a chat outage never
//! turns a working widget off.

use axum::http::{HeaderMap, HeaderValue, Method, header};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// Where the chat service lists every chatbot's widget origins.
pub const ORIGINS_PATH: &str = "/internal/chat/widget-origins";

/// Auth endpoints the widget calls from the blog's page.
const WIDGET_AUTH_PATHS: &[&str] = &[
    "/api/auth/guest",
    "/api/auth/login",
    "/api/auth/signup",
    "/api/auth/refresh",
    "/api/auth/logout",
];

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, accept, accept-language, last-event-id, traceparent, x-request-id";
const EXPOSE_HEADERS: &str = "location, retry-after, x-request-id";

/// The chat service's answer.
#[derive(Debug, Deserialize)]
pub struct WidgetOrigins {
    pub chatbots: Vec<ChatbotOrigins>,
}

#[derive(Debug, Deserialize)]
pub struct ChatbotOrigins {
    pub slug: String,
    pub origins: Vec<String>,
}

#[derive(Default)]
struct Snapshot {
    by_slug: HashMap<String, HashSet<String>>,
    any: HashSet<String>,
}

pub struct Cors {
    configured: HashSet<String>,
    chatbots: RwLock<Snapshot>,
}

pub use kernel::domain::normalise_origin;

impl Cors {
    pub fn new(configured: &[String]) -> Self {
        Self {
            configured: configured
                .iter()
                .filter_map(|o| normalise_origin(o))
                .collect(),
            chatbots: RwLock::new(Snapshot::default()),
        }
    }

    pub fn update(&self, origins: WidgetOrigins) {
        let mut snapshot = Snapshot::default();
        for bot in origins.chatbots {
            let set: HashSet<String> = bot
                .origins
                .iter()
                .filter_map(|o| normalise_origin(o))
                .collect();
            snapshot.any.extend(set.iter().cloned());
            snapshot.by_slug.insert(bot.slug, set);
        }
        *self.chatbots.write().unwrap_or_else(|p| p.into_inner()) = snapshot;
    }

    /// Whether `origin` may call `path` from a browser.
    pub fn allows(&self, path: &str, origin: &str) -> bool {
        let Some(origin) = normalise_origin(origin) else {
            return false;
        };
        if self.configured.contains(&origin) {
            return true;
        }
        let snapshot = self.chatbots.read().unwrap_or_else(|p| p.into_inner());
        if let Some(slug) = chatbot_slug(path) {
            return snapshot
                .by_slug
                .get(slug)
                .is_some_and(|set| set.contains(&origin));
        }
        (WIDGET_AUTH_PATHS.contains(&path) || is_answer_feedback(path))
            && snapshot.any.contains(&origin)
    }

    /// Headers for an allowed preflight.
    pub fn preflight_headers(origin: &HeaderValue) -> HeaderMap {
        let mut h = Self::response_headers(origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h
    }

    /// Headers for an allowed actual request. No credentials: the widget sends its token in
    /// `Authorization`, never a cookie.
    pub fn response_headers(origin: &HeaderValue) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h
    }
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// `/api/answers/{id}/feedback`: the widget's thumbs under an answer. The answer names no
/// chatbot in its path, so any chatbot's origin may send it; the chat service accepts it from
/// the asker only.
fn is_answer_feedback(path: &str) -> bool {
    path.strip_prefix("/api/answers/")
        .and_then(|rest| rest.strip_suffix("/feedback"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

fn chatbot_slug(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/chatbots/")?;
    let slug = rest.split('/').next()?;
    (!slug.is_empty() && slug != "mine").then_some(slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            normalise_origin("https://Blog.Example.com:443").as_deref(),
            Some("https://blog.example.com")
        );
        assert_eq!(
            normalise_origin("http://localhost:4000").as_deref(),
            Some("http://localhost:4000")
        );
        for bad in [
            "blog.example.com",
            "ftp://x.org",
            "https://x.org/path",
            "null",
            "https://u@x.org",
        ] {
            assert!(normalise_origin(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn each_chatbot_allows_its_own_origins_only() {
        let cors = Cors::new(&["https://dashboard.example".into()]);
        cors.update(WidgetOrigins {
            chatbots: vec![
                ChatbotOrigins {
                    slug: "ada".into(),
                    origins: vec!["https://ada.dev".into()],
                },
                ChatbotOrigins {
                    slug: "bob".into(),
                    origins: vec!["https://bob.blog".into()],
                },
            ],
        });
        assert!(cors.allows("/api/chatbots/ada/ask", "https://ada.dev"));
        assert!(!cors.allows("/api/chatbots/ada/ask", "https://bob.blog"));
        assert!(cors.allows("/api/chatbots/bob", "https://bob.blog"));
        // The widget's auth calls: any chatbot's origin.
        assert!(cors.allows("/api/auth/guest", "https://bob.blog"));
        assert!(!cors.allows("/api/auth/guest", "https://evil.example"));
        // The widget's feedback on an answer: any chatbot's origin, nothing else under answers.
        assert!(cors.allows("/api/answers/42/feedback", "https://bob.blog"));
        assert!(!cors.allows("/api/answers/42/feedback", "https://evil.example"));
        assert!(!cors.allows("/api/answers/42/correction", "https://bob.blog"));
        assert!(!cors.allows("/api/answers/4/2/feedback", "https://bob.blog"));
        // Account pages: never from a blog.
        assert!(!cors.allows("/api/users/me", "https://ada.dev"));
        assert!(!cors.allows("/api/chatbots/mine", "https://ada.dev"));
        // The operator's own origins: everywhere.
        assert!(cors.allows("/api/users/me", "https://dashboard.example"));
    }
}
