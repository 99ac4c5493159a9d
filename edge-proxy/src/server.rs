//! The I/O side: listeners, the per-connection pipeline, reload and drain. Each connection
//! walks the same stages, each one able to turn it away without touching any other:
//!
//! 1. per-source gate (concurrency, rate) — before reading a byte;
//! 2. handshake gate + deadline — the ClientHello must arrive in time, oldest evicted first;
//! 3. route by SNI (or the default action);
//! 4. route admission — per-route cap, reserved slots, shared pool;
//! 5. connect to a healthy upstream, send PROXY v2 and the buffered hello;
//! 6. hand both sockets to a relay thread ([`crate::relay`]) until both sides close, the
//!    idle timeout, or the drain deadline.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clienthello::{HelloReader, Outcome, Reason};
use crate::config::{Config, ConfigError};
use crate::limits::Rejection;
use crate::limits::handshake::HandshakeGate;
use crate::limits::per_ip::{IpGuard, PerIp};
use crate::limits::routes::{Admission, RoutePermit};
use crate::metrics::Metrics;
use crate::proxy_protocol;
use crate::relay::{self, Established, Held};
use crate::runtime::{Route, Runtime};
use crate::upstream::{Group, HealthRegistry};

/// Pending connections the kernel may queue per listener; a flood overflowing a short
/// backlog would look like refusals to everyone, admin included.
const LISTEN_BACKLOG: u32 = 4096;
/// First read buffer for a hello: a post-quantum hello (~1.8 KB) fits without regrowth.
const FIRST_HELLO_CHUNK: usize = 2048;
/// How often idle per-source entries are forgotten.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// RFC 8446 §6: a fatal alert record, unrecognized_name(112) (RFC 6066 §3), sent when no
/// route takes the name, so clients report a clear error instead of a reset.
const ALERT_UNRECOGNIZED_NAME: [u8; 7] = [21, 3, 3, 0, 2, 2, 112];

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("starting worker threads: {0}")]
    Workers(io::Error),
}

struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    admission: Arc<Admission>,
    per_ip: Arc<PerIp>,
    gate: Arc<HandshakeGate>,
    health: HealthRegistry,
    health_stop: Mutex<CancellationToken>,
    metrics: Metrics,
    tracker: TaskTracker,
    accept_stop: CancellationToken,
    hard_stop: CancellationToken,
    /// Ends the worker threads (after the drain, or when the proxy is dropped).
    stopped: CancellationToken,
}

impl Shared {
    fn current(&self) -> Arc<Runtime> {
        Arc::clone(&self.runtime.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn restart_health_checks(&self, rt: &Runtime) {
        let fresh = CancellationToken::new();
        for g in &rt.groups {
            g.spawn_checks(&fresh, &self.metrics);
        }
        let old = std::mem::replace(
            &mut *self
                .health_stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            fresh,
        );
        old.cancel();
    }
}

/// A running proxy: one worker thread per core, each with its own current-thread runtime,
/// its own listening socket per listener (`SO_REUSEPORT`: the kernel spreads connections)
/// and its own relay, so a connection lives on one thread from accept to close and no
/// thread wakes another. Health checks, metrics and reloads run on the caller's runtime.
/// [`Proxy::shutdown`] drains; dropping the proxy cuts every connection at once.
pub struct Proxy {
    shared: Arc<Shared>,
    listen_addrs: Vec<SocketAddr>,
    admin_addr: Option<SocketAddr>,
}

impl Proxy {
    /// Validates the config, binds every listener (and the admin port), and starts serving.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let health = HealthRegistry::default();
        let runtime = Runtime::compile(config, &health)?;
        let mut listeners = Vec::new();
        for l in &runtime.config.listeners {
            listeners.push(bind(l.bind).map_err(|source| StartError::Bind {
                addr: l.bind,
                source,
            })?);
        }
        let admin =
            match &runtime.config.admin {
                Some(a) => Some(bind(a.bind).and_then(TcpListener::from_std).map_err(
                    |source| StartError::Bind {
                        addr: a.bind,
                        source,
                    },
                )?),
                None => None,
            };
        let listen_addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(std::net::TcpListener::local_addr)
            .collect::<io::Result<_>>()
            .map_err(StartError::Workers)?;
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        let threads = match runtime.config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // Worker 0 takes the sockets bound above; the others bind the same (now concrete)
        // addresses again, which SO_REUSEPORT allows.
        let mut per_worker = vec![listeners];
        for _ in 1..threads {
            let mut own = Vec::new();
            for addr in &listen_addrs {
                own.push(bind(*addr).map_err(|source| StartError::Bind {
                    addr: *addr,
                    source,
                })?);
            }
            per_worker.push(own);
        }

        let shared = Arc::new(Shared {
            runtime: RwLock::new(Arc::new(runtime)),
            admission: Arc::default(),
            per_ip: Arc::default(),
            gate: Arc::default(),
            health,
            health_stop: Mutex::new(CancellationToken::new()),
            metrics: Metrics::new(),
            tracker: TaskTracker::new(),
            accept_stop: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            stopped: CancellationToken::new(),
        });
        for (i, listeners) in per_worker.into_iter().enumerate() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(StartError::Workers)?;
            let own = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("edge-worker-{i}"))
                .spawn(move || worker(&rt, listeners, &own));
            if let Err(e) = spawned {
                shared.stopped.cancel();
                return Err(StartError::Workers(e));
            }
        }
        shared.restart_health_checks(&shared.current());
        if let Some(l) = admin {
            tokio::spawn(crate::admin::serve(
                l,
                shared.metrics.clone(),
                shared.hard_stop.clone(),
            ));
        }
        tokio::spawn(sweep_loop(Arc::clone(&shared)));
        Ok(Self {
            shared,
            listen_addrs,
            admin_addr,
        })
    }

    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen_addrs
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Connections being handled (handshaking or relaying).
    pub fn connections(&self) -> usize {
        self.shared.tracker.len()
    }

    /// Applies a new config to new connections. Established ones keep their route and
    /// upstream; listening sockets stay open throughout, so nothing is refused. Listener and
    /// admin addresses are fixed at start (changing them needs a restart).
    pub fn reload(&self, config: Config) -> Result<(), ConfigError> {
        let result = Runtime::compile(config, &self.shared.health);
        self.shared.metrics.reloaded(result.is_ok());
        let fresh = Arc::new(result?);
        let old = self.shared.current();
        let binds = |c: &Config| c.listeners.iter().map(|l| l.bind).collect::<Vec<_>>();
        if binds(&old.config) != binds(&fresh.config) {
            tracing::warn!("listener addresses changed; they take effect only after a restart");
        }
        self.shared.restart_health_checks(&fresh);
        *self
            .shared
            .runtime
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Stops accepting, lets connections finish for up to `deadline`, then cuts the rest.
    /// Returns how many were cut.
    pub async fn shutdown(self, deadline: Duration) -> usize {
        let s = &self.shared;
        s.accept_stop.cancel();
        s.tracker.close();
        tracing::info!(connections = s.tracker.len(), "draining");
        let cut = if tokio::time::timeout(deadline, s.tracker.wait())
            .await
            .is_ok()
        {
            0
        } else {
            let n = s.tracker.len();
            s.hard_stop.cancel();
            s.tracker.wait().await;
            n
        };
        s.hard_stop.cancel();
        s.health_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancel();
        tracing::info!(cut, "drained");
        cut
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let s = &self.shared;
        s.accept_stop.cancel();
        s.hard_stop.cancel();
        s.stopped.cancel();
        s.health_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancel();
    }
}

/// One worker thread: accepts on its own sockets, runs the handshakes of what it accepted,
/// and relays them, until the proxy stops.
fn worker(
    rt: &tokio::runtime::Runtime,
    listeners: Vec<std::net::TcpListener>,
    shared: &Arc<Shared>,
) {
    rt.block_on(async {
        // Driven by `block_on` itself rather than spawned: relayed bytes are the hot path, and
        // the runtime polls its main future straight after a wake-up, with no queueing.
        let relay = match relay::run(shared.hard_stop.clone()) {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the relay; worker stopped");
                return;
            }
        };
        for l in listeners {
            let l = mio::net::TcpListener::from_std(l);
            #[allow(unsafe_code)]
            // SAFETY: the `AsyncFd` owns the listener, which owns the descriptor and keeps it
            // open, unchanged, until the `AsyncFd` is dropped.
            let watched =
                unsafe { AsyncFd::register_with_interest(l, tokio::io::Interest::READABLE) };
            match watched.map_err(|e| e.into_parts().1) {
                Ok(l) => {
                    tokio::spawn(accept_loop(l, Arc::clone(shared)));
                }
                Err(e) => tracing::error!(error = %e, "cannot watch a listening socket"),
            }
        }
        tokio::select! {
            r = relay => if let Err(e) = r {
                tracing::error!(error = %e, "relay stopped");
            },
            () = shared.stopped.cancelled() => {}
        }
    });
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // IPv6 listeners take IPv6 only, so `0.0.0.0:443` and `[::]:443` can both be listed.
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(LISTEN_BACKLOG).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Accepts with the runtime watching the listening socket only: an accepted socket joins the
/// runtime's epoll set only if its hello has to be waited for (see [`ClientSocket`]).
async fn accept_loop(listener: AsyncFd<mio::net::TcpListener>, shared: Arc<Shared>) {
    loop {
        let mut ready = tokio::select! {
            r = listener.readable() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch a listening socket");
                    return;
                }
            },
            () = shared.accept_stop.cancelled() => return,
        };
        // `accept4` with SOCK_NONBLOCK: the socket is ready to use without another call.
        let accepted = match ready.try_io(|l| l.get_ref().accept()) {
            Ok(r) => r,
            // Drained: the readiness is cleared, wait for the next connection.
            Err(_would_block) => continue,
        };
        let (stream, peer) = match accepted {
            Ok((s, peer)) => (
                std::net::TcpStream::from(std::os::fd::OwnedFd::from(s)),
                peer,
            ),
            Err(e) => {
                // Out of descriptors or memory: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let rt = shared.current();
        match shared
            .per_ip
            .admit(peer.ip(), Instant::now(), rt.ip_limits())
        {
            Ok(guard) => {
                shared
                    .tracker
                    .spawn(handle(stream, peer, guard, rt, Arc::clone(&shared)));
            }
            Err(r) => {
                shared.metrics.rejected(r.as_str());
                tracing::debug!(%peer, reason = r.as_str(), "rejected at accept");
            }
        }
    }
}

async fn sweep_loop(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            () = shared.hard_stop.cancelled() => return,
        }
        shared
            .per_ip
            .sweep(Instant::now(), shared.current().ip_limits());
    }
}

/// Why a connection ended before relaying; for logs and metrics.
enum Refused {
    Hello(Reason),
    Limit(Rejection),
    /// The client closed or reset before finishing its hello.
    Gone,
}

async fn handle(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    ip: IpGuard,
    rt: Arc<Runtime>,
    shared: Arc<Shared>,
) {
    let m = &shared.metrics;
    let mut stream = ClientSocket::Raw(stream);
    match serve(&mut stream, peer, &rt, &shared).await {
        Ok(ready) => hand_off(stream, ready, peer, ip, &rt, &shared),
        Err(Refused::Hello(reason)) => {
            m.hello_error(reason.as_str());
            tracing::debug!(%peer, reason = reason.as_str(), "ClientHello rejected");
        }
        Err(Refused::Limit(r)) => {
            m.rejected(r.as_str());
            if r == Rejection::NoRoute {
                let _ = stream.try_write(&ALERT_UNRECOGNIZED_NAME);
            }
            tracing::debug!(%peer, reason = r.as_str(), "connection refused");
        }
        Err(Refused::Gone) => {}
    }
}

/// The client's socket during the handshake. It stays out of the async runtime while its
/// hello arrives whole by the time it is accepted, the usual case (a client sends the hello
/// right behind the handshake's last ACK): the relay takes it without the runtime ever having
/// registered it. Only a hello that must be waited for makes the runtime watch the socket,
/// which costs two `epoll_ctl` calls (register, and deregister at the hand-off).
enum ClientSocket {
    Raw(std::net::TcpStream),
    Watched(TcpStream),
    /// Only while moving from the first to the second, or when that move failed.
    Gone,
}

impl ClientSocket {
    /// Reads what is there without waiting, into `buf`'s spare capacity.
    fn try_read(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Self::Raw(s) => {
                let old = buf.len();
                buf.resize(buf.capacity(), 0);
                let r = (&*s).read(buf.get_mut(old..).unwrap_or_default());
                buf.truncate(old + *r.as_ref().unwrap_or(&0));
                r
            }
            Self::Watched(s) => s.try_read_buf(buf),
            Self::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Waits until the socket may have more to read, handing it to the runtime first if it
    /// is not watched yet.
    async fn readable(&mut self) -> io::Result<()> {
        if let Self::Raw(_) = self
            && let Self::Raw(s) = std::mem::replace(self, Self::Gone)
        {
            *self = Self::Watched(TcpStream::from_std(s)?);
        }
        match self {
            Self::Watched(s) => s.readable().await,
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Raw(s) => s.local_addr(),
            Self::Watched(s) => s.local_addr(),
            Self::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes what fits now, for the one-record alert a refused client gets.
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Raw(s) => (&*s).write(data),
            Self::Watched(s) => s.try_write(data),
            Self::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Self::Raw(s) => s.set_nodelay(true),
            Self::Watched(s) => s.set_nodelay(true),
            Self::Gone => Ok(()),
        }
    }

    fn into_std(self) -> io::Result<std::net::TcpStream> {
        match self {
            Self::Raw(s) => Ok(s),
            Self::Watched(s) => s.into_std(),
            Self::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// A routed connection whose upstream has the hello: all that is left is relaying.
struct Ready {
    upstream: TcpStream,
    route: Arc<Route>,
    permit: RoutePermit,
}

async fn serve(
    stream: &mut ClientSocket,
    peer: SocketAddr,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Ready, Refused> {
    let limits = &rt.config.limits;
    let _ = stream.set_nodelay();

    let (ticket, evicted) = shared.gate.enter(limits.max_handshakes);
    for _ in 0..evicted {
        shared
            .metrics
            .rejected(Rejection::HandshakeEvicted.as_str());
    }
    shared.metrics.set_handshakes(shared.gate.pending());
    let hello = async {
        tokio::select! {
            r = tokio::time::timeout(limits.handshake_timeout(), read_hello(&mut *stream, limits.max_hello_bytes)) => match r {
                Ok(r) => r,
                Err(_) => Err(Refused::Limit(Rejection::HandshakeTimeout)),
            },
            // Already counted by `enter` in the connection that pushed this one out.
            () = ticket.evicted() => Err(Refused::Gone),
            () = shared.hard_stop.cancelled() => Err(Refused::Gone),
        }
    }
    .await;
    drop(ticket);
    shared.metrics.set_handshakes(shared.gate.pending());
    let (buffered, sni) = hello?;

    let route = rt
        .route_for(sni.as_deref())
        .ok_or(Refused::Limit(Rejection::NoRoute))?;
    let permit = shared
        .admission
        .acquire(&route.name, route.limits, limits.max_connections)
        .ok_or(Refused::Limit(Rejection::RouteFull))?;
    let upstream = connect(&route.group, limits.connect_timeout())
        .await
        .ok_or(Refused::Limit(Rejection::UpstreamUnavailable))?;
    let _ = upstream.set_nodelay(true);

    let mut preamble = if route.proxy_protocol {
        let local = stream.local_addr().map_err(|_| Refused::Gone)?;
        proxy_protocol::encode(peer, local)
    } else {
        Vec::new()
    };
    preamble.extend_from_slice(&buffered);
    drop(buffered);
    write_all(&upstream, &preamble)
        .await
        .map_err(|_| Refused::Gone)?;
    Ok(Ready {
        upstream,
        route: Arc::clone(route),
        permit,
    })
}

/// Moves the connection out of the async runtime onto a relay thread, with everything it
/// holds (its limit slots, its place in the drain).
fn hand_off(
    client: ClientSocket,
    ready: Ready,
    peer: SocketAddr,
    ip: IpGuard,
    rt: &Runtime,
    shared: &Shared,
) {
    if shared.hard_stop.is_cancelled() {
        return;
    }
    let (client, upstream) = match (client.into_std(), ready.upstream.into_std()) {
        (Ok(c), Ok(u)) => (c, u),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(%peer, error = %e, "could not hand the connection over");
            return;
        }
    };
    let meters = shared.metrics.connection_opened(&ready.route.name);
    relay::hand_off(Established {
        client,
        upstream,
        peer,
        mode: rt.config.copy,
        idle: rt.config.limits.idle_timeout(),
        route: ready.route,
        meters,
        held: Held {
            route: Some(ready.permit),
            source: Some(ip),
            drain: shared.tracker.token(),
        },
    });
}

/// Reads until the ClientHello is decided. The buffer grows only as bytes arrive, doubling
/// from a small start and never past the cap. The first read is tried at once: the hello is
/// usually there already.
async fn read_hello(
    stream: &mut ClientSocket,
    limit: usize,
) -> Result<(Vec<u8>, Option<String>), Refused> {
    let mut reader = HelloReader::new(limit);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if buf.len() == buf.capacity() {
            let room = limit.saturating_sub(buf.len());
            buf.reserve_exact(buf.len().max(FIRST_HELLO_CHUNK).min(room).max(1));
        }
        match stream.try_read(&mut buf) {
            Ok(0) => return Err(Refused::Gone),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stream.readable().await.map_err(|_| Refused::Gone)?;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Refused::Gone),
        }
        match reader.advance(&buf) {
            Outcome::NeedMore => {}
            Outcome::Done(hello) => return Ok((buf, Some(hello.sni))),
            // Complete and well-formed, just nameless: the default action decides.
            Outcome::Reject(Reason::NoSni) => return Ok((buf, None)),
            Outcome::Reject(reason) => return Err(Refused::Hello(reason)),
        }
    }
}

async fn connect(group: &Group, timeout: Duration) -> Option<TcpStream> {
    for addr in group.candidates() {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Some(s),
            Ok(Err(e)) => {
                tracing::debug!(upstream = %group.name, %addr, error = %e, "connect failed")
            }
            Err(_) => tracing::debug!(upstream = %group.name, %addr, "connect timed out"),
        }
    }
    None
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
