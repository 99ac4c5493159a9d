//! The copy loop of an established connection: both directions at once, half-close passed
//! through (EOF on one side becomes a write shutdown on the other, the opposite direction
//! keeps flowing), and one idle timeout covering both directions.
//!
//! It is a hand-written future rather than `async` blocks because its size is what an idle
//! connection costs: nested readiness and timer futures made every connection several
//! kilobytes, this state machine is a few hundred bytes. Readiness comes from
//! `poll_read_ready` / `poll_write_ready`, which need no stored future.
//!
//! Two ways to move bytes, chosen by config and measured in `docs/benchmarks.md`:
//! - userspace: one per-thread scratch buffer; a connection holds heap memory only while its
//!   receiver is slower than its sender, so idle connections cost no buffers.
//! - splice(2): socket → pipe → socket inside the kernel. Pipes come from a per-thread pool
//!   and go back as soon as a direction goes quiet, so idle connections hold no pipes (and
//!   no extra descriptors) either.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::config::CopyMode;

/// Userspace scratch size: large enough that bulk transfers take few syscalls.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Bytes asked of one splice(2) call; a default pipe holds 16 pages (64 KiB on x86-64).
const SPLICE_CHUNK: usize = 64 * 1024;
/// Idle pipes kept per worker thread for reuse; beyond this they are closed.
const PIPE_POOL_MAX: usize = 64;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("idle for longer than the idle timeout")]
    Idle,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Bytes moved in each direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub client_to_upstream: u64,
    pub upstream_to_client: u64,
}

/// Counters to feed as bytes move.
#[derive(Debug, Clone)]
pub struct ByteCounters {
    pub client_to_upstream: Counter,
    pub upstream_to_client: Counter,
}

/// Relays until both directions reach EOF, either side errors, or nothing moves for `idle`.
pub fn relay<'a>(
    client: &'a TcpStream,
    upstream: &'a TcpStream,
    mode: CopyMode,
    idle: Duration,
    counters: &'a ByteCounters,
) -> Relay<'a> {
    Relay {
        client,
        upstream,
        up: Half::new(mode),
        down: Half::new(mode),
        counters,
        idle,
        last_activity: Instant::now(),
        timer: None,
    }
}

/// The future returned by [`relay`].
#[must_use = "futures do nothing unless polled"]
pub struct Relay<'a> {
    client: &'a TcpStream,
    upstream: &'a TcpStream,
    up: Half,
    down: Half,
    counters: &'a ByteCounters,
    idle: Duration,
    last_activity: Instant,
    /// Armed lazily, and only re-armed when it fires: moving bytes costs no timer updates.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Future for Relay<'_> {
    type Output = Result<Totals, RelayError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut moved = false;
        if let Poll::Ready(r) = this.up.poll(
            this.client,
            this.upstream,
            &this.counters.client_to_upstream,
            &mut moved,
            cx,
        ) {
            r?;
        }
        if let Poll::Ready(r) = this.down.poll(
            this.upstream,
            this.client,
            &this.counters.upstream_to_client,
            &mut moved,
            cx,
        ) {
            r?;
        }
        if this.up.done && this.down.done {
            return Poll::Ready(Ok(Totals {
                client_to_upstream: this.up.total,
                upstream_to_client: this.down.total,
            }));
        }
        if moved {
            this.last_activity = Instant::now();
        }
        let deadline = this.last_activity + this.idle;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        while timer.as_mut().poll(cx).is_ready() {
            let deadline = this.last_activity + this.idle;
            if Instant::now() >= deadline {
                return Poll::Ready(Err(RelayError::Idle));
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

/// One direction's state.
struct Half {
    mode: CopyMode,
    /// Read but not yet written (userspace): only non-empty while the receiver is slow.
    pending: Vec<u8>,
    /// Bytes sitting in `pipe` (splice).
    in_pipe: usize,
    pipe: Option<Pipe>,
    total: u64,
    /// EOF seen and passed on.
    done: bool,
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Half {
    fn new(mode: CopyMode) -> Self {
        Self {
            mode,
            pending: Vec::new(),
            in_pipe: 0,
            pipe: None,
            total: 0,
            done: false,
        }
    }

    /// Moves bytes until blocked (Pending, wakers registered), EOF (Ready(Ok)) or error.
    fn poll(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        counter: &Counter,
        moved: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        let r = match self.mode {
            CopyMode::Userspace => self.poll_userspace(src, dst, counter, moved, cx),
            CopyMode::Splice => self.poll_splice(src, dst, counter, moved, cx),
        };
        if let Poll::Ready(Ok(())) = r {
            self.done = true;
            // Pass the half-close on: the peer sees EOF and may still answer the other way.
            if let Err(e) = socket2::SockRef::from(dst).shutdown(Shutdown::Write)
                && e.kind() != io::ErrorKind::NotConnected
            {
                return Poll::Ready(Err(e));
            }
        }
        r
    }

    fn count(&mut self, n: usize, counter: &Counter, moved: &mut bool) {
        self.total += n as u64;
        counter.inc_by(n as u64);
        *moved = true;
    }

    fn poll_userspace(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        counter: &Counter,
        moved: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            while !self.pending.is_empty() {
                ready!(dst.poll_write_ready(cx))?;
                match dst.try_write(&self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n.min(self.pending.len()));
                        *moved = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if self.pending.capacity() > 0 {
                self.pending = Vec::new();
            }
            ready!(src.poll_read_ready(cx))?;
            let pending = &mut self.pending;
            let step = SCRATCH.with(|scratch| -> io::Result<Option<usize>> {
                let mut scratch = scratch.borrow_mut();
                let n = match src.try_read(&mut scratch[..]) {
                    Ok(0) => return Ok(None),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(0)),
                    Err(e) => return Err(e),
                };
                let data = scratch.get(..n).unwrap_or_default();
                // Usually the receiver takes it all at once and nothing is kept.
                let written = match dst.try_write(data) {
                    Ok(w) => w,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) => return Err(e),
                };
                pending.extend_from_slice(data.get(written..).unwrap_or_default());
                Ok(Some(n))
            })?;
            match step {
                None => return Poll::Ready(Ok(())),
                Some(0) => {}
                Some(n) => self.count(n, counter, moved),
            }
        }
    }

    fn poll_splice(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        counter: &Counter,
        moved: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        use nix::fcntl::{SpliceFFlags, splice};
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        loop {
            while self.in_pipe > 0 {
                let Some(pipe) = &self.pipe else {
                    self.in_pipe = 0;
                    break;
                };
                ready!(dst.poll_write_ready(cx))?;
                let wrote = dst.try_io(Interest::WRITABLE, || {
                    splice(&pipe.read, None, dst, None, self.in_pipe, flags)
                        .map_err(io::Error::from)
                });
                match wrote {
                    Ok(n) => {
                        self.in_pipe = self.in_pipe.saturating_sub(n);
                        *moved = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            ready!(src.poll_read_ready(cx))?;
            let pipe = match self.pipe.take() {
                Some(p) => p,
                None => take_pipe()?,
            };
            let read = src.try_io(Interest::READABLE, || {
                splice(src, None, &pipe.write, None, SPLICE_CHUNK, flags).map_err(io::Error::from)
            });
            match read {
                Ok(0) => {
                    give_back_pipe(pipe);
                    return Poll::Ready(Ok(()));
                }
                Ok(n) => {
                    self.pipe = Some(pipe);
                    self.in_pipe = n;
                    self.count(n, counter, moved);
                }
                // Quiet for now: the (empty) pipe goes back to the pool.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => give_back_pipe(pipe),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

fn take_pipe() -> io::Result<Pipe> {
    use nix::fcntl::OFlag;
    if let Some(p) = PIPES.with(|pool| pool.borrow_mut().pop()) {
        return Ok(p);
    }
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    Ok(Pipe { read, write })
}

/// Only ever called with an empty pipe.
fn give_back_pipe(pipe: Pipe) {
    PIPES.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < PIPE_POOL_MAX {
            pool.push(pipe);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Two connected socket pairs: (client side, proxy side) and (proxy side, upstream side).
    async fn pairs() -> io::Result<(TcpStream, TcpStream, TcpStream, TcpStream)> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
        let (c, d) = tokio::join!(TcpStream::connect(addr), l.accept());
        Ok((a?, b?.0, c?, d?.0))
    }

    fn counters() -> ByteCounters {
        ByteCounters {
            client_to_upstream: Counter::default(),
            upstream_to_client: Counter::default(),
        }
    }

    async fn half_close_round_trip(mode: CopyMode) -> io::Result<()> {
        let (mut client, proxy_client, proxy_up, mut upstream) = pairs().await?;
        let c = counters();
        let relay_task =
            async { relay(&proxy_client, &proxy_up, mode, Duration::from_secs(10), &c).await };
        let peers = async {
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
            io::Result::Ok(())
        };
        let (totals, peers) = tokio::join!(relay_task, peers);
        peers?;
        let totals = totals.map_err(io::Error::other)?;
        assert_eq!(
            totals,
            Totals {
                client_to_upstream: 300_000,
                upstream_to_client: 22
            }
        );
        assert_eq!(c.client_to_upstream.get(), 300_000);
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

    #[tokio::test]
    async fn idle_connections_time_out() -> io::Result<()> {
        let (_client, proxy_client, proxy_up, _upstream) = pairs().await?;
        let started = std::time::Instant::now();
        let r = relay(
            &proxy_client,
            &proxy_up,
            CopyMode::Userspace,
            Duration::from_millis(200),
            &counters(),
        )
        .await;
        assert!(matches!(r, Err(RelayError::Idle)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
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
        let before = open_fds();
        let mut ends = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..N {
            let (mut client, proxy_client, proxy_up, mut upstream) = pairs().await?;
            tasks.push(tokio::spawn(async move {
                let c = counters();
                let _ = relay(
                    &proxy_client,
                    &proxy_up,
                    CopyMode::Splice,
                    Duration::from_secs(30),
                    &c,
                )
                .await;
            }));
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
        drop(ends);
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    }
}
