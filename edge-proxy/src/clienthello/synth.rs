//! Builds ClientHello bytes of chosen shapes: for the parser's tests, the proxy's integration
//! tests, fuzz seeds and benchmarks. The output is grammatical TLS, not a hello any real
//! client would complete a handshake with (the random and key share are zeros).

/// RFC 8446 §4.2: extension type ids used below.
const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_ALPN: u16 = 16;
/// RFC 7685 §3: padding(21).
const EXT_PADDING: u16 = 21;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_KEY_SHARE: u16 = 51;
/// draft-ietf-tls-ecdhe-mlkem: X25519MLKEM768 group id; its client share is 1216 bytes
/// (ML-KEM-768 encapsulation key 1184 + X25519 32).
pub const GROUP_X25519MLKEM768: u16 = 0x11ec;
pub const X25519MLKEM768_SHARE_LEN: usize = 1216;
/// RFC 8446 §5.1: maximum plaintext record payload, 2^14.
pub const MAX_RECORD_PAYLOAD: usize = 1 << 14;

/// The shape of a synthetic hello.
#[derive(Debug, Clone)]
pub struct HelloSpec {
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    /// Bytes of RFC 7685 padding placed *before* the server_name extension.
    pub padding_before_sni: usize,
    /// Length of an X25519MLKEM768-sized key share (0 for none).
    pub key_share_len: usize,
    /// Further `(type, data)` extensions appended at the end.
    pub extra_extensions: Vec<(u16, Vec<u8>)>,
}

impl HelloSpec {
    pub fn new(sni: &str) -> Self {
        Self {
            sni: Some(sni.to_owned()),
            alpn: Vec::new(),
            padding_before_sni: 0,
            key_share_len: 0,
            extra_extensions: Vec::new(),
        }
    }

    /// A hello shaped like a current browser's with a post-quantum hybrid key share.
    pub fn post_quantum(sni: &str) -> Self {
        Self {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            key_share_len: X25519MLKEM768_SHARE_LEN,
            // signature_algorithms(13) and a resumption ticket (session_ticket, 35) bring it to
            // the ~1.8 KB browsers send.
            extra_extensions: vec![(13, sig_algs()), (35, vec![0x77; 400])],
            ..Self::new(sni)
        }
    }

    /// The handshake message: header (type 1, u24 length) and body.
    pub fn handshake(&self) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend([0x5a; 32]);
        body.push(0); // empty legacy_session_id
        body.extend([0x00, 0x04, 0x13, 0x01, 0x13, 0x02]);
        body.extend([0x01, 0x00]);

        let mut exts = Vec::new();
        if self.padding_before_sni > 0 {
            push_ext(&mut exts, EXT_PADDING, &vec![0; self.padding_before_sni]);
        }
        if let Some(sni) = &self.sni {
            let mut entry = vec![0];
            entry.extend(u16_len(sni.len()));
            entry.extend(sni.as_bytes());
            let mut data = u16_len(entry.len()).to_vec();
            data.extend(entry);
            push_ext(&mut exts, EXT_SERVER_NAME, &data);
        }
        push_ext(&mut exts, EXT_SUPPORTED_VERSIONS, &[0x02, 0x03, 0x04]);
        if self.key_share_len > 0 {
            push_ext(&mut exts, EXT_SUPPORTED_GROUPS, &[0x00, 0x02, 0x11, 0xec]);
            let mut share = GROUP_X25519MLKEM768.to_be_bytes().to_vec();
            share.extend(u16_len(self.key_share_len));
            share.extend(vec![0x42; self.key_share_len]);
            let mut data = u16_len(share.len()).to_vec();
            data.extend(share);
            push_ext(&mut exts, EXT_KEY_SHARE, &data);
        }
        if !self.alpn.is_empty() {
            let mut list = Vec::new();
            for p in &self.alpn {
                list.push(u8::try_from(p.len()).unwrap_or(u8::MAX));
                list.extend(p);
            }
            let mut data = u16_len(list.len()).to_vec();
            data.extend(list);
            push_ext(&mut exts, EXT_ALPN, &data);
        }
        for (ty, data) in &self.extra_extensions {
            push_ext(&mut exts, *ty, data);
        }
        body.extend(u16_len(exts.len()));
        body.extend(exts);

        let mut msg = vec![0x01];
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
        msg.extend(len.get(1..).unwrap_or_default());
        msg.extend(body);
        msg
    }

    /// The hello framed in TLS records of at most `max_payload` bytes each.
    pub fn records(&self, max_payload: usize) -> Vec<u8> {
        frame_records(&self.handshake(), max_payload)
    }
}

/// Frames handshake bytes as TLS plaintext records (RFC 8446 §5.1) of at most
/// `max_payload` bytes (clamped to 1..=2^14).
pub fn frame_records(handshake: &[u8], max_payload: usize) -> Vec<u8> {
    let max_payload = max_payload.clamp(1, MAX_RECORD_PAYLOAD);
    let mut out = Vec::with_capacity(handshake.len() + handshake.len() / max_payload * 5 + 5);
    for chunk in handshake.chunks(max_payload) {
        out.extend([22, 0x03, 0x01]);
        out.extend(u16_len(chunk.len()));
        out.extend(chunk);
    }
    out
}

/// Builds an ALPN list of `count` distinct protocol ids of `len` bytes each: a simple way to
/// make a legitimately huge hello.
pub fn long_alpn(count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut p = format!("proto-{i}-").into_bytes();
            p.resize(len.max(p.len()), b'x');
            p
        })
        .collect()
}

fn sig_algs() -> Vec<u8> {
    let algs: [u16; 8] = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];
    let mut out = u16_len(algs.len() * 2).to_vec();
    out.extend(algs.iter().flat_map(|a| a.to_be_bytes()));
    out
}

fn push_ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend(ty.to_be_bytes());
    out.extend(u16_len(data.len()));
    out.extend(data);
}

fn u16_len(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes()
}
