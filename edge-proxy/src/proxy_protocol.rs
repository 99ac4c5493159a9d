//! PROXY protocol version 2 (HAProxy's proxy-protocol.txt, §2.2): a binary preamble that tells
//! the upstream the client's real address. Encoder for the proxy, decoder for upstreams and
//! tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// §2.2: the 12-byte signature every v2 header starts with.
pub const SIGNATURE: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];
/// §2.2: version 2 in the high nibble; command PROXY (1) or LOCAL (0) in the low one.
const VERSION_2: u8 = 0x20;
const CMD_LOCAL: u8 = 0x00;
const CMD_PROXY: u8 = 0x01;
/// §2.2: address family in the high nibble (1 = INET, 2 = INET6), transport in the low
/// (1 = STREAM).
const TCP_OVER_IPV4: u8 = 0x11;
const TCP_OVER_IPV6: u8 = 0x21;
/// §2.2: address block sizes: two addresses and two ports.
const IPV4_BLOCK: usize = 4 + 4 + 2 + 2;
const IPV6_BLOCK: usize = 16 + 16 + 2 + 2;
const HEADER_FIXED: usize = 16;

/// The v2 PROXY header for a TCP connection from `client` that arrived at `local`.
pub fn encode(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let (client_ip, local_ip) = (canonical(client.ip()), canonical(local.ip()));
    let mut out = Vec::with_capacity(HEADER_FIXED + IPV6_BLOCK);
    out.extend(SIGNATURE);
    out.push(VERSION_2 | CMD_PROXY);
    match (client_ip, local_ip) {
        (IpAddr::V4(c), IpAddr::V4(l)) => {
            out.push(TCP_OVER_IPV4);
            out.extend((IPV4_BLOCK as u16).to_be_bytes());
            out.extend(c.octets());
            out.extend(l.octets());
        }
        // Mixed families cannot share the IPv4 block; both go as IPv6 (v4-mapped).
        (c, l) => {
            out.push(TCP_OVER_IPV6);
            out.extend((IPV6_BLOCK as u16).to_be_bytes());
            out.extend(as_v6(c).octets());
            out.extend(as_v6(l).octets());
        }
    }
    out.extend(client.port().to_be_bytes());
    out.extend(local.port().to_be_bytes());
    out
}

/// A v4-mapped IPv6 address (from a dual-stack socket) is really IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Need more bytes.
    Incomplete,
    /// A PROXY command with the addresses; `len` bytes of input are the header.
    Proxy {
        source: SocketAddr,
        destination: SocketAddr,
        len: usize,
    },
    /// A LOCAL command (health checks): no addresses; `len` bytes are the header.
    Local { len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a PROXY v2 header")]
    BadSignature,
    #[error("unsupported PROXY version or command")]
    Unsupported,
    #[error("address block shorter than its family needs")]
    Truncated,
}

/// Decodes a v2 header at the start of `input`. TLVs after the addresses are skipped.
pub fn decode(input: &[u8]) -> Result<Decoded, DecodeError> {
    let sig_seen = input.len().min(SIGNATURE.len());
    if input.get(..sig_seen) != SIGNATURE.get(..sig_seen) {
        return Err(DecodeError::BadSignature);
    }
    let Some(fixed) = input.get(..HEADER_FIXED) else {
        return Ok(Decoded::Incomplete);
    };
    let (ver_cmd, family) = (
        fixed.get(12).copied().unwrap_or(0),
        fixed.get(13).copied().unwrap_or(0),
    );
    let block_len = usize::from(u16::from_be_bytes([
        fixed.get(14).copied().unwrap_or(0),
        fixed.get(15).copied().unwrap_or(0),
    ]));
    let len = HEADER_FIXED + block_len;
    let Some(block) = input.get(HEADER_FIXED..len) else {
        return Ok(Decoded::Incomplete);
    };
    if ver_cmd & 0xf0 != VERSION_2 {
        return Err(DecodeError::Unsupported);
    }
    match ver_cmd & 0x0f {
        CMD_LOCAL => return Ok(Decoded::Local { len }),
        CMD_PROXY => {}
        _ => return Err(DecodeError::Unsupported),
    }
    let port = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*block.get(at)?, *block.get(at + 1)?]))
    };
    let (source, destination) = match family {
        TCP_OVER_IPV4 => {
            let ip = |at: usize| -> Option<Ipv4Addr> {
                let b: [u8; 4] = block.get(at..at + 4)?.try_into().ok()?;
                Some(Ipv4Addr::from(b))
            };
            let parts = (ip(0), ip(4), port(8), port(10));
            let (Some(s), Some(d), Some(sp), Some(dp)) = parts else {
                return Err(DecodeError::Truncated);
            };
            (SocketAddr::new(s.into(), sp), SocketAddr::new(d.into(), dp))
        }
        TCP_OVER_IPV6 => {
            let ip = |at: usize| -> Option<Ipv6Addr> {
                let b: [u8; 16] = block.get(at..at + 16)?.try_into().ok()?;
                Some(Ipv6Addr::from(b))
            };
            let parts = (ip(0), ip(16), port(32), port(34));
            let (Some(s), Some(d), Some(sp), Some(dp)) = parts else {
                return Err(DecodeError::Truncated);
            };
            (
                SocketAddr::new(canonical(s.into()), sp),
                SocketAddr::new(canonical(d.into()), dp),
            )
        }
        _ => return Err(DecodeError::Unsupported),
    };
    Ok(Decoded::Proxy {
        source,
        destination,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test literal")
    }

    #[test]
    fn ipv4_header_matches_the_spec_layout() {
        let h = encode(addr("192.0.2.1:50000"), addr("198.51.100.7:443"));
        let mut want = SIGNATURE.to_vec();
        want.extend([
            0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 1, 198, 51, 100, 7, 0xc3, 0x50, 0x01, 0xbb,
        ]);
        assert_eq!(h, want);
    }

    #[test]
    fn round_trips_v4_v6_and_mixed() {
        for (c, l) in [
            ("127.0.0.9:1234", "127.0.0.1:443"),
            ("[2001:db8::1]:5", "[2001:db8::2]:443"),
            ("[::ffff:10.1.2.3]:7", "[::1]:443"),
        ] {
            let (c, l) = (addr(c), addr(l));
            let mut h = encode(c, l);
            let len = h.len();
            h.extend(b"tail");
            let Ok(Decoded::Proxy {
                source,
                len: got_len,
                ..
            }) = decode(&h)
            else {
                panic!("decode {c}")
            };
            assert_eq!(source.port(), c.port());
            assert_eq!(canonical(source.ip()), canonical(c.ip()));
            assert_eq!(got_len, len);
        }
    }

    #[test]
    fn every_prefix_is_incomplete_and_garbage_is_refused() {
        let h = encode(addr("127.0.0.2:1"), addr("127.0.0.1:2"));
        for n in 0..h.len() {
            assert_eq!(
                decode(h.get(..n).unwrap_or_default()),
                Ok(Decoded::Incomplete),
                "{n}"
            );
        }
        assert_eq!(decode(b"GET / HTTP/1.1"), Err(DecodeError::BadSignature));
        let mut local = SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0x00, 0x00]);
        assert_eq!(decode(&local), Ok(Decoded::Local { len: 16 }));
        let mut short = SIGNATURE.to_vec();
        short.extend([0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]);
        assert_eq!(decode(&short), Err(DecodeError::Truncated));
    }
}
