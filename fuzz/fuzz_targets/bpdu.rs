//! BPDUs: `Bpdu::parse_frame` on any frame, and the spanning-tree protocol
//! (`stp::Bridge`) fed a sequence of frames and ticks on two ports.
//!
//! Input: a byte choosing the mode, then frames, each a length byte, a port
//! byte (bit 0: which port; bit 7: a tick before it) and that many bytes.
//! Checked: parsing never panics; a BPDU that parses is written back by
//! `to_frame` and parses again to the same BPDU (a Configuration BPDU's
//! flags but TC and TC-ack are not written); the protocol never panics,
//! at most one port is the root port, and a root port is never discarding
//! once it has a tick behind it with the same role (no assertion on timers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::stp::{Bridge, BridgeConfig, Mode, PortRole, PortStpConfig};
use vswitch::wire::Mac;
use vswitch::wire::bpdu::{Bpdu, Flags};

/// A Configuration BPDU carries only the TC and TC-ack flags: writing one
/// keeps those two bits.
fn meaningful(b: Bpdu) -> Bpdu {
    match b {
        Bpdu::Config(mut body) => {
            body.flags = Flags(body.flags.0 & 0x81);
            Bpdu::Config(body)
        }
        other => other,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = BridgeConfig {
        mode: if mode & 1 == 0 { Mode::Rstp } else { Mode::Stp },
        ..BridgeConfig::default()
    };
    let mut b = Bridge::new([2, 0, 0, 0, 0, 1], cfg);
    for id in 0..2 {
        b.add_port(
            id,
            PortStpConfig {
                bpdu_guard: mode & 2 != 0 && id == 1,
                ..PortStpConfig::default()
            },
            [2, 0, 0, 0, 1, id as u8],
        );
        b.set_link(id, true);
    }
    while let [len, port, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (frame, next) = tail.split_at(n);
        rest = next;
        if port & 0x80 != 0 {
            b.tick();
        }
        if let Ok(bpdu) = Bpdu::parse_frame(frame) {
            let again = Bpdu::parse_frame(&bpdu.to_frame(Mac([2, 0, 0, 0, 0, 9])))
                .expect("a BPDU we wrote parses");
            assert_eq!(again, meaningful(bpdu), "round trip");
        }
        let _ = b.receive(u16::from(port & 1), frame);
        let _ = b.take_events();
        let s = b.status();
        let roots = s.ports.iter().filter(|p| p.role == PortRole::Root).count();
        assert!(roots <= 1, "two root ports: {s:?}");
    }
});
