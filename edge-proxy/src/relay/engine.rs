//! The relay of one worker thread: an edge-triggered epoll set over a slab of connections,
//! driven as one task of that thread's (current-thread) async runtime. The epoll descriptor
//! is itself watched by the runtime, so handshakes and relaying share one thread and one
//! wait, and a hand-off is a function call: no channel, no wake-up of another thread.
//!
//! An idle connection here is one slab entry (a few hundred bytes, see the size test) and two
//! epoll registrations in the kernel; the async runtime would add a task, a timer and two
//! readiness records per connection, several times that (docs/benchmarks.md, "Edge proxy").
//! Idle timeouts are checked by a periodic sweep instead of a timer per connection.

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio_util::sync::CancellationToken;

use super::half::{Half, Tools};
use super::{Established, Held};
use crate::config::CopyMode;
use crate::metrics::RouteMeters;
use crate::runtime::Route;

/// Longest wait between idle sweeps; shorter when a connection's idle timeout is short.
const MAX_SWEEP: Duration = Duration::from_secs(1);
const MIN_SWEEP: Duration = Duration::from_millis(10);
/// Events taken per epoll_wait.
const EVENTS: usize = 1024;

const CLIENT: usize = 0;
const UPSTREAM: usize = 1;

thread_local! {
    /// This thread's relay, while [`run`] is running on it.
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the relay must run on a current-thread runtime (its connections are per thread)")]
    NotCurrentThread,
    #[error("a relay is already running on this thread")]
    AlreadyRunning,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An established connection as the engine keeps it.
pub(super) struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    client_readable: bool,
    client_writable: bool,
    upstream_readable: bool,
    upstream_writable: bool,
    /// The peer's FIN or an error was reported: read until the socket says so.
    client_closed: bool,
    upstream_closed: bool,
    /// Of those, a FIN without an error (EPOLLRDHUP or EPOLLHUP, no EPOLLERR).
    client_fin: bool,
    upstream_fin: bool,
    mode: CopyMode,
    up: Half,
    down: Half,
    /// Milliseconds since the engine started.
    last_active: u64,
    started: u64,
    idle_ms: u64,
    peer: std::net::SocketAddr,
    route: std::sync::Arc<Route>,
    meters: RouteMeters,
    /// Released when the entry is dropped.
    _held: Held,
}

enum End {
    Done,
    Idle,
    Cut,
    Failed(io::Error),
}

struct Engine {
    /// Registers new connections on the epoll set that [`run`] waits on.
    registry: Registry,
    conns: Slab<Conn>,
    tools: Tools,
    epoch: Instant,
    now: u64,
    sweep_every: Duration,
    next_sweep: Instant,
    /// Connections that stopped with bytes still to read (fairness cap), for the next turn.
    again: Vec<usize>,
    /// The drain deadline passed: connections handed over from now on are closed at once.
    cut: bool,
}

/// Installs this thread's relay now and returns the task that drives it, to spawn on this
/// thread's runtime: it relays the connections handed off on this thread until it is
/// dropped; at `hard_stop` every connection is closed and later ones as they arrive.
pub fn run(
    hard_stop: CancellationToken,
) -> Result<impl Future<Output = Result<(), RelayError>> + Send, RelayError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if !Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread) {
        return Err(RelayError::NotCurrentThread);
    }
    let poll = Poll::new()?;
    let registry = poll.registry().try_clone()?;
    // The runtime waits on the epoll descriptor itself: it turns readable when any
    // connection in the set has an event.
    #[allow(unsafe_code)]
    // SAFETY: the `AsyncFd` owns the `Poll`, which owns the descriptor and keeps it open,
    // unchanged, until the `AsyncFd` is dropped.
    let watch = unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    let installed = ENGINE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_some() {
            return false;
        }
        *cell = Some(Engine::new(registry));
        true
    });
    if !installed {
        return Err(RelayError::AlreadyRunning);
    }
    // Uninstalls (closing every connection) however the task ends, dropped included.
    let uninstall = Uninstall(Some(watch));
    Ok(drive(uninstall, hard_stop))
}

async fn drive(mut uninstall: Uninstall, hard_stop: CancellationToken) -> Result<(), RelayError> {
    let Some(watch) = &mut uninstall.0 else {
        return Ok(());
    };
    let mut events = Events::with_capacity(EVENTS);
    let mut stopping = false;
    // Made once, not per wake-up: each would register with the timer and the token again.
    let sweep = tokio::time::sleep(MAX_SWEEP);
    let cancelled = hard_stop.cancelled();
    tokio::pin!(sweep, cancelled);
    loop {
        let (next_sweep, busy) = with_engine(|e| (e.next_sweep, !e.again.is_empty()))
            .unwrap_or((Instant::now() + MAX_SWEEP, false));
        if busy {
            // A transfer stopped at its fair share with bytes still waiting. Let the thread's
            // handshakes run, then give every connection a turn: the ready ones in the epoll
            // set as well as the waiting ones, and the idle sweep when due, so no amount of
            // bulk traffic starves the rest.
            tokio::task::yield_now().await;
            if hard_stop.is_cancelled() && !stopping {
                stopping = true;
                with_engine(Engine::cut);
            }
            with_engine(|e| {
                e.now = e.millis();
                for key in std::mem::take(&mut e.again) {
                    e.turn(key);
                }
            });
            with_engine(|e| e.events(watch.get_mut(), &mut events)).transpose()?;
            if Instant::now() >= next_sweep {
                with_engine(Engine::sweep);
            }
            continue;
        }
        let deadline = tokio::time::Instant::from_std(next_sweep);
        if sweep.deadline() != deadline {
            sweep.as_mut().reset(deadline);
        }
        tokio::select! {
            ready = watch.readable_mut() => {
                let mut guard = ready?;
                let drained = with_engine(|e| e.events(guard.get_inner_mut(), &mut events)).transpose()?;
                // Fewer events than room: the set is empty now, wait for the next edge.
                if drained.is_none_or(|n| n < EVENTS) {
                    guard.clear_ready();
                }
            }
            () = &mut sweep => {
                with_engine(Engine::sweep);
            }
            () = &mut cancelled, if !stopping => {
                stopping = true;
                with_engine(Engine::cut);
            }
        }
    }
}

/// Takes the engine off the thread however [`run`] ends, closing its connections.
struct Uninstall(Option<AsyncFd<Poll>>);

impl Drop for Uninstall {
    fn drop(&mut self) {
        drop(self.0.take());
        if let Ok(Some(mut engine)) = ENGINE.try_with(|cell| cell.borrow_mut().take()) {
            engine.close_all();
        }
    }
}

fn with_engine<T>(f: impl FnOnce(&mut Engine) -> T) -> Option<T> {
    ENGINE
        .try_with(|cell| cell.try_borrow_mut().ok()?.as_mut().map(f))
        .ok()
        .flatten()
}

/// Gives a connection to the relay of the current thread (see [`run`]). Without one (the
/// thread runs none), the connection is closed and its slots freed.
pub fn hand_off(e: Established) {
    let mut rest = Some(e);
    with_engine(|engine| {
        if let Some(e) = rest.take() {
            engine.add(e);
        }
    });
    if let Some(e) = rest {
        e.meters.closed();
        tracing::error!("no relay on this thread; connection closed");
    }
}

impl Engine {
    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn new(registry: Registry) -> Self {
        let epoch = Instant::now();
        Self {
            registry,
            conns: Slab::new(),
            tools: Tools::new(),
            epoch,
            now: 0,
            sweep_every: MAX_SWEEP,
            next_sweep: epoch + MAX_SWEEP,
            again: Vec::new(),
            cut: false,
        }
    }

    /// Takes what epoll has ready (without waiting) and moves bytes; returns how many events.
    fn events(&mut self, poll: &mut Poll, events: &mut Events) -> io::Result<usize> {
        match poll.poll(events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(EVENTS),
            Err(e) => return Err(e),
        }
        self.now = self.millis();
        let mut n = 0;
        for event in events.iter() {
            n += 1;
            let key = event.token().0 / 2;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            // Errors and hang-ups count as readiness: the next syscall reports them.
            let closed = event.is_read_closed() || event.is_error();
            let fin = event.is_read_closed() && !event.is_error();
            let readable = event.is_readable() || closed;
            let writable = event.is_writable() || event.is_write_closed() || event.is_error();
            if event.token().0 % 2 == CLIENT {
                conn.client_readable |= readable;
                conn.client_writable |= writable;
                conn.client_closed |= closed;
                conn.client_fin |= fin;
            } else {
                conn.upstream_readable |= readable;
                conn.upstream_writable |= writable;
                conn.upstream_closed |= closed;
                conn.upstream_fin |= fin;
            }
            self.turn(key);
        }
        Ok(n)
    }

    fn add(&mut self, e: Established) {
        if self.cut {
            e.meters.closed();
            return;
        }
        self.now = self.millis();
        let idle = e
            .idle
            .clamp(Duration::from_millis(1), Duration::from_secs(86_400 * 365));
        let every = (idle / 8).clamp(MIN_SWEEP, MAX_SWEEP);
        if every < self.sweep_every {
            self.sweep_every = every;
            self.next_sweep = self.next_sweep.min(Instant::now() + every);
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut conn = Conn {
            client: TcpStream::from_std(e.client),
            upstream: TcpStream::from_std(e.upstream),
            client_readable: false,
            client_writable: false,
            upstream_readable: false,
            upstream_writable: false,
            client_closed: false,
            upstream_closed: false,
            client_fin: false,
            upstream_fin: false,
            mode: e.mode,
            up: Half::new(),
            down: Half::new(),
            last_active: self.now,
            started: self.now,
            idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
            peer: e.peer,
            route: e.route,
            meters: e.meters,
            _held: e.held,
        };
        // Registering reports readiness that is already there, so bytes that arrived during
        // the hand-off are picked up by the first poll.
        let both = Interest::READABLE | Interest::WRITABLE;
        let registry = &self.registry;
        let registered = registry
            .register(&mut conn.client, Token(key * 2 + CLIENT), both)
            .and_then(|()| registry.register(&mut conn.upstream, Token(key * 2 + UPSTREAM), both));
        match registered {
            Ok(()) => {
                entry.insert(conn);
            }
            Err(err) => log_end(&conn, self.now, &End::Failed(err)),
        }
    }

    fn turn(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let up = c.up.turn(
            c.mode,
            &c.client,
            &mut c.client_readable,
            c.client_closed,
            c.client_fin,
            &c.upstream,
            &mut c.upstream_writable,
            c.down.done,
            &c.meters.client_to_upstream,
            &mut self.tools,
        );
        let down = up.and_then(|up| {
            c.down
                .turn(
                    c.mode,
                    &c.upstream,
                    &mut c.upstream_readable,
                    c.upstream_closed,
                    c.upstream_fin,
                    &c.client,
                    &mut c.client_writable,
                    c.up.done,
                    &c.meters.upstream_to_client,
                    &mut self.tools,
                )
                .map(|down| (up, down))
        });
        match down {
            Ok((up, down)) => {
                if up.moved || down.moved {
                    c.last_active = self.now;
                }
                if c.up.done && c.down.done {
                    self.close(key, End::Done);
                } else if up.more || down.more {
                    self.again.push(key);
                }
            }
            Err(e) => self.close(key, End::Failed(e)),
        }
    }

    fn sweep(&mut self) {
        let now = self.millis();
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| now.saturating_sub(c.last_active) >= c.idle_ms)
            .map(|(key, _)| key)
            .collect();
        self.now = now;
        for key in expired {
            self.close(key, End::Idle);
        }
        self.next_sweep = Instant::now() + self.sweep_every;
    }

    fn close(&mut self, key: usize, end: End) {
        if let Some(conn) = self.conns.try_remove(key) {
            log_end(&conn, self.now, &end);
        }
    }

    /// The drain deadline: closes every connection, and any handed over later.
    fn cut(&mut self) {
        self.cut = true;
        self.close_all();
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, End::Cut);
        }
    }
}

/// Metrics and the connection's last log line; the sockets close when `conn` drops.
fn log_end(conn: &Conn, now: u64, end: &End) {
    conn.meters.closed();
    let (peer, route) = (conn.peer, conn.route.name.as_str());
    let ms = now.saturating_sub(conn.started);
    let (up, down) = (conn.up.total, conn.down.total);
    match end {
        End::Done => tracing::debug!(%peer, route, ms, up, down, "closed"),
        End::Idle => tracing::debug!(%peer, route, ms, up, down, "idle timeout"),
        End::Cut => tracing::debug!(%peer, route, ms, up, down, "cut at drain deadline"),
        End::Failed(e) => {
            tracing::debug!(%peer, route, ms, up, down, error = %e, "closed on error")
        }
    }
}
