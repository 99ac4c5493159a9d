//! Test peers for the proxy: real rustls upstreams (one self-signed certificate per
//! hostname) that parse the PROXY v2 header, a raw upstream that reports exactly which bytes
//! arrived, and blocking rustls clients that can dribble their first flight in pieces.
//! Each test binary uses a subset.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use protostar_edge::proxy_protocol::{self, Decoded};
use protostar_edge::{Config, Proxy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type Result<T> = anyhow::Result<T>;

/// Generous for a loaded two-core machine; only failures ever wait this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A hostname's identity: its own self-signed certificate and key.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Identity {
    pub fn new(names: &[&str]) -> Result<Self> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let ck = rcgen::generate_simple_self_signed(names)?;
        Ok(Self {
            cert: ck.cert.der().clone(),
            key: ck.signing_key.serialize_der(),
        })
    }

    fn server_config(&self) -> Result<Arc<ServerConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)?;
        Ok(Arc::new(cfg))
    }
}

/// A TLS upstream: reads the PROXY v2 header (if told to), completes the handshake with its
/// own certificate, writes `"<label> <client address>\n"`, then echoes.
pub struct TlsUpstream {
    pub addr: SocketAddr,
    pub cert: CertificateDer<'static>,
    pub label: String,
}

impl TlsUpstream {
    pub async fn start(label: &str, names: &[&str], proxy_protocol: bool) -> Result<Self> {
        let id = Identity::new(names)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(id.server_config()?);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let label_owned = label.to_owned();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, label) = (acceptor.clone(), label_owned.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(120),
                        serve_tls(stream, acceptor, &label, proxy_protocol),
                    )
                    .await;
                });
            }
        });
        Ok(Self {
            addr,
            cert: id.cert,
            label: label.to_owned(),
        })
    }
}

async fn serve_tls(
    mut stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    label: &str,
    pp: bool,
) -> Result<()> {
    let source = if pp {
        read_proxy_header(&mut stream).await?.to_string()
    } else {
        "-".to_owned()
    };
    let mut tls = acceptor.accept(stream).await?;
    tls.write_all(format!("{label} {source}\n").as_bytes())
        .await?;
    tls.flush().await?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        tls.write_all(buf.get(..n).unwrap_or_default()).await?;
        tls.flush().await?;
    }
    tls.shutdown().await?;
    Ok(())
}

/// Reads exactly one PROXY v2 header, never a byte past it.
pub async fn read_proxy_header(stream: &mut TcpStream) -> Result<SocketAddr> {
    let mut header = vec![0u8; 16];
    stream.read_exact(&mut header).await?;
    let block = usize::from(u16::from_be_bytes([header[14], header[15]]));
    let mut rest = vec![0u8; block];
    stream.read_exact(&mut rest).await?;
    header.extend(rest);
    match proxy_protocol::decode(&header)? {
        Decoded::Proxy { source, len, .. } if len == header.len() => Ok(source),
        other => bail!("unexpected PROXY header: {other:?}"),
    }
}

/// A raw upstream: reads the PROXY v2 header (if told to), then everything until EOF, and
/// answers `"<label> <client address> <byte count> <fnv1a>\n"`.
pub struct RawUpstream {
    pub addr: SocketAddr,
}

impl RawUpstream {
    pub async fn start(label: &str, proxy_protocol: bool) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let label = label.to_owned();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let label = label.clone();
                tokio::spawn(async move {
                    let work = async {
                        let source = if proxy_protocol {
                            read_proxy_header(&mut stream).await?.to_string()
                        } else {
                            "-".to_owned()
                        };
                        let mut got = Vec::new();
                        stream.read_to_end(&mut got).await?;
                        let reply =
                            format!("{label} {source} {} {:016x}\n", got.len(), fnv1a(&got));
                        stream.write_all(reply.as_bytes()).await?;
                        stream.shutdown().await?;
                        anyhow::Ok(())
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(60), work).await;
                });
            }
        });
        Ok(Self { addr })
    }
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Connects from `source` (any 127.0.0.0/8 address works on Linux loopback), so tests can
/// play many clients.
pub fn connect_from(source: Option<IpAddr>, to: SocketAddr) -> Result<StdTcpStream> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        None,
    )?;
    if let Some(ip) = source {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    sock.connect_timeout(&to.into(), IO_TIMEOUT)?;
    let s: StdTcpStream = sock.into();
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Sends `bytes` as separate segments cut at `splits`, pausing between them.
pub fn send_split(
    sock: &mut StdTcpStream,
    bytes: &[u8],
    splits: &[usize],
    pause: Duration,
) -> Result<()> {
    let mut at = 0;
    for &cut in splits.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(at, bytes.len());
        if cut > at {
            sock.write_all(bytes.get(at..cut).unwrap_or_default())?;
            sock.flush()?;
            if cut < bytes.len() && !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        at = cut;
    }
    Ok(())
}

#[derive(Clone, Default)]
pub struct ClientOpts {
    pub alpn: Vec<Vec<u8>>,
    pub max_fragment_size: Option<usize>,
    /// Byte offsets at which the first flight is cut into separate segments.
    pub splits: Vec<usize>,
    pub pause: Duration,
    pub source: Option<IpAddr>,
}

/// What a client saw through the proxy.
pub struct Seen {
    pub cert: CertificateDer<'static>,
    /// The upstream's first line: its label and the client address from PROXY v2.
    pub line: String,
    pub local: SocketAddr,
    pub hello_len: usize,
}

impl Seen {
    pub fn label(&self) -> &str {
        self.line.split(' ').next().unwrap_or_default()
    }
    pub fn reported_client(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or_default()
    }
}

/// An open TLS session through the proxy.
pub struct Session {
    conn: ClientConnection,
    sock: StdTcpStream,
}

impl Session {
    /// Sends `msg` and expects the upstream's echo.
    pub fn echo(&mut self, msg: &[u8]) -> Result<()> {
        let mut tls = rustls::Stream::new(&mut self.conn, &mut self.sock);
        tls.write_all(msg)?;
        let mut back = vec![0u8; msg.len()];
        tls.read_exact(&mut back)?;
        anyhow::ensure!(back == msg, "echo mismatch");
        Ok(())
    }
}

/// Opens a TLS session through the proxy with a blocking rustls client that trusts the
/// `trusted` certificates only, and reads the upstream's greeting line.
pub fn open_tls(
    proxy: SocketAddr,
    name: &str,
    trusted: &[CertificateDer<'static>],
    opts: &ClientOpts,
) -> Result<(Seen, Session)> {
    let mut roots = RootCertStore::empty();
    for c in trusted {
        roots.add(c.clone())?;
    }
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = opts.alpn.clone();
    cfg.max_fragment_size = opts.max_fragment_size;
    let server_name = ServerName::try_from(name.to_owned())?;
    let mut conn = ClientConnection::new(Arc::new(cfg), server_name)?;
    let mut sock = connect_from(opts.source, proxy)?;
    let local = sock.local_addr()?;

    let mut first_flight = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut first_flight)?;
    }
    send_split(&mut sock, &first_flight, &opts.splits, opts.pause)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .context("TLS handshake through the proxy")?;
    }
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or_else(|| anyhow!("no peer certificate"))?;
    let mut line = Vec::new();
    {
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let mut byte = [0u8; 1];
        while line.len() < 200 {
            tls.read_exact(&mut byte)?;
            if byte == *b"\n" {
                break;
            }
            line.extend(byte);
        }
    }
    let line = String::from_utf8(line)?;
    Ok((
        Seen {
            cert,
            line,
            local,
            hello_len: first_flight.len(),
        },
        Session { conn, sock },
    ))
}

/// A full TLS session through the proxy: open, check the echo both ways, close.
pub fn tls_via(
    proxy: SocketAddr,
    name: &str,
    trusted: &[CertificateDer<'static>],
    opts: &ClientOpts,
) -> Result<Seen> {
    let (seen, mut session) = open_tls(proxy, name, trusted, opts)?;
    session.echo(b"ping\n")?;
    Ok(seen)
}

/// Sends raw bytes (cut at `splits`), half-closes, and returns the raw upstream's answer.
pub fn raw_via(
    proxy: SocketAddr,
    bytes: &[u8],
    splits: &[usize],
    pause: Duration,
) -> Result<String> {
    let mut sock = connect_from(None, proxy)?;
    send_split(&mut sock, bytes, splits, pause)?;
    sock.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    sock.read_to_string(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

/// True once the proxy closes `sock` (EOF or reset) within `within`.
pub fn closed_within(sock: &mut StdTcpStream, within: Duration) -> bool {
    let _ = sock.set_read_timeout(Some(within));
    let mut buf = [0u8; 256];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return true,
            // An alert or other bytes from the proxy: keep reading until it closes.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// The usual deployment: admin and public routes with PROXY v2, admin with reserved slots.
pub fn config(admin: SocketAddr, public: SocketAddr) -> Result<Config> {
    let text = format!(
        r#"
        [[listener]]
        bind = "127.0.0.1:0"
        [admin]
        bind = "127.0.0.1:0"
        [limits]
        handshake_timeout_ms = 3000
        per_ip_max_connections = 100000
        per_ip_rate = 100000.0
        per_ip_burst = 100000.0
        [[upstream]]
        name = "admin"
        addresses = ["{admin}"]
        health = {{ interval_ms = 0 }}
        [[upstream]]
        name = "public"
        addresses = ["{public}"]
        health = {{ interval_ms = 0 }}
        [[route]]
        name = "admin"
        sni = ["admin.example.com"]
        upstream = "admin"
        proxy_protocol = true
        max_connections = 64
        reserved = 32
        [[route]]
        name = "public"
        sni = ["*.example.com"]
        upstream = "public"
        proxy_protocol = true
        "#
    );
    Ok(Config::from_toml(&text)?)
}

/// An admin and a public TLS upstream with a proxy in front.
pub struct Stack {
    pub admin: TlsUpstream,
    pub public: TlsUpstream,
    pub proxy: Proxy,
}

impl Stack {
    pub async fn start(tune: impl FnOnce(&mut Config)) -> Result<Self> {
        let admin = TlsUpstream::start("admin", &["admin.example.com"], true).await?;
        let public = TlsUpstream::start("public", &["*.example.com"], true).await?;
        let mut cfg = config(admin.addr, public.addr)?;
        tune(&mut cfg);
        let proxy = Proxy::start(cfg).await?;
        Ok(Self {
            admin,
            public,
            proxy,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.proxy
            .listen_addrs()
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn trusted(&self) -> Vec<CertificateDer<'static>> {
        vec![self.admin.cert.clone(), self.public.cert.clone()]
    }

    pub fn metrics(&self) -> Result<String> {
        scrape(
            self.proxy
                .admin_addr()
                .ok_or_else(|| anyhow!("no admin port"))?,
        )
    }
}

/// `GET /metrics` from the admin port.
pub fn scrape(admin: SocketAddr) -> Result<String> {
    let mut s = connect_from(None, admin)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

/// The value of one exact series (`name{labels}`) in a scrape, 0 if absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Runs blocking client code off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}
