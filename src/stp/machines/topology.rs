//! Topology Change state machine (17.31): detects changes, propagates them
//! (tcProp), flushes learned addresses (fdbFlush), and speaks the legacy
//! TCN / TC-ack handshake on ports that send STP BPDUs.

use crate::stp::bridge::Bridge;
use crate::stp::port::PortRole;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Inactive,
    Learning,
    Detected,
    Active,
    NotifiedTcn,
    NotifiedTc,
    Propagating,
    Acknowledged,
}

fn next(b: &Bridge, i: usize) -> Option<State> {
    use State::*;
    let p = &b.ports[i];
    if p.begin {
        return Some(Inactive);
    }
    let root_or_designated = matches!(p.role, PortRole::Root | PortRole::Designated);
    let any_rcvd = p.rcvd_tc || p.rcvd_tcn || p.rcvd_tc_ack || p.tc_prop;
    match p.sm.topology {
        Inactive => (p.learn && !p.fdb_flush).then_some(Learning),
        Learning => {
            if !(root_or_designated || p.learn || p.learning || any_rcvd) {
                Some(Inactive)
            } else if any_rcvd {
                Some(Learning)
            } else if root_or_designated && p.forward && !p.oper_edge {
                Some(Detected)
            } else {
                None
            }
        }
        Detected | Propagating | NotifiedTc | Acknowledged => Some(Active),
        NotifiedTcn => Some(NotifiedTc),
        Active => {
            if !root_or_designated || p.oper_edge {
                Some(Learning)
            } else if p.rcvd_tcn {
                Some(NotifiedTcn)
            } else if p.rcvd_tc {
                Some(NotifiedTc)
            } else if p.tc_prop && !p.oper_edge {
                Some(Propagating)
            } else if p.rcvd_tc_ack {
                Some(Acknowledged)
            } else {
                None
            }
        }
    }
}

/// newTcWhile() (17.21.7).
fn new_tc_while(b: &mut Bridge, i: usize) {
    if b.ports[i].tc_while != 0 {
        return;
    }
    b.note_tc_start(i);
    let rt = b.root_times;
    let p = &mut b.ports[i];
    if p.send_rstp {
        p.tc_while = p.hello_time() + 1;
        p.new_info = true;
    } else {
        p.tc_while = rt.max_age + rt.forward_delay;
    }
}

/// setTcPropTree() (17.21.18): every port but this one.
fn set_tc_prop_tree(b: &mut Bridge, i: usize) {
    for (j, q) in b.ports.iter_mut().enumerate() {
        if j != i {
            q.tc_prop = true;
        }
    }
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    use State::*;
    let Some(s) = next(b, i) else { return false };
    b.ports[i].sm.topology = s;
    match s {
        Inactive => {
            b.ports[i].fdb_flush = true;
            b.flush(i);
            let p = &mut b.ports[i];
            p.tc_while = 0;
            p.tc_ack = false;
        }
        Learning => {
            let p = &mut b.ports[i];
            p.rcvd_tc = false;
            p.rcvd_tcn = false;
            p.rcvd_tc_ack = false;
            p.tc_prop = false;
        }
        Detected => {
            new_tc_while(b, i);
            set_tc_prop_tree(b, i);
            b.ports[i].new_info = true;
        }
        Active => {}
        NotifiedTcn => new_tc_while(b, i),
        NotifiedTc => {
            let p = &mut b.ports[i];
            p.rcvd_tcn = false;
            p.rcvd_tc = false;
            if p.role == PortRole::Designated {
                p.tc_ack = true;
                // Not in the figure: send the acknowledgement now rather
                // than at the next hello, as an 802.1D-1998 bridge does.
                if !p.send_rstp {
                    p.new_info = true;
                }
            }
            set_tc_prop_tree(b, i);
        }
        Propagating => {
            new_tc_while(b, i);
            b.ports[i].fdb_flush = true;
            b.flush(i);
            b.ports[i].tc_prop = false;
        }
        Acknowledged => {
            let p = &mut b.ports[i];
            p.tc_while = 0;
            p.rcvd_tc_ack = false;
        }
    }
    true
}
