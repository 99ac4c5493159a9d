//! The client's address, for per-address rate limits, login backoff and audit events. A request
//! that comes straight from the client is taken at its word (the socket's peer). Behind our own
//! gateway or edge proxy every request would otherwise share the proxy's address, and twenty
//! wrong passwords from anyone would lock everyone out; so when the peer is a configured trusted
//! proxy, the client is the right-most address of `X-Forwarded-For` that is not itself one of
//! our proxies (left of it, anyone could have written anything).

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` we believe (`auth.trusted_proxies`: comma-separated
/// addresses or CIDR networks). Empty by default: no header is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Network::parse(s)
                    .ok_or_else(|| format!("`{s}` is not an IP address or CIDR network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `ip` is one of our proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For` values.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .rev();
        for hop in hops {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                // Garbage ends the chain we can believe: the last good hop is the client.
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The client of a request: its socket peer (as the listener recorded it in the request's
/// context), or who that peer forwarded for when it is a trusted proxy.
pub fn of_request(parts: &http::request::Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    parts
        .extensions
        .get::<crate::http::RequestContext>()
        .and_then(|r| r.client)
        .map(|peer| trusted.client(peer.ip(), &forwarded))
}

/// An address as text, made on the stack. The standard `Display` for addresses goes through
/// the formatter's padding support and costs more than the rest of what the gateway does with
/// an address; a request writes its client's address up to three times (the access line,
/// `X-Forwarded-For`, the rate-limit key).
#[derive(Clone, Copy)]
pub struct IpText {
    /// The longest IPv6 text (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`) is 45 bytes.
    buf: [u8; 45],
    len: usize,
}

impl IpText {
    pub fn new(ip: IpAddr) -> Self {
        let mut text = Self {
            buf: [0; 45],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    if octet >= 100 {
                        text.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        text.push(b'0' + octet / 10 % 10);
                    }
                    text.push(b'0' + octet % 10);
                }
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                let mut cursor = std::io::Cursor::new(&mut text.buf[..]);
                // 45 bytes hold any IPv6 text, so this cannot run out of room.
                let _ = write!(cursor, "{v6}");
                text.len = usize::try_from(cursor.position()).unwrap_or(0);
            }
        }
        text
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, dots, colons and hex letters were written.
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Display for IpText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(t.client(ip("203.0.113.9"), &["1.2.3.4"]), ip("203.0.113.9"));
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.1"), &["1.2.3.4"]), ip("10.0.0.1"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.1 ,fd00::/8").unwrap();
        // The client wrote a fake first entry; our proxies appended the rest.
        assert_eq!(
            t.client(ip("10.1.2.3"), &["6.6.6.6, 198.51.100.7", "192.168.1.1"]),
            ip("198.51.100.7")
        );
        assert_eq!(t.client(ip("fd00::1"), &["2001:db8::5"]), ip("2001:db8::5"));
        // Only proxies in the chain: the left-most is as close as we get.
        assert_eq!(t.client(ip("10.0.0.2"), &["10.0.0.3"]), ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            t.client(ip("10.0.0.2"), &["9.9.9.9, nonsense, 10.0.0.7"]),
            ip("10.0.0.7")
        );
        // IPv4-mapped IPv6 peers match IPv4 networks.
        assert_eq!(
            t.client(ip("::ffff:10.0.0.2"), &["203.0.113.1"]),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn networks_parse_and_match_by_prefix() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("example.org").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        let t = TrustedProxies::parse("172.16.0.0/12,0.0.0.0/0").unwrap();
        assert!(t.trusts(ip("172.31.255.255")));
        let t = TrustedProxies::parse("172.16.0.0/12").unwrap();
        assert!(t.trusts(ip("172.31.255.255")));
        assert!(!t.trusts(ip("172.32.0.0")));
        assert!(!t.trusts(ip("::1")));
    }

    #[test]
    fn addresses_as_text_match_the_standard_format() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "255.255.255.255",
            "1.22.199.9",
            "::1",
            "::",
            "2001:db8::8a2e:370:7334",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
    }
}
