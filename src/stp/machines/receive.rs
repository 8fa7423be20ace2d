//! Port Receive state machine (17.23).

use crate::stp::bridge::Bridge;
use crate::stp::port::MIGRATE_TIME;
use crate::wire::bpdu::Bpdu;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Discard,
    Receive,
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    let p = &b.ports[i];
    let next = if p.begin
        || ((p.rcvd_bpdu || p.edge_delay_while != MIGRATE_TIME) && !p.port_enabled)
    {
        Some(State::Discard)
    } else {
        match p.sm.receive {
            State::Discard if p.rcvd_bpdu && p.port_enabled => Some(State::Receive),
            State::Receive if p.rcvd_bpdu && p.port_enabled && !p.rcvd_msg => Some(State::Receive),
            _ => None,
        }
    };
    let Some(s) = next else { return false };
    let p = &mut b.ports[i];
    p.sm.receive = s;
    match s {
        State::Discard => {
            p.rcvd_bpdu = false;
            p.rcvd_rstp = false;
            p.rcvd_stp = false;
            p.rcvd_msg = false;
            p.edge_delay_while = MIGRATE_TIME;
        }
        State::Receive => {
            // updtBPDUVersion() (17.21.22).
            match p.rx {
                Some(Bpdu::Rst(_)) => p.rcvd_rstp = true,
                Some(_) => p.rcvd_stp = true,
                None => {}
            }
            p.oper_edge = false;
            p.rcvd_bpdu = false;
            p.rcvd_msg = true;
            p.edge_delay_while = MIGRATE_TIME;
        }
    }
    true
}
