//! The PROXY v2 decoder never panics, and every header the encoder writes decodes back.
#![no_main]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use protostar_edge::proxy_protocol::{Decoded, decode, encode};

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
    if data.len() >= 36 {
        let ip = |b: &[u8]| -> IpAddr {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            IpAddr::V6(Ipv6Addr::from(a))
        };
        let client = SocketAddr::new(ip(&data[..16]), u16::from_be_bytes([data[32], data[33]]));
        let local = SocketAddr::new(ip(&data[16..32]), u16::from_be_bytes([data[34], data[35]]));
        let header = encode(client, local);
        match decode(&header) {
            Ok(Decoded::Proxy { source, len, .. }) => {
                assert_eq!(len, header.len());
                assert_eq!(source.port(), client.port());
            }
            other => panic!("encoded header did not decode: {other:?}"),
        }
    }
});
