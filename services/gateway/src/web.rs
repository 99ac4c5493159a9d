//! The web side, answered by the gateway itself from files compiled into the binary (see
//! `build.rs`): the widget at a stable address, HTML pages with a strict CSP of their own, and
//! fingerprinted assets cached for a year. Conditional requests (`If-None-Match`) and gzip are
//! honoured; nothing here touches the disk or the network.

use crate::routes::Web;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kernel::problem::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Asset,
    Page,
    Widget,
}

pub struct File {
    pub kind: Kind,
    /// The name under `web/src` (before fingerprinting).
    pub source: &'static str,
    /// The name it is served under.
    pub name: &'static str,
    pub content_type: &'static str,
    pub etag: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// Our pages load scripts, styles and data from their own origin only, run no inline script
/// and accept no markup as script: under Trusted Types the code builds the DOM with
/// `textContent`, never `innerHTML`, and the one policy (`protostar-widget`, in
/// `web/src/assets/widget-loader.js`) admits `/widget.js` as a script URL and nothing else.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
     trusted-types protostar-widget";

/// The widget preview is the one page the dashboard frames.
const PREVIEW_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'self'; require-trusted-types-for 'script'; trusted-types protostar-widget";

fn find(kind: Kind, name: &str) -> Option<&'static File> {
    FILES.iter().find(|f| f.kind == kind && f.name == name)
}

/// The served name of a source file in `web/src/assets` (for tests and links).
pub fn asset_name(source: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|f| f.kind == Kind::Asset && f.source == source)
        .map(|f| f.name)
}

/// The widget's bytes as served (for the size budget's test).
pub fn widget() -> &'static File {
    find(Kind::Widget, "widget.js").expect("build.rs always embeds the widget")
}

pub fn answer(route: Web<'_>, method: &Method, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut res = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return res;
    }
    let file = match route {
        Web::Redirect(to) => {
            return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
        }
        Web::Widget => Some(widget()),
        Web::Page(name) => find(Kind::Page, name),
        Web::Asset(name) => find(Kind::Asset, name),
    };
    let Some(file) = file else {
        return Problem::NotFound("There is nothing at this address.".into()).into_response();
    };
    serve(file, method == Method::HEAD, headers)
}

fn serve(file: &'static File, head: bool, req: &HeaderMap) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::ETAG, HeaderValue::from_static(file.etag));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    match file.kind {
        // The name changes with the content: cache it for good.
        Kind::Asset => {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
        }
        // The address never changes, so keep it short; blogs on other sites load it, also
        // from pages that require cross-origin resource policies.
        Kind::Widget => {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            h.insert(
                "cross-origin-resource-policy",
                HeaderValue::from_static("cross-origin"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        // Pages name the current assets: always revalidate (a 304 is cheap).
        Kind::Page => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let csp = if file.name == "preview.html" {
                PREVIEW_CSP
            } else {
                PAGE_CSP
            };
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            );
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            );
        }
    }
    if matches_etag(req, file.etag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    let body = match file.gzip {
        Some(z) if accepts_gzip(req) => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            z
        }
        _ => file.body,
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = if head {
        Body::empty()
    } else {
        Body::from(body)
    };
    (StatusCode::OK, h, body).into_response()
}

fn matches_etag(req: &HeaderMap, etag: &str) -> bool {
    req.get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// `gzip` listed in `Accept-Encoding` without `q=0`.
fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(route: Web<'_>, headers: &[(&'static str, &str)]) -> Response {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        answer(route, &Method::GET, &h)
    }

    #[test]
    fn pages_carry_a_strict_csp_and_assets_a_long_cache() {
        let res = get(Web::Page("dashboard.html"), &[]);
        assert_eq!(res.status(), 200);
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe"));
        let name = asset_name("dashboard.js").expect("the dashboard's module is embedded");
        assert!(name.starts_with("dashboard.") && name.len() > "dashboard.js".len());
        let res = get(Web::Asset(name), &[]);
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert_eq!(get(Web::Asset("dashboard.js"), &[]).status(), 404);
    }

    #[test]
    fn pages_name_the_fingerprinted_assets() {
        for page in FILES.iter().filter(|f| f.kind == Kind::Page) {
            let text = std::str::from_utf8(page.body).unwrap();
            for asset in FILES.iter().filter(|f| f.kind == Kind::Asset) {
                assert!(
                    !text.contains(&format!("assets/{}\"", asset.source)),
                    "{} names {} unhashed",
                    page.name,
                    asset.source
                );
            }
        }
    }

    #[test]
    fn modules_import_each_other_by_hashed_name() {
        let dashboard = FILES
            .iter()
            .find(|f| f.kind == Kind::Asset && f.source == "dashboard.js")
            .unwrap();
        let text = std::str::from_utf8(dashboard.body).unwrap();
        let api = asset_name("api.js").unwrap();
        assert!(text.contains(&format!("\"./{api}\"")), "{text}");
        for asset in FILES.iter().filter(|f| f.kind == Kind::Asset) {
            let text = std::str::from_utf8(asset.body).unwrap_or_default();
            for other in FILES.iter().filter(|f| f.kind == Kind::Asset) {
                assert!(
                    !text.contains(&format!("\"./{}\"", other.source)),
                    "{} imports {} unhashed",
                    asset.source,
                    other.source
                );
            }
        }
    }

    #[test]
    fn etags_and_gzip_are_honoured() {
        let w = widget();
        let res = get(Web::Widget, &[("if-none-match", w.etag)]);
        assert_eq!(res.status(), 304);
        let res = get(Web::Widget, &[("accept-encoding", "br, gzip;q=0.8")]);
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        let res = get(Web::Widget, &[("accept-encoding", "gzip;q=0")]);
        assert!(res.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(
            answer(Web::Widget, &Method::POST, &HeaderMap::new()).status(),
            405
        );
    }
}
