//! Garbage, plain HTTP, truncated, slow and oversize first flights are closed within the
//! limits, without a panic and without disturbing anyone else.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use protostar_edge::clienthello::synth::HelloSpec;

const HANDSHAKE_TIMEOUT_MS: u64 = 1500;
/// Closing "at once" must not depend on scheduling luck on a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(5);
/// Deadline-based closes: the handshake timeout plus generous slack.
const BY_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_first_flights_are_closed_and_others_unaffected() -> Result<()> {
    let stack = Stack::start(|c| c.limits.handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS).await?;
    let (addr, trusted) = (stack.addr(), stack.trusted());
    blocking(move || {
        let good = || -> Result<()> {
            tls_via(addr, "admin.example.com", &trusted, &ClientOpts::default())?;
            Ok(())
        };
        let hello = HelloSpec::new("www.example.com").records(16384);

        // Closed as soon as the first bytes show what they are.
        let mut oversize_header = vec![22, 3, 1, 0x40, 0x00, 1, 0x01, 0x86, 0xa0];
        oversize_header.extend([0u8; 32]);
        let mut zero_record = vec![22, 3, 1, 0, 0];
        zero_record.extend(&hello);
        let prompt: Vec<(&str, Vec<u8>)> = vec![
            (
                "garbage",
                (0..200u32).map(|i| (i * 73 % 256) as u8).collect(),
            ),
            (
                "plain HTTP",
                b"GET / HTTP/1.1\r\nHost: admin.example.com\r\n\r\n".to_vec(),
            ),
            ("SSH banner", b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
            ("oversize declared hello", oversize_header),
            ("zero-length record", zero_record),
        ];
        for (what, bytes) in &prompt {
            let mut s = connect_from(None, addr)?;
            s.write_all(bytes)?;
            let started = Instant::now();
            assert!(closed_within(&mut s, PROMPTLY), "{what} left open");
            eprintln!("{what}: closed after {:?}", started.elapsed());
            good()?;
        }

        // A hello that streams past the cap: 12 KB framed in one-byte records is 72 KB on the
        // wire, so it is closed when the cap is reached, not when its header is read.
        let big = protostar_edge::clienthello::synth::frame_records(
            &HelloSpec {
                padding_before_sni: 12_000,
                ..HelloSpec::new("www.example.com")
            }
            .handshake(),
            1,
        );
        assert!(big.len() > 65_536);
        let mut s = connect_from(None, addr)?;
        let _ = s.write_all(&big);
        assert!(
            closed_within(&mut s, PROMPTLY),
            "streamed oversize hello left open"
        );

        // Truncated then EOF: closed at once.
        let mut s = connect_from(None, addr)?;
        s.write_all(hello.get(..hello.len() / 2).unwrap_or_default())?;
        s.shutdown(std::net::Shutdown::Write)?;
        assert!(
            closed_within(&mut s, PROMPTLY),
            "truncated hello with EOF left open"
        );

        // Truncated and silent: closed by the handshake deadline.
        let mut s = connect_from(None, addr)?;
        s.write_all(hello.get(..hello.len() / 2).unwrap_or_default())?;
        let started = Instant::now();
        assert!(
            closed_within(&mut s, BY_DEADLINE),
            "truncated silent hello left open"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(HANDSHAKE_TIMEOUT_MS / 2),
            "closed before the deadline: {:?}",
            started.elapsed()
        );

        // Slow loris: one byte a second. The deadline is absolute, not per byte.
        let mut s = connect_from(None, addr)?;
        let started = Instant::now();
        let mut sent = 0;
        let mut closed = false;
        for b in hello.iter().take(30) {
            if s.write_all(&[*b]).is_err() {
                closed = true;
                break;
            }
            sent += 1;
            if closed_within(&mut s, Duration::from_secs(1)) {
                closed = true;
                break;
            }
        }
        assert!(closed, "slow loris still open after {sent} bytes");
        assert!(
            started.elapsed() < BY_DEADLINE,
            "slow loris lasted {:?}",
            started.elapsed()
        );
        good()
    })
    .await?;

    let text = stack.metrics()?;
    let series = |s: &str| metric(&text, s);
    assert!(
        series("edge_client_hello_errors_total{reason=\"not_tls\"}") >= 3.0,
        "{text}"
    );
    assert!(
        series("edge_client_hello_errors_total{reason=\"too_large\"}") >= 2.0,
        "{text}"
    );
    assert!(
        series("edge_client_hello_errors_total{reason=\"malformed\"}") >= 1.0,
        "{text}"
    );
    assert!(
        series("edge_rejections_total{reason=\"handshake_timeout\"}") >= 2.0,
        "{text}"
    );
    assert_eq!(
        series("edge_connections_total{route=\"admin\"}"),
        6.0,
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_hello_cap_rejects_a_twenty_kib_hello() -> Result<()> {
    let stack = Stack::start(|c| c.limits.max_hello_bytes = 16 * 1024).await?;
    let addr = stack.addr();
    blocking(move || {
        let big = HelloSpec {
            padding_before_sni: 20_000,
            ..HelloSpec::new("www.example.com")
        }
        .records(16384);
        let mut s = connect_from(None, addr)?;
        let _ = s.write_all(&big);
        assert!(closed_within(&mut s, PROMPTLY));
        Ok(())
    })
    .await?;
    assert_eq!(
        metric(
            &stack.metrics()?,
            "edge_client_hello_errors_total{reason=\"too_large\"}"
        ),
        1.0
    );
    Ok(())
}
