//! What every request through a gateway listener goes through, in order:
//! route → CORS → token check → rate limits → body limit → forwarding headers → upstream.
//! Each step can answer on its own (404, 403, 401, 429, 413); only a request that passes them
//! all costs an upstream anything.

use crate::cors::{self, Cors};
use crate::rate_limit::{Decision, Limit, RateLimiter};
use crate::routes::{self, Listener, Route};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kernel::client_address::{IpText, TrustedProxies};
use kernel::http::RequestContext;
use kernel::problem::Problem;
use kernel::tokens::{Claims, TokenError, TokenVerifier};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

// Header names made once, not parsed from a `&str` on every request.
const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");

/// An upstream as the gateway sees it: the in-process router of a target, or an HTTP client
/// to the target's listener, both just a tower `Service`.
pub type Upstream = BoxCloneSyncService<Request, Response, Infallible>;

pub struct Front {
    pub listener: Listener,
    pub upstreams: HashMap<&'static str, Upstream>,
    pub verifier: Arc<TokenVerifier>,
    pub limiter: Arc<RateLimiter>,
    pub cors: Arc<Cors>,
    pub trusted_proxies: TrustedProxies,
    pub rates: crate::config::RateLimitConfig,
    pub max_body: u64,
    pub max_upload: u64,
    pub health: Option<Arc<crate::health::Health>>,
    /// Admin listener only: the auth target's public side, for the admin pages' sign-in.
    pub sign_in: Option<Upstream>,
}

pub async fn handle(State(front): State<Arc<Front>>, mut req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(web) = routes::web(front.listener, &path) {
        return crate::web::answer(web, req.method(), req.headers());
    }
    if front.listener == Listener::Admin
        && path == routes::ADMIN_HEALTH
        && let Some(health) = &front.health
    {
        return match verify(&front, req.headers()).await {
            Ok(claims) => health.answer(claims.as_ref()).await,
            Err(p) => p.into_response(),
        };
    }
    if front.listener == Listener::Public
        && path == routes::OPENAPI
        && matches!(*req.method(), Method::GET | Method::HEAD)
    {
        return crate::openapi::answer();
    }
    let (route, upstream) = if front.listener == Listener::Admin
        && routes::ADMIN_SIGN_IN.contains(&path.as_str())
    {
        // The admin pages sign in here, not on the public listener a flood may have taken.
        let public_path = path.strip_prefix("/admin").unwrap_or(&path);
        match public_path.parse() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => {
                return Problem::NotFound("There is nothing at this address.".into())
                    .into_response();
            }
        }
        (&routes::SIGN_IN, front.sign_in.as_ref())
    } else {
        let Some(route) = routes::find(front.listener, &path) else {
            return Problem::NotFound("There is nothing at this address.".into()).into_response();
        };
        (route, front.upstreams.get(route.target))
    };

    // CORS first: a browser's preflight carries no token and must not spend rate limit.
    let origin = req.headers().get(header::ORIGIN).cloned();
    let cors_allowed = match &origin {
        Some(o) if front.listener == Listener::Public => o
            .to_str()
            .is_ok_and(|o| front.cors.allows(&path, o) || same_origin(&req, o)),
        _ => false,
    };
    if cors::is_preflight(req.method(), req.headers()) {
        return match (&origin, cors_allowed) {
            (Some(o), true) => {
                let mut res = StatusCode::NO_CONTENT.into_response();
                res.headers_mut().extend(Cors::preflight_headers(o));
                res
            }
            _ => {
                Problem::Forbidden("This origin may not call this address.".into()).into_response()
            }
        };
    }

    let upstream = upstream.cloned();
    let mut res = match pass(&front, route, upstream, req).await {
        Ok(res) => res,
        Err(problem) => problem.into_response(),
    };
    if let (Some(o), true) = (&origin, cors_allowed) {
        res.headers_mut().extend(Cors::response_headers(o));
    }
    res
}

async fn pass(
    front: &Front,
    route: &Route,
    upstream: Option<Upstream>,
    req: Request,
) -> Result<Response, Problem> {
    let claims = verify(front, req.headers()).await?;

    let ctx = req.extensions().get::<RequestContext>().cloned();
    let peer = ctx.as_ref().and_then(|c| c.client).map(|a| a.ip());
    let forwarded: Vec<String> = req
        .headers()
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let client = peer.map(|p| {
        let hops: Vec<&str> = forwarded.iter().map(String::as_str).collect();
        front.trusted_proxies.client(p, &hops)
    });

    let mut limits = Vec::with_capacity(2);
    if let Some(ip) = client {
        let ip = IpText::new(ip);
        limits.push(Limit::new(
            "ip",
            limit_key(&front.rates.key_prefix, "ip:", ip.as_str()),
            front.rates.ip,
        ));
    }
    if let Some(c) = &claims {
        limits.push(Limit::new(
            "subject",
            limit_key(&front.rates.key_prefix, "sub:", &c.sub),
            front.rates.subject,
        ));
    }
    if let Decision::Deny { retry_after, .. } = front.limiter.check(&limits).await {
        return Err(Problem::RateLimited { retry_after });
    }

    let max = if route.upload {
        front.max_upload
    } else {
        front.max_body
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    // A body without a declared length is cut off at the limit as it streams.
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let mut req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));

    set_forwarding_headers(&mut req, peer, front, ctx.as_ref());

    let Some(upstream) = upstream else {
        return Err(Problem::UpstreamUnavailable(format!(
            "The {} service does not run in this process and `upstreams.{}` is not set.",
            route.target, route.target
        )));
    };
    let res = upstream.oneshot(req).await.unwrap_or_else(|e| match e {});
    Ok(res)
}

/// `<prefix><kind><value>`, allocated once at its final size (`format!` grows its string).
fn limit_key(prefix: &str, kind: &str, value: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + kind.len() + value.len());
    key.push_str(prefix);
    key.push_str(kind);
    key.push_str(value);
    key
}

/// The caller's claims when a bearer token came with the request; `401` when it is not valid.
/// (Takes the headers, not the request: a body is not `Sync`, so `&Request` cannot be held
/// across an await in a `Send` future.) Services check the token again: the gateway's check keeps forged tokens from costing them
/// anything and gives the rate limiter a subject it can trust.
async fn verify(front: &Front, headers: &http::HeaderMap) -> Result<Option<Claims>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Problem::Unauthenticated(
                "Send the access token as `Authorization: Bearer <token>`.".into(),
            )
        })?;
    match front.verifier.verify(token).await {
        Ok(claims) => Ok(Some(claims)),
        Err(TokenError::KeysUnavailable(e)) => Err(Problem::UpstreamUnavailable(format!(
            "Tokens cannot be checked right now ({e})."
        ))),
        Err(e) => Err(Problem::Unauthenticated(format!(
            "The access token is not valid: {e}."
        ))),
    }
}

/// An in-process upstream: the target's router, seeing only what [`upstream_extensions`]
/// passes on. (A remote one learns all it needs from headers; its client never sends
/// extensions, so they are left as they are for it.)
pub fn in_process(router: axum::Router) -> Upstream {
    BoxCloneSyncService::new(router.map_request(|mut req: Request| {
        *req.extensions_mut() = upstream_extensions(req.extensions());
        req
    }))
}

/// What an in-process upstream may see of this request's extensions: the request's context
/// and the client's socket address, as a remote one would learn them from headers. Nothing
/// else: the gateway's own router state, such as its matched path parameters, would confuse
/// the upstream router's extractors.
fn upstream_extensions(from: &http::Extensions) -> http::Extensions {
    let mut ext = http::Extensions::new();
    if let Some(v) = from.get::<RequestContext>() {
        ext.insert(v.clone());
    }
    if let Some(v) = from.get::<kernel::http::RequestId>() {
        ext.insert(v.clone());
    }
    if let Some(v) = from.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        ext.insert(*v);
    }
    ext
}

fn too_large(max: u64) -> Problem {
    Problem::PayloadTooLarge(format!(
        "The request body is larger than the {max} bytes this address accepts."
    ))
}

/// A page of our own (the chat page, the dashboard) calling its own API.
fn same_origin(req: &Request, origin: &str) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match (host, cors::normalise_origin(origin)) {
        (Some(host), Some(origin)) => origin
            .split_once("://")
            .is_some_and(|(_, h)| h.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// What the upstream needs to know about the original request: who sent it (appended to
/// `X-Forwarded-For` only when the peer is one of our proxies; a client's own claim is
/// replaced), over what and to which host, and the request id and trace to continue.
fn set_forwarding_headers(
    req: &mut Request,
    peer: Option<IpAddr>,
    front: &Front,
    ctx: Option<&RequestContext>,
) {
    let trusted_peer = peer.is_some_and(|p| front.trusted_proxies.trusts(p));
    let headers = req.headers_mut();
    // Room for the five added below at once: a map parsed from a short request is sized to
    // it, and would otherwise grow (and rehash) more than once.
    headers.reserve(5);
    let chain = match (peer, trusted_peer) {
        (Some(p), true) => {
            let before: Vec<String> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            if before.is_empty() {
                HeaderValue::from_str(IpText::new(p).as_str()).ok()
            } else {
                HeaderValue::from_str(&format!("{}, {p}", before.join(", "))).ok()
            }
        }
        (Some(p), false) => HeaderValue::from_str(IpText::new(p).as_str()).ok(),
        (None, _) => None,
    };
    headers.remove(&X_FORWARDED_FOR);
    if let Some(v) = chain {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !trusted_peer || !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if let Some(host) = headers.remove(header::HOST) {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(ctx) = ctx {
        ctx.set_outgoing_headers(headers);
    }
}
