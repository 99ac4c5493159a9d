//! The copy loop of an established connection: both directions at once, half-close passed
//! through (EOF on one side becomes a write shutdown on the other, the opposite direction
//! keeps flowing), and an idle timeout covering both directions.
//!
//! Two ways to move bytes, chosen by config and measured in `docs/benchmarks.md`:
//! - userspace: one per-thread scratch buffer; a connection holds heap memory only while the
//!   receiver is slower than the sender, so ten thousand idle connections cost no buffers.
//! - splice(2): socket → pipe → socket inside the kernel; costs a pipe (two descriptors and a
//!   kernel buffer) per direction per connection.

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::CopyMode;

/// Userspace scratch size: large enough that bulk transfers take few syscalls.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Bytes asked of one splice(2) call; the default pipe holds 16 pages (64 KiB on x86-64).
const SPLICE_CHUNK: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
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
pub async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    mode: CopyMode,
    idle: Duration,
    counters: &ByteCounters,
) -> Result<Totals, RelayError> {
    let activity = Activity::new();
    let up = pump(
        client,
        upstream,
        mode,
        &activity,
        &counters.client_to_upstream,
    );
    let down = pump(
        upstream,
        client,
        mode,
        &activity,
        &counters.upstream_to_client,
    );
    tokio::select! {
        r = async { tokio::try_join!(up, down) } => {
            let (client_to_upstream, upstream_to_client) = r?;
            Ok(Totals { client_to_upstream, upstream_to_client })
        }
        () = activity.idle_for(idle) => Err(RelayError::Idle),
    }
}

async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    mode: CopyMode,
    activity: &Activity,
    counter: &Counter,
) -> io::Result<u64> {
    let total = match mode {
        CopyMode::Userspace => pump_userspace(src, dst, activity, counter).await?,
        CopyMode::Splice => pump_splice(src, dst, activity, counter).await?,
    };
    // Pass the half-close on: the peer sees EOF, and may still answer the other way.
    match socket2::SockRef::from(dst).shutdown(Shutdown::Write) {
        Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
        _ => Ok(total),
    }
}

enum Step {
    Eof,
    Again,
    Moved(usize),
}

async fn pump_userspace(
    src: &TcpStream,
    dst: &TcpStream,
    activity: &Activity,
    counter: &Counter,
) -> io::Result<u64> {
    let mut total = 0u64;
    // Bytes read but not yet accepted by a slow receiver: the only per-connection buffer.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        while !pending.is_empty() {
            dst.writable().await?;
            match dst.try_write(&pending) {
                Ok(n) => {
                    pending.drain(..n.min(pending.len()));
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        pending = Vec::new();
        src.readable().await?;
        let step = SCRATCH.with(|scratch| -> io::Result<Step> {
            let mut scratch = scratch.borrow_mut();
            let n = match src.try_read(&mut scratch[..]) {
                Ok(0) => return Ok(Step::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Again),
                Err(e) => return Err(e),
            };
            let data = scratch.get(..n).unwrap_or_default();
            // Most of the time the receiver takes it all at once and nothing is kept.
            let written = match dst.try_write(data) {
                Ok(w) => w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            pending.extend_from_slice(data.get(written..).unwrap_or_default());
            Ok(Step::Moved(n))
        })?;
        match step {
            Step::Eof => return Ok(total),
            Step::Again => {}
            Step::Moved(n) => {
                activity.touch();
                total += n as u64;
                counter.inc_by(n as u64);
            }
        }
    }
}

async fn pump_splice(
    src: &TcpStream,
    dst: &TcpStream,
    activity: &Activity,
    counter: &Counter,
) -> io::Result<u64> {
    use nix::fcntl::{OFlag, SpliceFFlags, splice};
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut total = 0u64;
    // Created on first data, so a connection that never speaks costs no pipe.
    let mut pipe = None;
    loop {
        src.readable().await?;
        let (pipe_r, pipe_w) = match &pipe {
            Some(p) => p,
            None => pipe.insert(
                nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
                    .map_err(io::Error::from)?,
            ),
        };
        let read = src.try_io(Interest::READABLE, || {
            splice(src, None, &*pipe_w, None, SPLICE_CHUNK, flags).map_err(io::Error::from)
        });
        let mut in_pipe = match read {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        activity.touch();
        total += in_pipe as u64;
        counter.inc_by(in_pipe as u64);
        while in_pipe > 0 {
            dst.writable().await?;
            let wrote = dst.try_io(Interest::WRITABLE, || {
                splice(&*pipe_r, None, dst, None, in_pipe, flags).map_err(io::Error::from)
            });
            match wrote {
                Ok(n) => {
                    in_pipe = in_pipe.saturating_sub(n);
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Last time any byte moved, shared by both directions.
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline =
                self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
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
}
