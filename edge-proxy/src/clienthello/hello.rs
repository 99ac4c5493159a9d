//! Grammar of a complete ClientHello body (RFC 8446 §4.1.2), reduced to what routing needs:
//! the server name (RFC 6066 §3) and the ALPN list (RFC 7301 §3.1). Everything else is
//! skipped, but still length-checked so a lying length is reported, never trusted.

use super::Reason;
use super::cursor::Cursor;

/// RFC 8446 §4.1.2: `Random random;` is 32 bytes.
const RANDOM_LEN: usize = 32;
/// RFC 8446 §4.1.2: `opaque legacy_session_id<0..32>;`.
const MAX_SESSION_ID_LEN: usize = 32;
/// RFC 6066 §3: extension type server_name(0).
const EXT_SERVER_NAME: u16 = 0;
/// RFC 7301 §3.1: extension type application_layer_protocol_negotiation(16).
const EXT_ALPN: u16 = 16;
/// RFC 6066 §3: NameType host_name(0).
const NAME_TYPE_HOST_NAME: u8 = 0;
/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 characters as text.
const MAX_HOST_NAME_LEN: usize = 253;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
const MAX_LABEL_LEN: usize = 63;

/// What routing learns from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The requested host name, validated as a DNS name and lower-cased (names compare
    /// case-insensitively, RFC 4343).
    pub sni: String,
    /// Offered ALPN protocol ids in the client's order.
    pub alpn: Vec<Vec<u8>>,
}

/// Parses a ClientHello handshake body (without the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, Reason> {
    let mut c = Cursor::new(body);
    let legacy_version = c.u16().ok_or(Reason::Malformed)?;
    // Every TLS and SSLv3 version has major byte 3 (RFC 8446 §4.1.2, legacy_version).
    if legacy_version >> 8 != 3 {
        return Err(Reason::Malformed);
    }
    c.take(RANDOM_LEN).ok_or(Reason::Malformed)?;
    let session_id = c.vec8().ok_or(Reason::Malformed)?;
    if session_id.len() > MAX_SESSION_ID_LEN {
        return Err(Reason::Malformed);
    }
    // `CipherSuite cipher_suites<2..2^16-2>;` — two bytes per suite.
    let suites = c.vec16().ok_or(Reason::Malformed)?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(Reason::Malformed);
    }
    // `opaque legacy_compression_methods<1..2^8-1>;`
    let compression = c.vec8().ok_or(Reason::Malformed)?;
    if compression.is_empty() {
        return Err(Reason::Malformed);
    }
    // A pre-TLS-1.3 hello may end here (RFC 5246 §7.4.1.2): no extensions, so no name.
    if c.is_empty() {
        return Err(Reason::NoSni);
    }
    let extensions = c.vec16().ok_or(Reason::Malformed)?;
    if !c.is_empty() {
        return Err(Reason::Malformed);
    }

    let mut sni = None;
    let mut alpn = Vec::new();
    let mut seen = Vec::new();
    let mut ext = Cursor::new(extensions);
    while !ext.is_empty() {
        let ty = ext.u16().ok_or(Reason::Malformed)?;
        let data = ext.vec16().ok_or(Reason::Malformed)?;
        seen.push(ty);
        match ty {
            EXT_SERVER_NAME => sni = Some(parse_server_name(data)?),
            EXT_ALPN => alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type."
    // Sorting keeps this O(n log n) even for a hello stuffed with tiny extensions.
    seen.sort_unstable();
    if seen.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(Reason::Malformed);
    }
    let sni = sni.ok_or(Reason::NoSni)?;
    Ok(ClientHello { sni, alpn })
}

/// RFC 6066 §3: `ServerName server_name_list<1..2^16-1>`, at most one host_name.
fn parse_server_name(data: &[u8]) -> Result<String, Reason> {
    let mut c = Cursor::new(data);
    let list = c.vec16().ok_or(Reason::Malformed)?;
    if !c.is_empty() || list.is_empty() {
        return Err(Reason::Malformed);
    }
    let mut list = Cursor::new(list);
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8().ok_or(Reason::Malformed)?;
        // Only host_name is defined; an unknown type has no known length encoding, so the
        // rest of the list cannot be trusted (RFC 6066 §3).
        if name_type != NAME_TYPE_HOST_NAME || host.is_some() {
            return Err(Reason::Malformed);
        }
        let name = list.vec16().ok_or(Reason::Malformed)?;
        host = Some(validate_host_name(name)?);
    }
    host.ok_or(Reason::Malformed)
}

/// A DNS name as RFC 6066 allows it in SNI: ASCII, no trailing dot, LDH labels (plus `_`,
/// which real deployments use), lower-cased for matching.
fn validate_host_name(name: &[u8]) -> Result<String, Reason> {
    if name.is_empty() || name.len() > MAX_HOST_NAME_LEN {
        return Err(Reason::Malformed);
    }
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(Reason::Malformed);
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Reason::Malformed);
        }
    }
    // All bytes are ASCII, so this is a lossless conversion.
    Ok(name
        .iter()
        .map(|&b| char::from(b.to_ascii_lowercase()))
        .collect())
}

/// RFC 7301 §3.1: `ProtocolName protocol_name_list<2..2^16-1>`, each `<1..2^8-1>`.
fn parse_alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, Reason> {
    let mut c = Cursor::new(data);
    let list = c.vec16().ok_or(Reason::Malformed)?;
    if !c.is_empty() || list.is_empty() {
        return Err(Reason::Malformed);
    }
    let mut list = Cursor::new(list);
    let mut out = Vec::new();
    while !list.is_empty() {
        let proto = list.vec8().ok_or(Reason::Malformed)?;
        if proto.is_empty() {
            return Err(Reason::Malformed);
        }
        out.push(proto.to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clienthello::synth::HelloSpec;

    fn body(spec: &HelloSpec) -> Vec<u8> {
        spec.handshake()
            .get(4..)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }

    #[test]
    fn finds_sni_and_alpn() {
        let spec = HelloSpec {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            ..HelloSpec::new("Admin.Example.COM")
        };
        let hello = parse_client_hello(&body(&spec)).expect("valid hello");
        assert_eq!(hello.sni, "admin.example.com");
        assert_eq!(hello.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_server_name_is_no_sni() {
        let spec = HelloSpec {
            sni: None,
            ..HelloSpec::new("x")
        };
        assert_eq!(parse_client_hello(&body(&spec)), Err(Reason::NoSni));
    }

    #[test]
    fn hello_without_extensions_is_no_sni() {
        let mut b = vec![3, 3];
        b.extend([0u8; 32]);
        b.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        assert_eq!(parse_client_hello(&b), Err(Reason::NoSni));
    }

    #[test]
    fn bad_host_names_are_malformed_not_panic() {
        for name in [
            "",
            "a..b",
            "trailing.dot.",
            "sp ace.com",
            "é.com",
            &"a".repeat(64),
            &"a.".repeat(130),
        ] {
            let spec = HelloSpec::new(name);
            assert_eq!(
                parse_client_hello(&body(&spec)),
                Err(Reason::Malformed),
                "{name:?}"
            );
        }
    }

    #[test]
    fn duplicate_extension_is_malformed_not_panic() {
        let spec = HelloSpec {
            extra_extensions: vec![(0xfe01, vec![]), (0xfe01, vec![])],
            ..HelloSpec::new("a.example.com")
        };
        assert_eq!(parse_client_hello(&body(&spec)), Err(Reason::Malformed));
    }

    #[test]
    fn two_host_names_are_malformed_not_panic() {
        let mut list = Vec::new();
        for name in [b"a.com".as_slice(), b"b.com"] {
            list.push(0);
            list.extend((name.len() as u16).to_be_bytes());
            list.extend(name);
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend(list);
        assert_eq!(parse_server_name(&data), Err(Reason::Malformed));
    }

    #[test]
    fn empty_alpn_entry_is_malformed_not_panic() {
        assert_eq!(parse_alpn(&[0, 2, 0, 0]), Err(Reason::Malformed));
        assert_eq!(parse_alpn(&[0, 0]), Err(Reason::Malformed));
        assert_eq!(parse_alpn(&[0, 9, 2, b'h']), Err(Reason::Malformed));
    }

    #[test]
    fn every_truncation_of_a_body_is_rejected_not_panic() {
        let b = body(&HelloSpec {
            alpn: vec![b"h2".to_vec()],
            ..HelloSpec::new("a.example.com")
        });
        for n in 0..b.len() {
            let got = parse_client_hello(b.get(..n).unwrap_or_default());
            assert!(got.is_err(), "truncated at {n} parsed as {got:?}");
        }
    }
}
