//! Port Information state machine (17.27) with rcvInfo() (17.21.8) and the
//! record*() procedures (17.21.9–17.21.13, 17.21.17, 17.21.23).
//!
//! Where 802.1D-2004 had errors later fixed in 802.1Q, the fix is used:
//! betterorsameInfo() guards agree/agreed, recordAgreement() also runs on
//! superior and repeated designated information, recordDispute() sets
//! disputed, and a TCN sets rcvdTcn in rcvInfo(). recordAgreement() also
//! checks the agreement refers to the current root (see there).

use std::cmp::Ordering;

use crate::stp::bridge::Bridge;
use crate::stp::port::{InfoIs, Port, RcvdInfo};
use crate::stp::vector::{Cmp, PriorityVector};
use crate::wire::bpdu::{Bpdu, WireRole};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Disabled,
    Aged,
    Update,
    Current,
    Receive,
    Other,
    NotDesignated,
    InferiorDesignated,
    RepeatedDesignated,
    SuperiorDesignated,
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    let p = &b.ports[i];
    let next = if p.begin || (!p.port_enabled && p.info_is != InfoIs::Disabled) {
        Some(State::Disabled)
    } else {
        match p.sm.information {
            State::Disabled => {
                if p.port_enabled {
                    Some(State::Aged)
                } else if p.rcvd_msg {
                    Some(State::Disabled)
                } else {
                    None
                }
            }
            State::Aged => (p.selected && p.updt_info).then_some(State::Update),
            State::Update
            | State::Other
            | State::NotDesignated
            | State::InferiorDesignated
            | State::RepeatedDesignated
            | State::SuperiorDesignated => Some(State::Current),
            State::Current => {
                if p.rcvd_msg && !p.updt_info {
                    Some(State::Receive)
                } else if p.selected && p.updt_info {
                    Some(State::Update)
                } else if p.info_is == InfoIs::Received
                    && p.rcvd_info_while == 0
                    && !p.updt_info
                    && !p.rcvd_msg
                {
                    Some(State::Aged)
                } else {
                    None
                }
            }
            State::Receive => Some(match p.rcvd_info {
                RcvdInfo::SuperiorDesignated => State::SuperiorDesignated,
                RcvdInfo::RepeatedDesignated => State::RepeatedDesignated,
                RcvdInfo::InferiorDesignated => State::InferiorDesignated,
                RcvdInfo::InferiorRootAlternate => State::NotDesignated,
                RcvdInfo::Other => State::Other,
            }),
        }
    };
    let Some(s) = next else { return false };
    let rstp = b.rstp_version();
    let p = &mut b.ports[i];
    p.sm.information = s;
    match s {
        State::Disabled => {
            p.rcvd_msg = false;
            p.proposing = false;
            p.proposed = false;
            p.agree = false;
            p.agreed = false;
            p.rcvd_info_while = 0;
            p.info_is = InfoIs::Disabled;
            p.reselect = true;
            p.selected = false;
        }
        State::Aged => {
            p.info_is = InfoIs::Aged;
            p.reselect = true;
            p.selected = false;
        }
        State::Update => {
            p.proposing = false;
            p.proposed = false;
            let better_or_same = p.info_is == InfoIs::Mine
                && p.designated_priority.order(&p.port_priority) != Ordering::Greater;
            p.agreed = p.agreed && better_or_same;
            p.synced = p.synced && p.agreed;
            p.port_priority = p.designated_priority;
            p.port_times = p.designated_times;
            p.updt_info = false;
            p.info_is = InfoIs::Mine;
            p.new_info = true;
        }
        State::Current => {}
        State::Receive => p.rcvd_info = rcv_info(p),
        State::Other => p.rcvd_msg = false,
        State::NotDesignated => {
            record_agreement(p, rstp);
            set_tc_flags(p);
            p.rcvd_msg = false;
        }
        State::InferiorDesignated => {
            record_dispute(p);
            p.rcvd_msg = false;
        }
        State::RepeatedDesignated => {
            record_proposal(p);
            set_tc_flags(p);
            record_agreement(p, rstp);
            updt_rcvd_info_while(p);
            p.rcvd_msg = false;
        }
        State::SuperiorDesignated => {
            p.agreed = false;
            p.proposing = false;
            record_proposal(p);
            set_tc_flags(p);
            let better_or_same = p.info_is == InfoIs::Received
                && p.msg_priority.order(&p.port_priority) != Ordering::Greater;
            p.agree = p.agree && better_or_same;
            record_agreement(p, rstp);
            p.synced = p.synced && p.agreed;
            // recordPriority(), recordTimes() (17.21.12, 17.21.13).
            p.port_priority = p.msg_priority;
            p.port_times = p.msg_times;
            p.port_times.hello_time = p.port_times.hello_time.max(1);
            updt_rcvd_info_while(p);
            p.info_is = InfoIs::Received;
            p.reselect = true;
            p.selected = false;
            p.rcvd_msg = false;
        }
    }
    true
}

/// rcvInfo() (17.21.8): decodes the received BPDU into msgPriority and
/// msgTimes and classifies it.
fn rcv_info(p: &mut Port) -> RcvdInfo {
    let (body, role) = match &p.rx {
        Some(Bpdu::Config(b)) => (*b, WireRole::Designated),
        Some(Bpdu::Rst(b)) => (*b, b.flags.role()),
        Some(Bpdu::Tcn) => {
            p.rcvd_tcn = true;
            return RcvdInfo::Other;
        }
        None => return RcvdInfo::Other,
    };
    p.msg_priority = PriorityVector {
        root: crate::stp::BridgeId(body.root_id),
        root_path_cost: body.root_path_cost,
        designated_bridge: crate::stp::BridgeId(body.bridge_id),
        designated_port: body.port_id,
    };
    p.msg_times = Bridge::msg_times(&body);
    let cmp = p.msg_priority.compare(&p.port_priority);
    let same_times = p.msg_times == p.port_times;
    match role {
        WireRole::Designated => match cmp {
            Cmp::Superior => RcvdInfo::SuperiorDesignated,
            Cmp::Same if !same_times => RcvdInfo::SuperiorDesignated,
            Cmp::Same => RcvdInfo::RepeatedDesignated,
            Cmp::Inferior => RcvdInfo::InferiorDesignated,
        },
        WireRole::Root | WireRole::AlternateOrBackup if cmp != Cmp::Superior => {
            RcvdInfo::InferiorRootAlternate
        }
        _ => RcvdInfo::Other,
    }
}

fn rst_flags(p: &Port) -> Option<crate::wire::bpdu::Flags> {
    match &p.rx {
        Some(Bpdu::Rst(b)) => Some(b.flags),
        _ => None,
    }
}

/// recordAgreement() (17.21.9), with one check more: the agreement counts
/// only if the message names the same root as the port's priority vector
/// and a root path cost no better than it, i.e. the agreeing port's view
/// of the tree is the one the agreement is for. Without it an agreement
/// sent under an older root (a BPDU still in flight when the root changed)
/// let a designated port forward at once and closed a loop in the
/// simulator (random_topologies_with_kernel_like_bridges).
fn record_agreement(p: &mut Port, rstp: bool) {
    let consistent = p.msg_priority.root == p.port_priority.root
        && p.msg_priority.root_path_cost >= p.port_priority.root_path_cost;
    if rstp && p.cfg.point_to_point && consistent && rst_flags(p).is_some_and(|f| f.agreement()) {
        p.agreed = true;
        p.proposing = false;
    } else {
        p.agreed = false;
    }
}

/// recordDispute() (17.21.10, as corrected in 802.1Q).
fn record_dispute(p: &mut Port) {
    if rst_flags(p).is_some_and(|f| f.learning()) {
        p.disputed = true;
        p.agreed = false;
    }
}

/// recordProposal() (17.21.11).
fn record_proposal(p: &mut Port) {
    if rst_flags(p).is_some_and(|f| f.role() == WireRole::Designated && f.proposal()) {
        p.proposed = true;
    }
}

/// setTcFlags() (17.21.17).
fn set_tc_flags(p: &mut Port) {
    match &p.rx {
        Some(Bpdu::Config(b)) | Some(Bpdu::Rst(b)) => {
            if b.flags.tc() {
                p.rcvd_tc = true;
            }
            if b.flags.tc_ack() {
                p.rcvd_tc_ack = true;
            }
        }
        Some(Bpdu::Tcn) => p.rcvd_tcn = true,
        None => {}
    }
}

/// updtRcvdInfoWhile() (17.21.23).
fn updt_rcvd_info_while(p: &mut Port) {
    let t = p.port_times;
    p.rcvd_info_while = if t.message_age.saturating_add(1) <= t.max_age {
        3 * t.hello_time
    } else {
        0
    };
}
