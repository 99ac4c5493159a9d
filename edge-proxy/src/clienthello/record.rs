//! The record-layer state machine: reassembles the ClientHello handshake message from as
//! many TLS records and TCP segments as the client used, then hands it to [`parse_client_hello`].

use super::cursor::Cursor;
use super::hello::parse_client_hello;
use super::{Outcome, Reason};

/// RFC 8446 §5.1: ContentType handshake(22).
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
/// RFC 8446 §5.1: TLSPlaintext header is type(1) + legacy_record_version(2) + length(2).
const RECORD_HEADER_LEN: usize = 5;
/// RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes."
const MAX_RECORD_PAYLOAD: usize = 1 << 14;
/// RFC 8446 §4: HandshakeType client_hello(1).
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// RFC 8446 §4: Handshake header is msg_type(1) + length(3).
const HANDSHAKE_HEADER_LEN: usize = 4;
/// Every SSL 3.0 / TLS record version has major byte 3 (RFC 8446 §5.1, Appendix D).
const RECORD_VERSION_MAJOR: u8 = 3;
/// Envoy's TLS inspector default, and ours: big enough for post-quantum shares and long ALPN
/// lists, small enough that a buffered hello is cheap.
pub const DEFAULT_MAX_HELLO_BYTES: usize = 64 * 1024;

/// Reads a ClientHello incrementally. Feed it the whole buffer received so far (it must only
/// ever grow by appending); it resumes where it stopped, so total work is linear.
#[derive(Debug, Clone)]
pub struct HelloReader {
    limit: usize,
    /// Bytes of the input already accounted for (whole headers and copied payload).
    scanned: usize,
    /// Payload bytes of the current record not yet copied.
    record_left: usize,
    /// Reassembled handshake-layer bytes.
    handshake: Vec<u8>,
    /// Sticky final answer: once decided, further input changes nothing.
    finished: Option<Outcome>,
}

impl Default for HelloReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HELLO_BYTES)
    }
}

impl HelloReader {
    /// `limit` caps the raw bytes (record headers included) a hello may occupy.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            scanned: 0,
            record_left: 0,
            handshake: Vec::new(),
            finished: None,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Examines `input` (everything received so far) and reports what is known.
    pub fn advance(&mut self, input: &[u8]) -> Outcome {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        // Bytes past the cap are never looked at: a complete hello inside the cap followed by
        // early data is fine, an incomplete one that needs more than the cap is too large.
        let window = input.get(..self.limit).unwrap_or(input);
        let outcome = match self.step(window) {
            Outcome::NeedMore if input.len() >= self.limit => Outcome::Reject(Reason::TooLarge),
            other => other,
        };
        if outcome != Outcome::NeedMore {
            self.finished = Some(outcome.clone());
            // The reassembly buffer is dead weight from here on.
            self.handshake = Vec::new();
        }
        outcome
    }

    fn step(&mut self, input: &[u8]) -> Outcome {
        let Some(mut rest) = input.get(self.scanned..) else {
            // The caller shrank the buffer: a contract breach, answered without panicking.
            return Outcome::Reject(Reason::Malformed);
        };
        loop {
            if self.record_left == 0 {
                let first_record = self.scanned == 0;
                if let Err(reason) = check_header_prefix(rest, first_record) {
                    return Outcome::Reject(reason);
                }
                let Some(header) = rest.get(..RECORD_HEADER_LEN) else {
                    return Outcome::NeedMore;
                };
                let len = usize::from(u16::from_be_bytes([
                    header.get(3).copied().unwrap_or(0),
                    header.get(4).copied().unwrap_or(0),
                ]));
                // RFC 8446 §5.1: zero-length handshake fragments MUST NOT be sent.
                if len == 0 || len > MAX_RECORD_PAYLOAD {
                    return Outcome::Reject(Reason::Malformed);
                }
                self.record_left = len;
                self.scanned += RECORD_HEADER_LEN;
                rest = rest.get(RECORD_HEADER_LEN..).unwrap_or_default();
            }
            let n = rest.len().min(self.record_left);
            if n == 0 {
                return Outcome::NeedMore;
            }
            let (chunk, tail) = rest.split_at(n);
            self.handshake.extend_from_slice(chunk);
            self.scanned += n;
            self.record_left -= n;
            rest = tail;
            if let Some(outcome) = self.check_handshake() {
                return outcome;
            }
        }
    }

    /// Decides as soon as the handshake layer allows: a wrong message type or an oversized
    /// declared length is rejected before its bytes arrive.
    fn check_handshake(&self) -> Option<Outcome> {
        let hs = &self.handshake;
        if hs.first().is_some_and(|&t| t != HANDSHAKE_CLIENT_HELLO) {
            return Some(Outcome::Reject(Reason::Malformed));
        }
        let header = hs.get(..HANDSHAKE_HEADER_LEN)?;
        let mut c = Cursor::new(header);
        let body_len = c.take(1).and_then(|_| c.u24())?;
        let total = HANDSHAKE_HEADER_LEN + body_len;
        // The records carrying `total` handshake bytes need at least one header each.
        let min_raw = total + RECORD_HEADER_LEN * total.div_ceil(MAX_RECORD_PAYLOAD);
        if min_raw > self.limit {
            return Some(Outcome::Reject(Reason::TooLarge));
        }
        let body = hs.get(HANDSHAKE_HEADER_LEN..total)?;
        Some(match parse_client_hello(body) {
            Ok(hello) => Outcome::Done(hello),
            Err(reason) => Outcome::Reject(reason),
        })
    }
}

/// Checks whatever part of a record header is present, so one byte of plain HTTP is enough
/// to say "not TLS". On the first record a wrong byte means another protocol; later it means
/// a broken TLS stream (RFC 8446 §5.1: handshake records must not interleave with others).
fn check_header_prefix(header: &[u8], first_record: bool) -> Result<(), Reason> {
    let wrong = if first_record {
        Reason::NotTls
    } else {
        Reason::Malformed
    };
    if header.first().is_some_and(|&t| t != CONTENT_TYPE_HANDSHAKE) {
        return Err(wrong);
    }
    if header
        .get(1)
        .is_some_and(|&major| major != RECORD_VERSION_MAJOR)
    {
        return Err(wrong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clienthello::ClientHello;
    use crate::clienthello::synth::{HelloSpec, frame_records, long_alpn};

    fn done(sni: &str) -> Outcome {
        Outcome::Done(ClientHello {
            sni: sni.to_owned(),
            alpn: Vec::new(),
        })
    }

    fn sni_of(outcome: &Outcome) -> Option<&str> {
        match outcome {
            Outcome::Done(h) => Some(&h.sni),
            _ => None,
        }
    }

    /// Fresh reader per prefix: every strict prefix must ask for more, the whole must route.
    fn assert_every_prefix(bytes: &[u8], limit: usize, sni: &str) {
        for n in 0..bytes.len() {
            let got = HelloReader::new(limit).advance(bytes.get(..n).unwrap_or_default());
            assert_eq!(
                got,
                Outcome::NeedMore,
                "prefix of {n}/{} bytes",
                bytes.len()
            );
        }
        assert_eq!(sni_of(&HelloReader::new(limit).advance(bytes)), Some(sni));
    }

    /// One reader, one byte more each call: the incremental path.
    fn assert_byte_at_a_time(bytes: &[u8], limit: usize, sni: &str) {
        let mut r = HelloReader::new(limit);
        for n in 0..bytes.len() {
            assert_eq!(
                r.advance(bytes.get(..n).unwrap_or_default()),
                Outcome::NeedMore,
                "at {n}"
            );
        }
        assert_eq!(sni_of(&r.advance(bytes)), Some(sni));
    }

    #[test]
    fn simple_hello_routes() {
        let bytes = HelloSpec::new("www.example.com").records(16384);
        assert_eq!(
            HelloReader::default().advance(&bytes),
            done("www.example.com")
        );
    }

    #[test]
    fn every_prefix_needs_more() {
        let spec = HelloSpec {
            alpn: vec![b"h2".to_vec()],
            ..HelloSpec::new("a.example.com")
        };
        assert_every_prefix(
            &spec.records(16384),
            DEFAULT_MAX_HELLO_BYTES,
            "a.example.com",
        );
    }

    #[test]
    fn one_byte_at_a_time() {
        let bytes = HelloSpec::post_quantum("pq.example.com").records(16384);
        assert_byte_at_a_time(&bytes, DEFAULT_MAX_HELLO_BYTES, "pq.example.com");
    }

    #[test]
    fn records_split_at_every_size() {
        let hs = HelloSpec::new("split.example.com").handshake();
        for size in 1..=hs.len() {
            let bytes = frame_records(&hs, size);
            let mut r = HelloReader::default();
            assert_eq!(
                sni_of(&r.advance(&bytes)),
                Some("split.example.com"),
                "records of {size}"
            );
        }
    }

    #[test]
    fn records_split_every_prefix_with_tiny_records() {
        // Records of 7 bytes put record boundaries inside every field at some point.
        let bytes = frame_records(&HelloSpec::new("tiny.example.com").handshake(), 7);
        assert_every_prefix(&bytes, DEFAULT_MAX_HELLO_BYTES, "tiny.example.com");
        assert_byte_at_a_time(&bytes, DEFAULT_MAX_HELLO_BYTES, "tiny.example.com");
    }

    #[test]
    fn post_quantum_hello_spans_segments_and_routes() {
        let bytes = HelloSpec::post_quantum("pq.example.com").records(16384);
        assert!(
            bytes.len() > 1400,
            "a PQ hello exceeds one Ethernet segment: {}",
            bytes.len()
        );
        assert_every_prefix(&bytes, DEFAULT_MAX_HELLO_BYTES, "pq.example.com");
        // Go and some browsers split the PQ hello into several records.
        let split = frame_records(&HelloSpec::post_quantum("pq.example.com").handshake(), 1000);
        assert_eq!(
            sni_of(&HelloReader::default().advance(&split)),
            Some("pq.example.com")
        );
    }

    #[test]
    fn twenty_kib_hello_with_padding_before_sni_routes() {
        let spec = HelloSpec {
            alpn: long_alpn(100, 100),
            padding_before_sni: 8000,
            ..HelloSpec::new("big.example.com")
        };
        let bytes = spec.records(16384);
        assert!(
            bytes.len() > 18_000 && bytes.len() < 24_000,
            "{}",
            bytes.len()
        );
        assert_byte_at_a_time(&bytes, DEFAULT_MAX_HELLO_BYTES, "big.example.com");
        // With a 16 KiB cap the same hello is too large, decided from its header alone.
        let mut r = HelloReader::new(16 * 1024);
        assert_eq!(
            r.advance(bytes.get(..9).unwrap_or_default()),
            Outcome::Reject(Reason::TooLarge)
        );
    }

    #[test]
    fn hello_followed_by_early_data_beyond_the_cap_routes() {
        let mut bytes = HelloSpec::new("early.example.com").records(16384);
        bytes.extend([23, 3, 3, 0x40, 0x00]);
        bytes.extend(vec![0xee; 100_000]);
        assert_eq!(
            sni_of(&HelloReader::default().advance(&bytes)),
            Some("early.example.com")
        );
    }

    #[test]
    fn undecided_input_at_the_cap_is_too_large() {
        // A legal record stream that never finishes the hello within the cap.
        let spec = HelloSpec {
            padding_before_sni: 30_000,
            ..HelloSpec::new("x.example.com")
        };
        let bytes = spec.records(16384);
        let mut r = HelloReader::new(1024);
        assert_eq!(
            r.advance(bytes.get(..2000).unwrap_or_default()),
            Outcome::Reject(Reason::TooLarge)
        );
    }

    #[test]
    fn outcome_is_sticky() {
        let mut r = HelloReader::default();
        assert_eq!(r.advance(b"G"), Outcome::Reject(Reason::NotTls));
        let bytes = HelloSpec::new("a.b").records(100);
        assert_eq!(r.advance(&bytes), Outcome::Reject(Reason::NotTls));
    }

    #[test]
    fn plain_http_ssh_and_sslv2_are_not_tls() {
        for junk in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH_9.2\r\n",
            &[0x80, 0x2e, 0x01, 0x00, 0x02],
            &[22, 0x10, 0, 0, 1],
        ] {
            assert_eq!(
                HelloReader::default().advance(junk),
                Outcome::Reject(Reason::NotTls),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn no_sni_is_reported_as_such() {
        let bytes = HelloSpec {
            sni: None,
            ..HelloSpec::new("")
        }
        .records(16384);
        assert_eq!(
            HelloReader::default().advance(&bytes),
            Outcome::Reject(Reason::NoSni)
        );
    }

    #[test]
    fn zero_length_record_is_malformed_not_panic() {
        assert_eq!(
            HelloReader::default().advance(&[22, 3, 1, 0, 0]),
            Outcome::Reject(Reason::Malformed)
        );
    }

    #[test]
    fn oversized_record_is_malformed_not_panic() {
        assert_eq!(
            HelloReader::default().advance(&[22, 3, 1, 0x40, 0x01]),
            Outcome::Reject(Reason::Malformed)
        );
    }

    #[test]
    fn interleaved_alert_record_is_malformed_not_panic() {
        let hs = HelloSpec::new("a.example.com").handshake();
        let mut bytes = frame_records(hs.get(..10).unwrap_or_default(), 16384);
        bytes.extend([21, 3, 3, 0, 2, 1, 0]);
        assert_eq!(
            HelloReader::default().advance(&bytes),
            Outcome::Reject(Reason::Malformed)
        );
    }

    #[test]
    fn server_hello_type_is_malformed_not_panic() {
        assert_eq!(
            HelloReader::default().advance(&[22, 3, 3, 0, 4, 2, 0, 0, 0]),
            Outcome::Reject(Reason::Malformed)
        );
    }

    #[test]
    fn lying_handshake_length_is_malformed_not_panic() {
        // The handshake claims fewer bytes than its body needs.
        let mut hs = HelloSpec::new("a.example.com").handshake();
        if let Some(b) = hs.get_mut(3) {
            *b = b.wrapping_sub(5);
        }
        assert_eq!(
            HelloReader::default().advance(&frame_records(&hs, 16384)),
            Outcome::Reject(Reason::Malformed)
        );
    }

    #[test]
    fn shrinking_input_is_malformed_not_panic() {
        let bytes = HelloSpec::new("a.example.com").records(16384);
        let mut r = HelloReader::default();
        assert_eq!(
            r.advance(bytes.get(..50).unwrap_or_default()),
            Outcome::NeedMore
        );
        assert_eq!(
            r.advance(bytes.get(..10).unwrap_or_default()),
            Outcome::Reject(Reason::Malformed)
        );
    }

    #[test]
    fn every_byte_set_to_extremes_is_not_panic() {
        let bytes = HelloSpec::post_quantum("m.example.com").records(300);
        for i in 0..bytes.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut m = bytes.clone();
                if let Some(b) = m.get_mut(i) {
                    *b = v;
                }
                let _ = HelloReader::default().advance(&m);
                let _ = HelloReader::new(512).advance(&m);
            }
        }
    }

    #[test]
    fn pseudo_random_mutations_are_not_panic() {
        // xorshift64: deterministic, so a failure reproduces.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            HelloSpec::new("a.example.com").records(16384),
            HelloSpec::post_quantum("pq.example.com").records(500),
            HelloSpec {
                alpn: long_alpn(20, 10),
                ..HelloSpec::new("b.example.com")
            }
            .records(64),
        ];
        for round in 0..20_000usize {
            let Some(seed) = seeds.get(round % seeds.len()) else {
                continue;
            };
            let mut m = seed.clone();
            for _ in 0..(next() % 4 + 1) {
                let len = m.len().max(1) as u64;
                let at = (next() % len) as usize;
                match next() % 3 {
                    0 => {
                        if let Some(b) = m.get_mut(at) {
                            *b = next() as u8;
                        }
                    }
                    1 => m.truncate(at),
                    _ => m.insert(at.min(m.len()), next() as u8),
                }
            }
            let mut r = HelloReader::new(4096);
            let step = (next() % 64 + 1) as usize;
            let mut n = 0;
            while n < m.len() {
                n = (n + step).min(m.len());
                if r.advance(m.get(..n).unwrap_or_default()) != Outcome::NeedMore {
                    break;
                }
            }
        }
    }
}
