//! An upstream in another process: HTTP/1.1 over a pool of keep-alive connections
//! ([`crate::pool`]), behind a circuit breaker, with a deadline for the response headers and
//! retries for idempotent requests whose connection failed before anything was sent (the only
//! failure where sending again cannot do something twice).

use crate::breaker::{Breaker, Phase};
use crate::metrics::{GatewayMetrics, TargetLabel};
use crate::pool::{Pool, SendError};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use kernel::problem::Problem;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct HttpUpstream {
    inner: Arc<Inner>,
}

struct Inner {
    target: &'static str,
    /// The path every request's path is put under (usually empty).
    base_path: String,
    pool: Arc<Pool>,
    breaker: Breaker,
    timeout: Duration,
    retries: u32,
    metrics: GatewayMetrics,
}

pub struct ProxySettings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retries: u32,
}

impl HttpUpstream {
    pub fn new(
        target: &'static str,
        base: Uri,
        breaker: Breaker,
        settings: &ProxySettings,
        metrics: GatewayMetrics,
    ) -> Self {
        let pool = Arc::new(Pool::new(
            &base,
            settings.connect_timeout,
            Duration::from_secs(60),
        ));
        metrics
            .breaker
            .get_or_create(&TargetLabel {
                target: target.to_owned(),
            })
            .set(0);
        Self {
            inner: Arc::new(Inner {
                target,
                base_path: base.path().trim_end_matches('/').to_owned(),
                pool,
                breaker,
                timeout: settings.timeout,
                retries: settings.retries,
                metrics,
            }),
        }
    }

    pub fn phase(&self) -> Phase {
        self.inner.breaker.phase()
    }
}

impl tower::Service<Request> for HttpUpstream {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.forward(req).await) })
    }
}

/// Why an attempt produced no response.
enum Failure {
    /// Nothing reached the upstream: safe to try again.
    Connect(String),
    Timeout,
    Other(String),
}

impl Inner {
    async fn forward(&self, req: Request) -> Response {
        let ticket = match self.breaker.admit(Instant::now()) {
            Ok(t) => t,
            Err(wait) => {
                self.metrics.outcome(self.target, "circuit-open");
                let mut res = Problem::UpstreamUnavailable(format!(
                    "The {} service is failing; the gateway stopped sending to it for a moment.",
                    self.target
                ))
                .into_response();
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
        };
        let (mut parts, body) = req.into_parts();
        parts.uri = match self.uri_for(&parts.uri) {
            Some(u) => u,
            None => return Problem::invalid("The request path is not valid.").into_response(),
        };
        strip_hop_by_hop(&mut parts.headers);

        let result = if is_idempotent(&parts.method) && self.retries > 0 {
            // Buffered, so it can be sent again; the front has already capped its size.
            match body.collect().await {
                Ok(bytes) => self.send_with_retries(&parts, bytes.to_bytes()).await,
                Err(_) => {
                    self.release(ticket, true);
                    return Problem::invalid("The request body could not be read.").into_response();
                }
            }
        } else {
            self.send(Request::from_parts(parts, body)).await
        };

        match result {
            Ok(mut res) => {
                let failed = matches!(
                    res.status(),
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                );
                self.metrics
                    .outcome(self.target, if failed { "error-status" } else { "ok" });
                self.release(ticket, !failed);
                strip_hop_by_hop(res.headers_mut());
                res
            }
            Err(failure) => {
                self.release(ticket, false);
                let (outcome, detail) = match failure {
                    Failure::Connect(e) => (
                        "connect-failed",
                        format!("The {} service cannot be reached ({e}).", self.target),
                    ),
                    Failure::Timeout => (
                        "timeout",
                        format!(
                            "The {} service did not answer within {} s.",
                            self.target,
                            self.timeout.as_secs()
                        ),
                    ),
                    Failure::Other(e) => (
                        "connect-failed",
                        format!("The {} service broke the connection ({e}).", self.target),
                    ),
                };
                self.metrics.outcome(self.target, outcome);
                tracing::warn!(target_service = self.target, outcome, "upstream failed");
                Problem::UpstreamUnavailable(detail).into_response()
            }
        }
    }

    fn release(&self, ticket: crate::breaker::Ticket, ok: bool) {
        if let Some(phase) = self.breaker.record(ticket, ok, Instant::now()) {
            tracing::warn!(
                target_service = self.target,
                breaker = phase.as_str(),
                "circuit breaker changed"
            );
            self.metrics
                .breaker
                .get_or_create(&TargetLabel {
                    target: self.target.to_owned(),
                })
                .set(match phase {
                    Phase::Closed => 0,
                    Phase::Open => 1,
                    Phase::HalfOpen => 2,
                });
        }
    }

    async fn send_with_retries(
        &self,
        parts: &http::request::Parts,
        body: bytes::Bytes,
    ) -> Result<Response, Failure> {
        let mut attempt = 0;
        loop {
            let mut req = Request::new(Body::from(body.clone()));
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = parts.uri.clone();
            *req.headers_mut() = parts.headers.clone();
            *req.version_mut() = parts.version;
            match self.send(req).await {
                Err(Failure::Connect(_)) if attempt < self.retries => {
                    attempt += 1;
                    self.metrics
                        .retries
                        .get_or_create(&TargetLabel {
                            target: self.target.to_owned(),
                        })
                        .inc();
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn send(&self, req: Request) -> Result<Response, Failure> {
        match tokio::time::timeout(self.timeout, self.pool.send(req)).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(SendError::Connect(e))) => Err(Failure::Connect(e)),
            Ok(Err(SendError::Failed(e))) => Err(Failure::Other(e)),
            Ok(Ok(res)) => Ok(res),
        }
    }

    /// The request's URI toward the upstream, in origin form (`/path?query`): the upstream's
    /// authority goes in the `Host` header.
    fn uri_for(&self, original: &Uri) -> Option<Uri> {
        match original.path_and_query() {
            // The usual case, a base without a path: the original path is reused as it is.
            Some(pq) if self.base_path.is_empty() => Some(Uri::from(pq.clone())),
            pq => {
                let pq = pq.map(|p| p.as_str()).unwrap_or("/");
                format!("{}{pq}", self.base_path).parse().ok()
            }
        }
    }
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// Headers meant for one connection only (RFC 9110 §7.6.1), besides those the `Connection`
/// header names.
static HOP_BY_HOP: [http::HeaderName; 9] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    http::HeaderName::from_static("keep-alive"),
    http::HeaderName::from_static("proxy-connection"),
];

/// Removes the hop-by-hop headers, including any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Usually there is none but `Connection` with its usual tokens (every keep-alive answer
    // of an upstream has one): one pass over the names and a look at that header's value are
    // cheaper than a removal, a hash lookup, per name that might be there.
    let (mut connection, mut others) = (false, false);
    for name in headers.keys() {
        if name == header::CONNECTION {
            connection = true;
        } else if HOP_BY_HOP.contains(name) {
            others = true;
            break;
        }
    }
    if !(connection || others) {
        return;
    }
    // The headers `Connection` names, but not the usual tokens, which name no header to
    // remove (or one removed below anyway): usually nothing is collected, so nothing allocated.
    let named: Vec<http::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| {
            !(s.is_empty()
                || s.eq_ignore_ascii_case("keep-alive")
                || s.eq_ignore_ascii_case("close")
                || s.eq_ignore_ascii_case("upgrade"))
        })
        // Case-insensitive: the name is made lower case.
        .filter_map(|s| http::HeaderName::from_bytes(s.as_bytes()).ok())
        .collect();
    if !others {
        headers.remove(header::CONNECTION);
    } else {
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
    }
    for name in &named {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_do_not_cross() {
        let mut h = http::HeaderMap::new();
        h.insert(
            header::CONNECTION,
            "close, x-secret, X-Other".parse().unwrap(),
        );
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("x-other", "2".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::AUTHORIZATION));
    }

    #[test]
    fn end_to_end_headers_stay() {
        let mut h = http::HeaderMap::new();
        h.insert(header::HOST, "example.com".parse().unwrap());
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2, "nothing hop-by-hop, nothing removed");
        // An upstream's usual answer: only `Connection: keep-alive` goes.
        h.insert(header::CONNECTION, "Keep-Alive".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
        assert!(!h.contains_key(header::CONNECTION));
        // `Connection` alone, naming a header of this hop.
        h.insert(header::CONNECTION, "x-hop".parse().unwrap());
        h.insert("x-hop", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
        assert!(!h.contains_key("x-hop"));
    }
}
