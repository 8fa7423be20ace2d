//! Port Transmit state machine (17.26): periodic and triggered BPDUs,
//! at most TxHoldCount per second, RST or Config/TCN as sendRSTP says.

use crate::stp::bridge::Bridge;
use crate::stp::port::PortRole;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    TransmitInit,
    Idle,
    TransmitPeriodic,
    TransmitConfig,
    TransmitTcn,
    TransmitRstp,
}

fn next(b: &Bridge, i: usize) -> Option<State> {
    use State::*;
    let p = &b.ports[i];
    if p.begin {
        return Some(TransmitInit);
    }
    match p.sm.transmit {
        TransmitInit | TransmitPeriodic | TransmitConfig | TransmitTcn | TransmitRstp => Some(Idle),
        Idle => {
            // No BPDUs from a disabled port (17.26: role Disabled).
            if p.role == PortRole::Disabled || !p.port_enabled || !p.selected || p.updt_info {
                return None;
            }
            let can = p.new_info && p.tx_count < b.cfg.tx_hold_count as u16 && p.hello_when != 0;
            if p.hello_when == 0 {
                Some(TransmitPeriodic)
            } else if p.send_rstp && can {
                Some(TransmitRstp)
            } else if !p.send_rstp && can && p.role == PortRole::Root && p.tc_while != 0 {
                // tcWhile != 0 is not in the figure: without it a root port
                // facing an STP bridge would send a TCN for every agreement.
                Some(TransmitTcn)
            } else if !p.send_rstp && can && p.role == PortRole::Designated {
                Some(TransmitConfig)
            } else {
                None
            }
        }
    }
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    use State::*;
    let Some(s) = next(b, i) else { return false };
    b.ports[i].sm.transmit = s;
    match s {
        TransmitInit => {
            let p = &mut b.ports[i];
            p.new_info = true;
            p.tx_count = 0;
        }
        Idle => {
            let p = &mut b.ports[i];
            p.hello_when = p.hello_time();
        }
        TransmitPeriodic => {
            let p = &mut b.ports[i];
            p.new_info = p.new_info
                || p.role == PortRole::Designated
                || (p.role == PortRole::Root && p.tc_while != 0);
        }
        TransmitConfig => {
            b.ports[i].new_info = false;
            b.tx_config(i);
            let p = &mut b.ports[i];
            p.tx_count += 1;
            p.tc_ack = false;
        }
        TransmitTcn => {
            b.ports[i].new_info = false;
            b.tx_tcn(i);
            b.ports[i].tx_count += 1;
        }
        TransmitRstp => {
            b.ports[i].new_info = false;
            b.tx_rstp(i);
            let p = &mut b.ports[i];
            p.tx_count += 1;
            p.tc_ack = false;
        }
    }
    true
}
