//! Keep-alive HTTP/1.1 connections to one remote upstream, each driven by the request that
//! uses it.
//!
//! hyper's pooled client runs every connection as a task of its own: a proxied request hands
//! its request over to that task and waits for the response to be handed back, two wake-ups
//! of another task per request, often on the other worker thread (docs/benchmarks.md,
//! "Gateway": a tenth to a fifth of the gateway's CPU went to wake-ups and context switches).
//! Here the task of the downstream connection polls the upstream connection itself, while it
//! waits for the response and while it streams the response body, so a proxied request stays
//! on one task from the first byte in to the last byte out. An idle connection sits in the
//! pool unpolled; the next request that takes it polls it once first, which finds an upstream
//! that closed it in the meantime.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per upstream; more than this many idle at once are closed. The
/// busiest listener of a gateway keeps about one per concurrent downstream connection.
const MAX_IDLE: usize = 512;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: nothing reached the upstream.
    #[error("{0}")]
    Connect(String),
    /// The connection failed once the request was on its way (or the upstream answered
    /// something that is not HTTP).
    #[error("{0}")]
    Failed(String),
}

pub struct Pool {
    /// `host:port`, what is connected to.
    address: String,
    /// The `Host` header every request carries (the upstream's authority).
    host: HeaderValue,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// Most recently used at the back: the warmest connection is taken first, and the
    /// coldest are at the front, where expired ones are dropped.
    idle: Mutex<VecDeque<Idle>>,
}

struct Idle {
    upstream: Upstream,
    since: Instant,
}

/// One connection: the half that sends requests, and the future that does its I/O. `io`
/// is `None` once the connection has ended.
struct Upstream {
    sender: SendRequest<Body>,
    io: Option<Connection<TokioIo<TcpStream>, Body>>,
}

impl Upstream {
    /// Polls the connection's I/O; false once it has ended (closed by either side, or failed).
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        if Pin::new(io).poll(cx).is_ready() {
            // Dropping it fails what was waiting on it (hyper hands an unsent request back).
            self.io = None;
            return false;
        }
        true
    }

    /// Waits until the connection can take a request; false when it has ended instead. A
    /// connection from the pool was idle when it went there: it is ready at once or not at all
    /// (`wait` false), so nothing ever waits on one.
    async fn ready(&mut self, wait: bool) -> bool {
        poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            // A connection says it is ready only after its I/O has been polled in the idle
            // state, which `drive` just did.
            match self.sender.poll_ready(cx) {
                Poll::Ready(r) => Poll::Ready(r.is_ok()),
                Poll::Pending if wait => Poll::Pending,
                Poll::Pending => Poll::Ready(false),
            }
        })
        .await
    }

    /// Whether the connection can go back to the pool: open, and idle between messages. A
    /// response can end while the request's body is still being sent (an upstream that answers
    /// an upload early); such a connection would hold that body, and the next request would
    /// wait behind it.
    fn reusable(&mut self) -> bool {
        // One more turn of its I/O takes it from the response's end to the idle state; no
        // task waits on this poll, the next request polls it again with its own.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.drive(&mut cx) && self.sender.is_ready()
    }

    /// Sends the request and drives the connection until the response's head is in. On a
    /// failure before the request was written, the request comes back with the error.
    async fn exchange(
        &mut self,
        req: Request,
    ) -> Result<http::Response<Incoming>, (String, Option<Request>)> {
        let mut response = pin!(self.sender.try_send_request(req));
        poll_fn(|cx| {
            // I/O first: it may complete the response in this same poll.
            let alive = self.drive(cx);
            match response.as_mut().poll(cx) {
                Poll::Ready(Ok(res)) => Poll::Ready(Ok(res)),
                Poll::Ready(Err(mut e)) => {
                    let req = e.take_message();
                    Poll::Ready(Err((root_cause(e.error()), req)))
                }
                // An ended connection drops its pending requests, failing them; this is only
                // a guard against waiting on a connection that nobody will poll again.
                Poll::Pending if !alive => {
                    Poll::Ready(Err(("the connection closed".to_owned(), None)))
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

impl Pool {
    pub fn new(base: &http::Uri, connect_timeout: Duration, idle_timeout: Duration) -> Self {
        let host = base.host().unwrap_or("localhost");
        let port = base.port_u16().unwrap_or(80);
        // An IPv6 literal keeps its brackets in `host()`, as both uses need. The header names
        // the port only when it is not HTTP's own, and never the URL's user information.
        let host_header = if port == 80 {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        };
        Self {
            address: format!("{host}:{port}"),
            host: HeaderValue::from_str(&host_header)
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            connect_timeout,
            idle_timeout,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// Sends `req` (its URI in origin form) on an idle connection, or on a new one. A request
    /// that an idle connection could not take because the upstream had just closed it goes on
    /// another connection: nothing of it was sent.
    pub async fn send(self: &Arc<Self>, mut req: Request) -> Result<Response, SendError> {
        req.headers_mut()
            .insert(http::header::HOST, self.host.clone());
        *req.version_mut() = http::Version::HTTP_11;
        loop {
            let (mut upstream, reused) = match self.checkout() {
                Some(u) => (u, true),
                None => (self.connect().await?, false),
            };
            if !upstream.ready(!reused).await {
                if reused {
                    continue;
                }
                return Err(SendError::Connect(
                    "the connection closed before the request".into(),
                ));
            }
            match upstream.exchange(req).await {
                Ok(res) => {
                    let pool = Arc::clone(self);
                    return Ok(res.map(|body| {
                        Body::new(Driven {
                            body,
                            upstream: Some(upstream),
                            pool,
                        })
                    }));
                }
                Err((_, Some(back))) if reused => req = back,
                Err((e, Some(_))) => return Err(SendError::Connect(e)),
                Err((e, None)) => return Err(SendError::Failed(e)),
            }
        }
    }

    /// The most recently used idle connection that has not been idle too long.
    fn checkout(&self) -> Option<Upstream> {
        let fresh = Instant::now().checked_sub(self.idle_timeout);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let entry = idle.pop_back()?;
        if fresh.is_none_or(|f| entry.since >= f) {
            return Some(entry.upstream);
        }
        // Expired, and the rest are older still: closed once the lock is let go.
        let expired: VecDeque<Idle> = std::mem::take(&mut *idle);
        drop(idle);
        drop((entry, expired));
        None
    }

    fn put(&self, upstream: Upstream) {
        let now = Instant::now();
        let mut closing = Vec::new();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(oldest) = now.checked_sub(self.idle_timeout) {
            while idle.front().is_some_and(|e| e.since < oldest) {
                closing.extend(idle.pop_front());
            }
        }
        if idle.len() >= MAX_IDLE {
            closing.extend(idle.pop_front());
        }
        idle.push_back(Idle {
            upstream,
            since: now,
        });
        drop(idle);
        // Sockets are closed outside the lock.
        drop(closing);
    }

    async fn connect(&self) -> Result<Upstream, SendError> {
        let connect = TcpStream::connect(self.address.as_str());
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => {
                return Err(SendError::Connect(format!(
                    "no connection to {} within {} ms",
                    self.address,
                    self.connect_timeout.as_millis()
                )));
            }
            Ok(Err(e)) => return Err(SendError::Connect(e.to_string())),
            Ok(Ok(s)) => s,
        };
        // Small requests and answers go out at once rather than waiting for more.
        stream
            .set_nodelay(true)
            .map_err(|e| SendError::Connect(e.to_string()))?;
        let (sender, io) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect(root_cause(&e)))?;
        Ok(Upstream {
            sender,
            io: Some(io),
        })
    }
}

/// A response body that drives its connection while it is read, and gives the connection
/// back to the pool once the body has been read to its end.
struct Driven {
    body: Incoming,
    upstream: Option<Upstream>,
    pool: Arc<Pool>,
}

impl Driven {
    /// The connection goes back to the pool if it can take another request, and is closed
    /// otherwise.
    fn give_back(&mut self) {
        if let Some(mut upstream) = self.upstream.take()
            && upstream.reusable()
        {
            self.pool.put(upstream);
        }
    }
}

impl hyper::body::Body for Driven {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // The body's bytes arrive only as the connection is polled, one piece per turn (the
        // channel between them holds one): its I/O first, so that the piece is there to take.
        if let Some(upstream) = this.upstream.as_mut()
            && !upstream.drive(cx)
        {
            // Ended: with the connection dropped the body ends too, cleanly or not.
            this.upstream = None;
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(None) => {
                this.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                if frame.is_err() {
                    this.upstream = None;
                } else if this.body.is_end_stream() {
                    this.give_back();
                }
                Poll::Ready(Some(frame))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Driven {
    /// A body with nothing left to read is often not read to its end (an empty one, or one
    /// whose length was reached): its connection is still good for the next request. One
    /// dropped halfway (the client went away) is closed with it.
    fn drop(&mut self) {
        self.give_back();
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(url: &str) -> Pool {
        Pool::new(
            &url.parse().unwrap(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn the_host_header_names_the_port_only_when_it_is_not_80_and_never_the_user() {
        let p = pool("http://chat.internal");
        assert_eq!(
            (p.address.as_str(), p.host.to_str().unwrap()),
            ("chat.internal:80", "chat.internal")
        );
        let p = pool("http://user:secret@chat.internal:80/base");
        assert_eq!(
            (p.address.as_str(), p.host.to_str().unwrap()),
            ("chat.internal:80", "chat.internal")
        );
        let p = pool("http://[::1]:8080");
        assert_eq!(
            (p.address.as_str(), p.host.to_str().unwrap()),
            ("[::1]:8080", "[::1]:8080")
        );
    }
}
