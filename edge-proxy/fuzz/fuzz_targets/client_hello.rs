//! Feeds arbitrary bytes to the ClientHello reader in attacker-chosen pieces. Must never
//! panic; a decided outcome must be stable, and a routed name must be a lower-case DNS name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protostar_edge::clienthello::{HelloReader, Outcome, parse_client_hello};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    // The first byte picks the segment size and the cap, so the fuzzer explores both.
    let step = usize::from(control & 0x3f) + 1;
    let limit = if control & 0x40 == 0 { 65_536 } else { 1_024 };
    let mut reader = HelloReader::new(limit);
    let mut seen = 0;
    let mut outcome = Outcome::NeedMore;
    while seen < input.len() {
        seen = (seen + step).min(input.len());
        outcome = reader.advance(&input[..seen]);
        if outcome != Outcome::NeedMore {
            break;
        }
    }
    if outcome != Outcome::NeedMore {
        assert_eq!(reader.advance(input), outcome, "a decided outcome is sticky");
    }
    if let Outcome::Done(hello) = &outcome {
        assert!(!hello.sni.is_empty() && hello.sni.len() <= 253);
        assert!(hello.sni.bytes().all(|b| !b.is_ascii_uppercase()));
    }
    let _ = parse_client_hello(input);
});
