//! W3C Trace Context (`traceparent`), so that one request can be followed across the gateway,
//! the services and the events they publish. Only the header format is implemented here; spans
//! are ordinary `tracing` spans carrying the ids as fields, which the JSON logs show.
//!
//! Format (W3C Trace Context, section 3.2): `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`.

use rand::RngCore;
use std::fmt;

pub const HEADER: &str = "traceparent";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceParent {
    /// A new trace, for a request that arrived without one.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        // All-zero ids are invalid (section 3.2.2.3/4); the odds are nil but the rule is cheap.
        while trace_id == [0; 16] {
            rng.fill_bytes(&mut trace_id);
        }
        while span_id == [0; 8] {
            rng.fill_bytes(&mut span_id);
        }
        Self {
            trace_id,
            span_id,
            sampled: true,
        }
    }

    /// The same trace, one hop further: what this process sends downstream.
    pub fn child(&self) -> Self {
        let mut next = Self::new_root();
        next.trace_id = self.trace_id;
        next.sampled = self.sampled;
        next
    }

    /// Parses a header value; anything malformed yields `None` and the caller starts a new trace,
    /// as the specification asks.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        // Version 00 has exactly four fields; a future version may append more (section 3.2.4).
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        hex_decode::<1>(version)?;
        let trace_id = hex_decode::<16>(trace)?;
        let span_id = hex_decode::<8>(span)?;
        let flags = hex_decode::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }

    pub fn trace_id_hex(&self) -> HexId {
        HexId::new(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> HexId {
        HexId::new(&self.span_id)
    }
}

/// An id in lowercase hex, kept on the stack: every request formats its ids several times
/// (log fields, response and outgoing headers), and a heap string each time showed up in the
/// gateway's profile.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexId {
    buf: [u8; 32],
    len: usize,
}

impl HexId {
    /// At most 16 bytes (a trace id); longer input is cut there.
    pub fn new(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 32];
        let bytes = &bytes[..bytes.len().min(16)];
        for (i, b) in bytes.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        Self {
            buf,
            len: bytes.len() * 2,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for HexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TraceParent {
    /// The header's text, `00-<trace id>-<span id>-<flags>`, made on the stack: it goes out on
    /// every request and every answer, and `to_string` would grow a `String` several times.
    fn text(&self) -> [u8; 55] {
        let mut buf = [0u8; 55];
        buf[..3].copy_from_slice(b"00-");
        buf[3..35].copy_from_slice(self.trace_id_hex().as_str().as_bytes());
        buf[35] = b'-';
        buf[36..52].copy_from_slice(self.span_id_hex().as_str().as_bytes());
        buf[52..].copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        buf
    }

    /// The `traceparent` header's value.
    pub fn header_value(&self) -> Option<http::HeaderValue> {
        http::HeaderValue::from_bytes(&self.text()).ok()
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII hex digits and dashes were written.
        f.write_str(std::str::from_utf8(&self.text()).unwrap_or_default())
    }
}

fn hex_decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Lowercase only, per the specification.
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_hex_with_leading_zeros() {
        let bytes = [0x00, 0x0f, 0xa0, 0xff, 0x5c];
        assert_eq!(HexId::new(&bytes).as_str(), "000fa0ff5c");
        let p =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(p.header_value().unwrap(), p.to_string().as_str());
        let unsampled = TraceParent {
            sampled: false,
            ..p
        };
        assert_eq!(
            unsampled.header_value().unwrap(),
            unsampled.to_string().as_str()
        );
        let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        assert_eq!(
            TraceParent::parse(unsampled).unwrap().to_string(),
            unsampled
        );
    }

    #[test]
    fn round_trips_the_specification_example() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(v).unwrap();
        assert_eq!(tp.to_string(), v);
        assert!(tp.sampled);
        let child = tp.child();
        assert_eq!(child.trace_id, tp.trace_id);
        assert_ne!(child.span_id, tp.span_id);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47é6-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn accepts_future_versions_with_more_fields() {
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
                .is_some()
        );
    }
}
