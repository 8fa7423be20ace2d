//! Bridge Detection state machine (17.25): operEdge from AdminEdge, and
//! from AutoEdge when no BPDU arrives within the edge delay of proposing.

use crate::stp::bridge::Bridge;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Edge,
    NotEdge,
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    let p = &b.ports[i];
    let admin = p.cfg.admin_edge;
    let next = if p.begin {
        Some(if admin { State::Edge } else { State::NotEdge })
    } else {
        match p.sm.detection {
            State::Edge => ((!p.port_enabled && !admin) || !p.oper_edge).then_some(State::NotEdge),
            State::NotEdge => ((!p.port_enabled && admin)
                || (p.edge_delay_while == 0 && p.cfg.auto_edge && p.send_rstp && p.proposing))
                .then_some(State::Edge),
        }
    };
    let Some(s) = next else { return false };
    enter(b, i, s);
    true
}

fn enter(b: &mut Bridge, i: usize, s: State) {
    let p = &mut b.ports[i];
    p.sm.detection = s;
    p.oper_edge = s == State::Edge;
}

/// Re-enters EDGE or NOT_EDGE after AdminEdge changed.
pub(crate) fn restart(b: &mut Bridge, i: usize) {
    let s = if b.ports[i].cfg.admin_edge {
        State::Edge
    } else {
        State::NotEdge
    };
    enter(b, i, s);
}
