//! ClientHellos in every shape real clients send are routed: split at every byte boundary,
//! split across TLS records, post-quantum-sized, and 20 KB large.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use protostar_edge::Proxy;
use protostar_edge::clienthello::synth::{HelloSpec, long_alpn};

/// Runs `f(i)` for every `i` in `items` on a few threads, failing on the first error.
fn in_parallel<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(threads).max(1))
            .map(|chunk| s.spawn(|| chunk.iter().try_for_each(&f)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| anyhow::anyhow!("worker panicked"))?)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_hello_split_at_every_byte_boundary_is_routed() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let (addr, trusted, want) = (stack.addr(), stack.trusted(), stack.public.cert.clone());
    blocking(move || {
        let len = tls_via(addr, "www.example.com", &trusted, &ClientOpts::default())?.hello_len;
        assert!(
            len > 100,
            "a rustls hello is a few hundred bytes, got {len}"
        );
        let cuts: Vec<usize> = (1..len).collect();
        in_parallel(&cuts, 4, |&cut| {
            let opts = ClientOpts {
                splits: vec![cut],
                pause: Duration::from_millis(2),
                ..ClientOpts::default()
            };
            let seen = tls_via(addr, "www.example.com", &trusted, &opts)
                .map_err(|e| e.context(format!("split at {cut}")))?;
            anyhow::ensure!(
                seen.cert == want,
                "split at {cut} reached the wrong upstream"
            );
            Ok(())
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_hello_across_many_records_and_segments_is_routed() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let (addr, trusted, want) = (stack.addr(), stack.trusted(), stack.admin.cert.clone());
    blocking(move || {
        // 64-byte records: the hello spans several records, and record headers land inside
        // the SNI extension.
        let opts = ClientOpts {
            max_fragment_size: Some(64),
            ..ClientOpts::default()
        };
        let seen = tls_via(addr, "admin.example.com", &trusted, &opts)?;
        assert_eq!(seen.cert, want);
        let len = seen.hello_len;
        // The same, one byte per TCP segment.
        let opts = ClientOpts {
            splits: (1..len).collect(),
            ..opts
        };
        assert_eq!(
            tls_via(addr, "admin.example.com", &trusted, &opts)?.cert,
            want
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_twenty_kib_hello_with_long_alpn_is_routed() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let (addr, trusted, want) = (stack.addr(), stack.trusted(), stack.public.cert.clone());
    blocking(move || {
        for max_fragment_size in [None, Some(512)] {
            let opts = ClientOpts {
                alpn: long_alpn(200, 100),
                max_fragment_size,
                splits: vec![700, 9000, 17000],
                pause: Duration::from_millis(5),
                ..ClientOpts::default()
            };
            let seen = tls_via(addr, "big.example.com", &trusted, &opts)?;
            assert!(seen.hello_len > 20_000, "hello of {} bytes", seen.hello_len);
            assert_eq!(seen.cert, want, "fragment size {max_fragment_size:?}");
        }
        Ok(())
    })
    .await
}

async fn raw_proxy() -> Result<(Proxy, SocketAddr)> {
    let admin = RawUpstream::start("admin", true).await?;
    let public = RawUpstream::start("public", true).await?;
    let proxy = Proxy::start(config(admin.addr, public.addr)?).await?;
    let addr = proxy
        .listen_addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    Ok((proxy, addr))
}

/// The raw upstream saw exactly `bytes`, after a PROXY header naming a loopback client.
fn assert_forwarded(reply: &str, label: &str, bytes: &[u8]) {
    let parts: Vec<&str> = reply.split(' ').collect();
    assert_eq!(parts.first().copied(), Some(label), "{reply}");
    assert!(
        parts.get(1).is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{reply}"
    );
    assert_eq!(
        parts.get(2).copied(),
        Some(bytes.len().to_string().as_str()),
        "{reply}"
    );
    assert_eq!(
        parts.get(3).copied(),
        Some(format!("{:016x}", fnv1a(bytes)).as_str()),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_quantum_sized_hello_split_anywhere_is_forwarded_intact() -> Result<()> {
    let (_proxy, addr) = raw_proxy().await?;
    blocking(move || {
        let hello = HelloSpec::post_quantum("pq.example.com").records(16384);
        assert!(
            hello.len() > 1500,
            "larger than one segment: {}",
            hello.len()
        );
        // Every boundary, each as its own connection (a few ms apart so the proxy reads them
        // separately), then a hello split into records of 700 bytes as Go does.
        let cuts: Vec<usize> = (1..hello.len()).collect();
        in_parallel(&cuts, 4, |&cut| {
            let reply = raw_via(addr, &hello, &[cut], Duration::from_millis(1))?;
            assert_forwarded(&reply, "public", &hello);
            Ok(())
        })?;
        let records = protostar_edge::clienthello::synth::frame_records(
            &HelloSpec::post_quantum("pq.example.com").handshake(),
            700,
        );
        assert_forwarded(
            &raw_via(
                addr,
                &records,
                &[3, 700, 705, 1400],
                Duration::from_millis(2),
            )?,
            "public",
            &records,
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kib_hello_with_padding_before_sni_is_forwarded_intact() -> Result<()> {
    let (_proxy, addr) = raw_proxy().await?;
    blocking(move || {
        let spec = HelloSpec {
            alpn: long_alpn(120, 100),
            padding_before_sni: 8000,
            ..HelloSpec::post_quantum("admin.example.com")
        };
        let hello = spec.records(16384);
        assert!(hello.len() > 20_000, "{}", hello.len());
        // One byte per segment for the first 2 KB, then large pieces.
        let mut cuts: Vec<usize> = (1..2048).collect();
        cuts.extend((4096..hello.len()).step_by(4096));
        assert_forwarded(
            &raw_via(addr, &hello, &cuts, Duration::ZERO)?,
            "admin",
            &hello,
        );
        Ok(())
    })
    .await
}
