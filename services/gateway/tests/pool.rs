//! The gateway's upstream connections (`gateway::pool`) against real HTTP servers on loopback
//! ports: a hyper server that counts the connections it accepts, and a raw TCP one that closes
//! an idle keep-alive connection without saying so, the way upstreams do at their keep-alive
//! timeout.

use axum::body::Body;
use bytes::Bytes;
use gateway::pool::{Pool, SendError};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Frames = mpsc::Receiver<Result<Frame<Bytes>, Infallible>>;

/// A hyper server: `/stream` answers with the frames the test sends on the channel it gets
/// from `streams`; `/echo` answers with the number of body bytes it received; `/empty` with
/// no body; `/host` with the `Host` header and the request target it got; anything else with
/// `ok`. Returns its address and the count of connections it accepted.
async fn upstream(streams: Option<mpsc::Receiver<Frames>>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let streams = Arc::new(tokio::sync::Mutex::new(streams));
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let streams = streams.clone();
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let streams = streams.clone();
                    async move {
                        let body = match req.uri().path() {
                            "/stream" => {
                                let frames = streams.lock().await.as_mut().unwrap().recv().await;
                                Body::new(http_body_util::StreamBody::new(
                                    kernel::http::receiver_stream(frames.expect("a stream")),
                                ))
                            }
                            "/echo" => {
                                let n = req.into_body().collect().await.unwrap().to_bytes().len();
                                Body::from(n.to_string())
                            }
                            "/empty" => Body::empty(),
                            "/host" => Body::from(format!(
                                "{} {}",
                                req.headers()["host"].to_str().unwrap(),
                                req.uri()
                            )),
                            _ => Body::from("ok"),
                        };
                        Ok::<_, Infallible>(http::Response::new(body))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service),
            );
        }
    });
    (addr, accepted)
}

fn pool(addr: SocketAddr) -> Arc<Pool> {
    let base: http::Uri = format!("http://{addr}").parse().unwrap();
    Arc::new(Pool::new(
        &base,
        Duration::from_secs(2),
        Duration::from_secs(60),
    ))
}

fn get(path: &str) -> http::Request<Body> {
    http::Request::get(path).body(Body::empty()).unwrap()
}

async fn text(res: axum::response::Response) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn one_connection_carries_request_after_request() {
    let (addr, accepted) = upstream(None).await;
    let pool = pool(addr);
    for _ in 0..50 {
        let res = pool.send(get("/")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(text(res).await, "ok");
    }
    // A body that is never read, but has nothing to read, gives its connection back too.
    for _ in 0..5 {
        drop(pool.send(get("/empty")).await.unwrap());
    }
    let mut big = vec![0u8; 1 << 20];
    big[7] = 1;
    let post = http::Request::post("/echo").body(Body::from(big)).unwrap();
    assert_eq!(text(pool.send(post).await.unwrap()).await, "1048576");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_requests_each_get_a_connection_and_all_are_kept() {
    let (addr, accepted) = upstream(None).await;
    let pool = pool(addr);
    let round = || {
        let pool = pool.clone();
        async move {
            let all = (0..8).map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let res = pool.send(get("/")).await.unwrap();
                    // Holding the body keeps the connection busy until all eight are sent.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    text(res).await
                })
            });
            for answer in futures::future::join_all(all).await {
                assert_eq!(answer.unwrap(), "ok");
            }
        }
    };
    round().await;
    round().await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        8,
        "the second round reused all eight"
    );
}

/// Asks `/stream`; returns the sender of its body's pieces and the body as the pool gives it.
async fn stream(
    pool: &Arc<Pool>,
    streams: &mpsc::Sender<Frames>,
) -> (mpsc::Sender<Result<Frame<Bytes>, Infallible>>, Body) {
    let (frames, rx) = mpsc::channel(4);
    streams.send(rx).await.unwrap();
    let res = pool.send(get("/stream")).await.unwrap();
    (frames, res.into_body())
}

/// Has the upstream send one piece of the body; an error once the connection is gone.
async fn send(
    frames: &mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    piece: &'static str,
) -> Result<(), impl std::fmt::Debug> {
    frames
        .send(Ok(Frame::data(Bytes::from_static(piece.as_bytes()))))
        .await
}

#[tokio::test]
async fn a_body_streams_as_the_upstream_sends_it_and_a_dropped_one_closes_its_connection() {
    let (streams_tx, streams_rx) = mpsc::channel(4);
    let (addr, accepted) = upstream(Some(streams_rx)).await;
    let pool = pool(addr);

    let (frames, mut body) = stream(&pool, &streams_tx).await;
    // The first piece arrives while the upstream is still holding the second back: the body
    // itself drives the connection.
    send(&frames, "first").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first piece did not arrive on its own")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    send(&frames, "second").await.unwrap();
    drop(frames);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second");
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "read to its end, reused"
    );

    // Dropped halfway (the client went away): that connection is not used again.
    let (frames, mut body) = stream(&pool, &streams_tx).await;
    send(&frames, "part").await.unwrap();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "a fresh connection");
    // The upstream learns that the first one is gone: its side of the stream fails.
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if send(&frames, "x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the dropped body's connection stayed open");
}

/// What a raw upstream does on each connection after answering its first request.
#[derive(Clone, Copy)]
enum Then {
    /// Waits until the test says so, closes the connection without a word
    /// (`Connection: close` never sent), and tells the test.
    CloseWhenTold,
    /// Reads the second request, then closes without answering it.
    DropTheSecond,
}

/// A raw HTTP/1.1 upstream: it counts connections and request heads, answers each
/// connection's first request with a keep-alive `ok`, then does what `then` says.
struct Raw {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    close: Arc<tokio::sync::Notify>,
    closed: mpsc::Receiver<()>,
}

async fn raw_upstream(then: Then) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let close = Arc::new(tokio::sync::Notify::new());
    let (closed_tx, closed) = mpsc::channel(16);
    let (a, r, c) = (accepted.clone(), requests.clone(), close.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let (requests, close, closed) = (r.clone(), c.clone(), closed_tx.clone());
            tokio::spawn(async move {
                if !read_head(&mut socket).await {
                    return;
                }
                requests.fetch_add(1, Ordering::SeqCst);
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                match then {
                    Then::CloseWhenTold => close.notified().await,
                    Then::DropTheSecond => {
                        if read_head(&mut socket).await {
                            requests.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                drop(socket);
                let _ = closed.send(()).await;
            });
        }
    });
    Raw {
        addr,
        accepted,
        requests,
        close,
        closed,
    }
}

/// Reads up to the end of a request head (a GET has no body); false if the peer left first.
async fn read_head(socket: &mut tokio::net::TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => seen.push(byte[0]),
        }
    }
    true
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced_not_failed() {
    let mut raw = raw_upstream(Then::CloseWhenTold).await;
    let pool = pool(raw.addr);
    for i in 1..=5 {
        assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
        // The answer was read, so its connection is in the pool; now the upstream closes it.
        raw.close.notify_one();
        raw.closed.recv().await.unwrap();
        assert_eq!(raw.accepted.load(Ordering::SeqCst), i);
    }
    assert_eq!(raw.requests.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_request_the_upstream_received_is_never_sent_again() {
    let raw = raw_upstream(Then::DropTheSecond).await;
    let pool = pool(raw.addr);
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    // The second goes on the same connection; the upstream reads it and hangs up.
    let err = pool.send(get("/")).await.unwrap_err();
    assert!(matches!(err, SendError::Failed(_)), "{err:?}");
    assert_eq!(raw.requests.load(Ordering::SeqCst), 2, "sent once");
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connections_idle_longer_than_the_idle_timeout_are_not_used() {
    let (addr, accepted) = upstream(None).await;
    let base: http::Uri = format!("http://{addr}").parse().unwrap();
    let pool = Arc::new(Pool::new(
        &base,
        Duration::from_secs(2),
        Duration::from_secs(1),
    ));
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_upstream_sees_its_own_host_and_the_path_in_origin_form() {
    let (addr, _) = upstream(None).await;
    let pool = pool(addr);
    let answer = text(pool.send(get("/host?x=1")).await.unwrap()).await;
    assert_eq!(answer, format!("{addr} /host?x=1"));
}

#[tokio::test]
async fn a_connection_still_sending_an_answered_upload_is_closed_not_pooled() {
    // An upstream that answers at once and reads (and drops) whatever comes after, the way a
    // server refusing an upload does, keeping the connection open.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !read_head(&mut socket).await {
                    return;
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n")
                    .await;
                let mut sink = [0u8; 4096];
                while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    let pool = pool(addr);
    // A body that is still streaming from the client when the answer comes.
    let (pieces, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    pieces.send(Ok(Bytes::from_static(b"start"))).await.unwrap();
    let body = Body::from_stream(kernel::http::receiver_stream(rx));
    let upload = http::Request::post("/upload").body(body).unwrap();
    let res = pool.send(upload).await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(text(res).await, "");
    // Its connection was closed, not kept holding this client's body.
    tokio::time::timeout(Duration::from_secs(5), pieces.closed())
        .await
        .expect("the connection kept the upload's body");
    // The next request gets a connection of its own at once.
    let next = tokio::time::timeout(Duration::from_secs(5), pool.send(get("/")))
        .await
        .expect("the next request waited behind the upload");
    assert_eq!(next.unwrap().status(), 413);
}

#[tokio::test]
async fn nobody_listening_is_a_connect_failure() {
    // Below the range of source ports, so no connection of ours can be holding it.
    let closed = SocketAddr::from(([127, 0, 0, 1], kernel::testing::free_port()));
    let err = pool(closed).send(get("/")).await.unwrap_err();
    assert!(matches!(err, SendError::Connect(_)), "{err:?}");
}
