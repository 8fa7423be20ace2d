//! Port Protocol Migration state machine (17.24): speak RSTP, fall back to
//! STP BPDUs on a port where an STP BPDU is heard, return to RSTP when an
//! RST BPDU is heard there again (or on mcheck / link down).

use crate::stp::bridge::Bridge;
use crate::stp::port::MIGRATE_TIME;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    CheckingRstp,
    SelectingStp,
    Sensing,
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    let rstp = b.rstp_version();
    let p = &b.ports[i];
    let next = if p.begin {
        Some(State::CheckingRstp)
    } else {
        match p.sm.migration {
            State::CheckingRstp => {
                if p.mdelay_while == 0 {
                    Some(State::Sensing)
                } else if p.mdelay_while != MIGRATE_TIME && !p.port_enabled {
                    Some(State::CheckingRstp)
                } else {
                    None
                }
            }
            State::SelectingStp => {
                (p.mdelay_while == 0 || !p.port_enabled || p.mcheck).then_some(State::Sensing)
            }
            State::Sensing => {
                if !p.port_enabled || p.mcheck || (rstp && !p.send_rstp && p.rcvd_rstp) {
                    Some(State::CheckingRstp)
                } else if p.send_rstp && p.rcvd_stp {
                    Some(State::SelectingStp)
                } else {
                    None
                }
            }
        }
    };
    let Some(s) = next else { return false };
    let p = &mut b.ports[i];
    p.sm.migration = s;
    match s {
        State::CheckingRstp => {
            p.mcheck = false;
            p.send_rstp = rstp;
            p.mdelay_while = MIGRATE_TIME;
        }
        State::SelectingStp => {
            p.send_rstp = false;
            p.mdelay_while = MIGRATE_TIME;
        }
        State::Sensing => {
            p.rcvd_rstp = false;
            p.rcvd_stp = false;
        }
    }
    true
}
