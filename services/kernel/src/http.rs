//! The HTTP skeleton every listener shares: request ids, trace context, access logs, metrics,
//! problem rendering, panics turned into `500 internal`, body limits and graceful shutdown.
//!
//! Layers, outermost first (each line says why it is there):
//! 1. catch-panic: a bug in one handler answers 500 instead of taking the connection down;
//! 2. `observe`: request id + traceparent + span + access log + metrics + problem `instance`;
//! 3. body limit: a client cannot make us buffer more than the listener allows.

use crate::access_log;
use crate::problem::{Problem, ProblemBody};
use crate::telemetry::{HttpLabels, Metrics};
use crate::trace_context::{self, TraceParent};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, Request, rejection::JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
// Names made once: a `&str` name is parsed and looked up again on every use, and these are
// used on every request.
const REQUEST_ID: http::HeaderName = http::HeaderName::from_static(REQUEST_ID_HEADER);
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static(trace_context::HEADER);
/// Default for listeners that do not set their own.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The id of the request being served, also the `instance` of any problem it answers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Where a request came from. The trace context to send downstream is `trace.child()`.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub trace: TraceParent,
    pub client: Option<SocketAddr>,
}

impl RequestContext {
    /// Headers to send on a call this request makes to another service: the same request id,
    /// and the trace continued one hop further.
    pub fn outgoing_headers(&self) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        self.set_outgoing_headers(&mut h);
        h
    }

    /// The same headers, set on a request's own map (the gateway forwards every request).
    pub fn set_outgoing_headers(&self, headers: &mut http::HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert(REQUEST_ID, v);
        }
        if let Some(v) = self.trace.child().header_value() {
            headers.insert(TRACEPARENT, v);
        }
    }
}

/// What `observe` needs besides the request: the listener's name in logs and metrics
/// (`public`, `admin`, `chat`, ...) and the metrics. Held by the layer itself rather than put
/// into every request's extensions (two insertions and two extractions a request).
struct ObserveState {
    listener: std::sync::Arc<str>,
    metrics: Metrics,
}

/// The `observe` step as a tower layer.
#[derive(Clone)]
struct ObserveLayer(std::sync::Arc<ObserveState>);

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            state: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Observe<S> {
    inner: S,
    state: std::sync::Arc<ObserveState>,
}

impl<S> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service that was made ready goes with the request; a clone stays for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move { Ok(observe(&state, req, inner).await) })
    }
}

/// Wraps a router in the standard layers.
pub fn standard_layers(
    router: Router,
    listener: &str,
    metrics: Metrics,
    body_limit: usize,
) -> Router {
    router
        .fallback(|| async { Problem::NotFound("There is nothing at this address.".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(ObserveLayer(std::sync::Arc::new(ObserveState {
            listener: listener.into(),
            metrics,
        })))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("a request handler panicked");
            Problem::internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
}

/// A request id from outside is kept only if it is short and plain, so that it can go into logs
/// and headers unescaped; otherwise we make our own.
fn accept_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    .then(|| s.to_owned())
}

/// A UUIDv7 (time-ordered) whose random part comes from the thread's generator:
/// `Uuid::now_v7` asks the kernel (`getrandom(2)`) on every call, a system call per request.
fn new_request_id() -> String {
    use rand::RngCore;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

/// The method as a metric label, without an allocation for the standard ones.
fn method_label(method: &http::Method) -> std::borrow::Cow<'static, str> {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    match STANDARD.iter().find(|name| **name == method.as_str()) {
        Some(name) => std::borrow::Cow::Borrowed(name),
        None => std::borrow::Cow::Owned(method.to_string()),
    }
}

async fn observe<S>(state: &ObserveState, mut req: Request, mut next: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
{
    let (listener, metrics) = (&state.listener, &state.metrics);
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(accept_request_id)
        .unwrap_or_else(new_request_id);
    // Our hop is a child of the caller's span, or the root of a new trace.
    let trace = req
        .headers()
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .map(|p| p.child())
        .unwrap_or_else(TraceParent::new_root);
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        trace,
        client,
    });

    let (trace_id, span_id) = (trace.trace_id_hex(), trace.span_id_hex());
    // `%`: the text format writes them bare, as it always has (a `&str` would be quoted).
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = %trace_id.as_str(),
        span_id = %span_id.as_str(),
        listener = %listener,
    );
    let mut res = match next.call(req).instrument(span).await {
        Ok(res) => res,
        Err(never) => match never {},
    };

    if let Some(body) = res.extensions_mut().remove::<ProblemBody>() {
        let headers = res.headers().clone();
        res = body.into_response_with_instance(Some(request_id.clone()));
        for (name, value) in headers.iter() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                res.headers_mut().insert(name.clone(), value.clone());
            }
        }
    } else if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        let body = ProblemBody {
            r#type: "https://protostar.dev/problems/method-not-allowed".into(),
            title: "Method not allowed".into(),
            status: 405,
            detail: format!("{method} is not allowed here."),
            instance: None,
            errors: None,
            limit: None,
            remaining: None,
            resets_at: None,
        };
        let allow = res.headers().get(header::ALLOW).cloned();
        res = body.into_response_with_instance(Some(request_id.clone()));
        if let Some(allow) = allow {
            res.headers_mut().insert(header::ALLOW, allow);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    if let Some(v) = trace.header_value() {
        res.headers_mut().insert(TRACEPARENT, v);
    }

    let elapsed = started.elapsed();
    let labels = HttpLabels {
        listener: listener.clone(),
        method: method_label(&method),
        status: res.status().as_u16(),
    };
    metrics.http_requests.get_or_create(&labels).inc();
    metrics
        .http_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    if !(path == "/healthz" || path == "/readyz" || path == "/metrics") {
        access_log::AccessLine {
            request_id: &request_id,
            trace_id: trace_id.as_str(),
            span_id: span_id.as_str(),
            listener,
            method: method.as_str(),
            path: &path,
            status: res.status().as_u16(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            client: client.map(|c| c.ip()),
        }
        .log();
    }
    res
}

/// `axum::Json` whose rejections are problems (`400 invalid-request`, `415`), not plain text.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::UnsupportedMediaType(
                "Send a JSON body with Content-Type: application/json.".into(),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(Problem::invalid(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(Problem::invalid(e.body_text())),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(Problem::PayloadTooLarge(
                    "The request body is too large.".into(),
                ))
            }
            Err(e) => Err(Problem::invalid(e.body_text())),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` whose rejections are problems: `/api/answers/not-a-uuid` is a
/// `400 invalid-request` in problem+json, not axum's plain text.
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| match e {
                axum::extract::rejection::PathRejection::FailedToDeserializePathParams(e) => {
                    Problem::invalid(format!("The address is not valid: {}", e.body_text()))
                }
                other => Problem::internal(anyhow::anyhow!("path parameters: {other}")),
            })
    }
}

/// `axum::extract::Query` whose rejections are problems (`400 invalid-request`).
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e| Problem::invalid(format!("The query is not valid: {}", e.body_text())))
    }
}

/// The items a task sends on `rx`, as a stream (an answer relayed by a task of its own).
pub fn receiver_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Resolves when the process is asked to stop (SIGTERM from Kubernetes, Ctrl-C at a terminal).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Serves `router` on `listener` until `stop` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await })
    .await
}

/// Binds an address, naming the config key in the error so that a busy port is easy to fix.
pub async fn bind(addr: &str, key: &str) -> Result<TcpListener, crate::ConfigError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| crate::ConfigError::key(key, format!("cannot listen on {addr}: {e}")))
}

/// Installs rustls's ring provider as the process default, once. Every TLS client in the
/// process (reqwest, S3) needs one, and choosing it here keeps aws-lc out of the build.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The outgoing HTTP client every service uses (JWKS, upstreams, model providers).
pub fn client(timeout: std::time::Duration) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        // Building fails only when the TLS backend cannot initialise, which the provider above
        // rules out; a client without a timeout is the safe fallback.
        .unwrap_or_else(|_| reqwest::Client::new())
}
