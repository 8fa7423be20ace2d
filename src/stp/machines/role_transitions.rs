//! Port Role Transitions state machine (17.29): moves a port to its
//! selected role, and drives learn/forward through the rapid
//! proposal/agreement handshake (17.29.2, 17.29.3) or the forward-delay
//! timers.

use crate::stp::bridge::Bridge;
use crate::stp::port::PortRole;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    InitPort,
    DisablePort,
    DisabledPort,
    RootPort,
    RootProposed,
    RootAgreed,
    Reroot,
    RootForward,
    RootLearn,
    Rerooted,
    DesignatedPort,
    DesignatedRetired,
    DesignatedSynced,
    DesignatedPropose,
    DesignatedForward,
    DesignatedLearn,
    DesignatedDiscard,
    AlternatePort,
    AlternateAgreed,
    AlternateProposed,
    BlockPort,
    BackupPort,
}

/// allSynced (17.20.3), with 802.1Q's extra condition that no port has
/// updtInfo pending: a port about to take new (worse) designated
/// information has not yet cleared its stale `synced`, and without this a
/// root port re-agreed in that window (a loop in the simulator during
/// count-to-infinity).
fn all_synced(b: &Bridge) -> bool {
    b.ports.iter().all(|p| {
        p.selected
            && p.role == p.selected_role
            && !p.updt_info
            && (p.role == PortRole::Root || p.synced)
    })
}

/// reRooted (17.20.10).
fn re_rooted(b: &Bridge, i: usize) -> bool {
    b.ports
        .iter()
        .enumerate()
        .all(|(j, p)| j == i || p.rr_while == 0)
}

fn next(b: &Bridge, i: usize) -> Option<State> {
    use State::*;
    let p = &b.ports[i];
    if p.begin {
        return Some(InitPort);
    }
    let ready = p.selected && !p.updt_info;
    // Global transitions to the selected role.
    if ready && p.role != p.selected_role {
        return Some(match p.selected_role {
            PortRole::Disabled => DisablePort,
            PortRole::Root => RootPort,
            PortRole::Designated => DesignatedPort,
            PortRole::Alternate | PortRole::Backup => BlockPort,
        });
    }
    // Unconditional returns.
    match p.sm.role {
        InitPort => return Some(DisablePort),
        RootProposed | RootAgreed | Reroot | RootForward | RootLearn | Rerooted => {
            return Some(RootPort);
        }
        DesignatedRetired | DesignatedSynced | DesignatedPropose | DesignatedForward
        | DesignatedLearn | DesignatedDiscard => return Some(DesignatedPort),
        AlternateAgreed | AlternateProposed | BackupPort => return Some(AlternatePort),
        _ => {}
    }
    if !ready {
        return None;
    }
    let rstp = b.rstp_version();
    match p.sm.role {
        DisablePort => (!p.learning && !p.forwarding).then_some(DisabledPort),
        DisabledPort => {
            (p.fd_while != p.max_age() || p.sync || p.re_root || !p.synced).then_some(DisabledPort)
        }
        RootPort => {
            let may_learn = p.fd_while == 0 || (re_rooted(b, i) && p.rb_while == 0 && rstp);
            if p.rr_while != p.fwd_delay() {
                Some(RootPort)
            } else if p.re_root && p.forward {
                Some(Rerooted)
            } else if may_learn && !p.learn {
                Some(RootLearn)
            } else if may_learn && p.learn && !p.forward {
                Some(RootForward)
            } else if p.proposed && !p.agree {
                Some(RootProposed)
            } else if (all_synced(b) && !p.agree) || (p.proposed && p.agree) {
                Some(RootAgreed)
            } else if !p.forward && !p.re_root {
                Some(Reroot)
            } else {
                None
            }
        }
        DesignatedPort => {
            let may_go = (p.fd_while == 0 || p.agreed || p.oper_edge)
                && (p.rr_while == 0 || !p.re_root)
                && !p.sync;
            if ((p.sync && !p.synced) || (p.re_root && p.rr_while != 0) || p.disputed)
                && !p.oper_edge
                && (p.learn || p.forward)
            {
                Some(DesignatedDiscard)
            } else if may_go && !p.learn {
                Some(DesignatedLearn)
            } else if may_go && p.learn && !p.forward {
                Some(DesignatedForward)
            } else if !p.forward && !p.agreed && !p.proposing && !p.oper_edge {
                Some(DesignatedPropose)
            } else if (!p.learning && !p.forwarding && !p.synced)
                || (p.agreed && !p.synced)
                || (p.oper_edge && !p.synced)
                || (p.sync && p.synced)
            {
                Some(DesignatedSynced)
            } else if p.rr_while == 0 && p.re_root {
                Some(DesignatedRetired)
            } else {
                None
            }
        }
        AlternatePort => {
            if p.rb_while != 2 * p.hello_time() && p.role == PortRole::Backup {
                Some(BackupPort)
            } else if p.fd_while != p.forward_delay() || p.sync || p.re_root || !p.synced {
                Some(AlternatePort)
            } else if p.proposed && !p.agree {
                Some(AlternateProposed)
            } else if (all_synced(b) && !p.agree) || (p.proposed && p.agree) {
                Some(AlternateAgreed)
            } else {
                None
            }
        }
        BlockPort => (!p.learning && !p.forwarding).then_some(AlternatePort),
        _ => None,
    }
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    use State::*;
    let Some(s) = next(b, i) else { return false };
    match s {
        // setSyncTree() (17.21.14), setReRootTree() (17.21.15).
        RootProposed | AlternateProposed => {
            for q in &mut b.ports {
                q.sync = true;
            }
        }
        Reroot => {
            for q in &mut b.ports {
                q.re_root = true;
            }
        }
        _ => {}
    }
    let p = &mut b.ports[i];
    p.sm.role = s;
    match s {
        InitPort => {
            p.role = PortRole::Disabled;
            p.learn = false;
            p.forward = false;
            p.synced = false;
            p.sync = true;
            p.re_root = true;
            p.rr_while = p.fwd_delay();
            p.fd_while = p.max_age();
            p.rb_while = 0;
        }
        DisablePort | BlockPort => {
            p.role = p.selected_role;
            p.learn = false;
            p.forward = false;
        }
        DisabledPort => {
            p.fd_while = p.max_age();
            p.synced = true;
            p.rr_while = 0;
            p.sync = false;
            p.re_root = false;
        }
        RootPort => {
            p.role = PortRole::Root;
            p.rr_while = p.fwd_delay();
        }
        RootProposed | AlternateProposed => p.proposed = false,
        RootAgreed => {
            p.proposed = false;
            p.sync = false;
            p.agree = true;
            p.new_info = true;
        }
        Reroot => {}
        RootForward => {
            p.fd_while = 0;
            p.forward = true;
        }
        RootLearn | DesignatedLearn => {
            p.fd_while = p.forward_delay();
            p.learn = true;
        }
        Rerooted | DesignatedRetired => p.re_root = false,
        DesignatedPort => p.role = PortRole::Designated,
        DesignatedSynced => {
            p.rr_while = 0;
            p.synced = true;
            p.sync = false;
        }
        DesignatedPropose => {
            p.proposing = true;
            p.edge_delay_while = p.edge_delay();
            p.new_info = true;
        }
        DesignatedForward => {
            p.forward = true;
            p.fd_while = 0;
            p.agreed = p.send_rstp;
        }
        DesignatedDiscard => {
            p.learn = false;
            p.forward = false;
            p.disputed = false;
            p.fd_while = p.forward_delay();
        }
        AlternatePort => {
            p.fd_while = p.forward_delay();
            p.synced = true;
            p.rr_while = 0;
            p.sync = false;
            p.re_root = false;
        }
        AlternateAgreed => {
            p.proposed = false;
            p.agree = true;
            p.new_info = true;
        }
        BackupPort => p.rb_while = 2 * p.hello_time(),
    }
    true
}
