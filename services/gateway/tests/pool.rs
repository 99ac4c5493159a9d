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
/// no body; anything else with `ok`. Returns its address and the count of connections it accepted.
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
                                let mut frames =
                                    streams.lock().await.as_mut().unwrap().recv().await;
                                let frames = futures::stream::poll_fn(move |cx| {
                                    frames
                                        .as_mut()
                                        .map_or(std::task::Poll::Ready(None), |f: &mut Frames| {
                                            f.poll_recv(cx)
                                        })
                                });
                                Body::new(http_body_util::StreamBody::new(frames))
                            }
                            "/echo" => {
                                let n = req.into_body().collect().await.unwrap().to_bytes().len();
                                Body::from(n.to_string())
                            }
                            "/empty" => Body::empty(),
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

#[tokio::test]
async fn a_body_streams_as_the_upstream_sends_it_and_a_dropped_one_closes_its_connection() {
    let (streams_tx, streams_rx) = mpsc::channel(4);
    let (addr, accepted) = upstream(Some(streams_rx)).await;
    let pool = pool(addr);

    let (frames, rx) = mpsc::channel(4);
    streams_tx.send(rx).await.unwrap();
    let res = pool.send(get("/stream")).await.unwrap();
    let mut body = res.into_body();
    // The first piece arrives while the upstream is still holding the second back: the body
    // itself drives the connection.
    frames
        .send(Ok(Frame::data(Bytes::from_static(b"first"))))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first piece did not arrive on its own")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    frames
        .send(Ok(Frame::data(Bytes::from_static(b"second"))))
        .await
        .unwrap();
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
    let (frames, rx) = mpsc::channel(4);
    streams_tx.send(rx).await.unwrap();
    let res = pool.send(get("/stream")).await.unwrap();
    let mut body = res.into_body();
    frames
        .send(Ok(Frame::data(Bytes::from_static(b"part"))))
        .await
        .unwrap();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "a fresh connection");
    // The upstream learns that the first one is gone: its side of the stream fails.
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if frames
                .send(Ok(Frame::data(Bytes::from_static(b"x"))))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the dropped body's connection stayed open");
}

/// A raw HTTP/1.1 server that answers one request per connection with a keep-alive response
/// and then closes the connection after `linger`, without `Connection: close`.
async fn closing_upstream(linger: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(linger).await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced_not_failed() {
    let (addr, accepted) = closing_upstream(Duration::from_millis(20)).await;
    let pool = pool(addr);
    for i in 1..=5 {
        assert_eq!(text(pool.send(get("/")).await.unwrap()).await, "ok");
        // The upstream has closed the idle connection by the time the next request goes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), i);
    }
}

#[tokio::test]
async fn nobody_listening_is_a_connect_failure() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = pool(closed).send(get("/")).await.unwrap_err();
    assert!(matches!(err, SendError::Connect(_)), "{err:?}");
}
