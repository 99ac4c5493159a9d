//! The relay threads over real loopback sockets: both copy modes, half-close, a slow
//! receiver, idle timeouts, the drain cut, and what an idle connection costs.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::upstream::HealthRegistry;

type Async = tokio::net::TcpStream;

/// A relay running on the test's (current-thread) runtime, as on a worker thread.
struct Bench {
    stop: CancellationToken,
    tracker: TaskTracker,
    metrics: Metrics,
    route: Arc<Route>,
}

impl Bench {
    fn new() -> Self {
        let config = Config::from_toml(
            r#"
            [[listener]]
            bind = "127.0.0.1:0"
            [[upstream]]
            name = "u"
            addresses = ["127.0.0.1:1"]
            [[route]]
            name = "r"
            sni = ["r.example.com"]
            upstream = "u"
            "#,
        )
        .expect("config");
        let rt = Runtime::compile(config, &HealthRegistry::default()).expect("compile");
        let stop = CancellationToken::new();
        tokio::spawn(run(stop.clone()).expect("relay installed"));
        Self {
            stop,
            tracker: TaskTracker::new(),
            metrics: Metrics::new(),
            route: Arc::clone(rt.routes.first().expect("a route")),
        }
    }

    /// Two socket pairs, the proxy's ends handed to the relay: (client, upstream) peers.
    fn connect(&self, mode: CopyMode, idle: Duration) -> io::Result<(Async, Async)> {
        let (client, proxy_client) = pair()?;
        let (proxy_up, upstream) = pair()?;
        hand_off(Established {
            client: proxy_client,
            upstream: proxy_up,
            peer: client.local_addr()?,
            mode,
            idle,
            route: Arc::clone(&self.route),
            meters: self.metrics.connection_opened("r"),
            held: Held {
                route: None,
                source: None,
                drain: self.tracker.token(),
            },
        });
        Ok((Async::from_std(client)?, Async::from_std(upstream)?))
    }

    /// Waits until every handed-off connection has ended.
    async fn all_closed(&self, within: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// A connected pair of non-blocking sockets.
fn pair() -> io::Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let a = TcpStream::connect(l.local_addr()?)?;
    let (b, _) = l.accept()?;
    for s in [&a, &b] {
        s.set_nonblocking(true)?;
    }
    Ok((a, b))
}

async fn half_close_round_trip(mode: CopyMode) -> io::Result<()> {
    let bench = Bench::new();
    let (mut client, mut upstream) = bench.connect(mode, Duration::from_secs(10))?;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&payload).await?;
    client.shutdown().await?;
    let mut got = Vec::new();
    upstream.read_to_end(&mut got).await?;
    assert_eq!(got, payload, "client bytes arrive intact, then EOF");
    // The other direction still works after the client's half-close.
    upstream.write_all(b"reply after half-close").await?;
    upstream.shutdown().await?;
    let mut back = Vec::new();
    client.read_to_end(&mut back).await?;
    assert_eq!(back, b"reply after half-close");
    assert!(bench.all_closed(Duration::from_secs(5)).await);
    let text = bench.metrics.encode();
    for want in [
        "edge_bytes_total{route=\"r\",direction=\"client_to_upstream\"} 300000",
        "edge_bytes_total{route=\"r\",direction=\"upstream_to_client\"} 22",
        "edge_connections_active{route=\"r\"} 0",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    Ok(())
}

#[tokio::test]
async fn userspace_passes_half_close() -> io::Result<()> {
    half_close_round_trip(CopyMode::Userspace).await
}

#[tokio::test]
async fn splice_passes_half_close() -> io::Result<()> {
    half_close_round_trip(CopyMode::Splice).await
}

/// The receiver reads nothing for a while: the relay must stop reading, keep what it read,
/// and resume on the writable edge, in both directions at once.
async fn slow_receiver(mode: CopyMode) -> io::Result<()> {
    const LEN: usize = 8 << 20;
    let bench = Bench::new();
    let (client, upstream) = bench.connect(mode, Duration::from_secs(30))?;
    let data: Vec<u8> = (0..LEN as u32).map(|i| (i % 253) as u8).collect();
    let (c_read, c_write) = client.into_split();
    let (u_read, u_write) = upstream.into_split();
    async fn send<W: AsyncWriteExt + Unpin>(mut w: W, data: &[u8]) -> io::Result<()> {
        w.write_all(data).await?;
        w.shutdown().await
    }
    async fn receive_late<R: AsyncReadExt + Unpin>(mut r: R) -> io::Result<Vec<u8>> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut got = Vec::new();
        r.read_to_end(&mut got).await?;
        Ok(got)
    }
    let (to_up, to_client) = (send(c_write, &data), send(u_write, &data));
    let (read_up, read_client) = (receive_late(u_read), receive_late(c_read));
    let (a, b, up, down) = tokio::join!(to_up, to_client, read_up, read_client);
    a?;
    b?;
    assert!(up? == data, "client → upstream intact");
    assert!(down? == data, "upstream → client intact");
    assert!(bench.all_closed(Duration::from_secs(5)).await);
    Ok(())
}

#[tokio::test]
async fn userspace_waits_for_a_slow_receiver() -> io::Result<()> {
    slow_receiver(CopyMode::Userspace).await
}

#[tokio::test]
async fn splice_waits_for_a_slow_receiver() -> io::Result<()> {
    slow_receiver(CopyMode::Splice).await
}

#[tokio::test]
async fn idle_connections_time_out() -> io::Result<()> {
    let bench = Bench::new();
    let started = Instant::now();
    let (mut client, mut upstream) =
        bench.connect(CopyMode::Userspace, Duration::from_millis(200))?;
    // Traffic restarts the clock.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        client.write_all(b"x").await?;
        let mut one = [0u8; 1];
        upstream.read_exact(&mut one).await?;
    }
    assert!(
        bench.all_closed(Duration::from_secs(5)).await,
        "closed when idle"
    );
    let lived = started.elapsed();
    assert!(
        lived >= Duration::from_millis(560),
        "closed early: {lived:?}"
    );
    let mut rest = Vec::new();
    assert_eq!(
        client.read_to_end(&mut rest).await?,
        0,
        "client sees the close"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_multi_thread_runtime() {
    let r = run(CancellationToken::new()).map(|_| ());
    assert!(matches!(r, Err(RelayError::NotCurrentThread)), "{r:?}");
}

#[tokio::test]
async fn one_relay_per_thread() {
    let _bench = Bench::new();
    let r = run(CancellationToken::new()).map(|_| ());
    assert!(matches!(r, Err(RelayError::AlreadyRunning)), "{r:?}");
}

#[tokio::test]
async fn hard_stop_closes_every_connection() -> io::Result<()> {
    let bench = Bench::new();
    let mut peers = Vec::new();
    for _ in 0..10 {
        peers.push(bench.connect(CopyMode::Userspace, Duration::from_secs(60))?);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(bench.tracker.len(), 10);
    bench.stop.cancel();
    assert!(bench.all_closed(Duration::from_secs(5)).await);
    for (mut client, _) in peers {
        let mut rest = Vec::new();
        // Closed by the proxy: EOF or a reset, never a hang.
        let r = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "client still open after the cut");
    }
    Ok(())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn idle_splice_relays_hold_no_pipes() -> io::Result<()> {
    const N: usize = 20;
    let bench = Bench::new();
    let before = open_fds();
    let mut ends = Vec::new();
    for _ in 0..N {
        let (mut client, mut upstream) =
            bench.connect(CopyMode::Splice, Duration::from_secs(30))?;
        client.write_all(b"hello").await?;
        let mut got = [0u8; 5];
        upstream.read_exact(&mut got).await?;
        ends.push((client, upstream));
    }
    // Four sockets per relay; pipes only as many as the pool keeps, not two per relay.
    let extra = open_fds().saturating_sub(before);
    assert!(
        extra <= N * 4 + 8,
        "{extra} descriptors for {N} idle relays"
    );
    Ok(())
}

/// What an idle connection costs the proxy is, in user space, this entry; keep it small.
#[test]
fn an_idle_connection_is_a_small_entry() {
    let size = std::mem::size_of::<engine::Conn>();
    assert!(
        size <= 256,
        "a relayed connection's entry grew to {size} bytes"
    );
}
