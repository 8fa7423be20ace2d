//! Port Role Selection state machine (17.28) with updtRolesTree()
//! (17.21.25): the bridge's root priority vector, root port and every
//! port's selected role.

use std::cmp::Ordering;

use crate::stp::bridge::Bridge;
use crate::stp::port::{InfoIs, PortRole};
use crate::stp::vector::PriorityVector;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    InitBridge,
    RoleSelection,
}

pub(crate) fn step(b: &mut Bridge) -> bool {
    let next = if b.begin {
        Some(State::InitBridge)
    } else {
        match b.selection {
            State::InitBridge => Some(State::RoleSelection),
            State::RoleSelection => b
                .ports
                .iter()
                .any(|p| p.reselect)
                .then_some(State::RoleSelection),
        }
    };
    let Some(s) = next else { return false };
    b.selection = s;
    match s {
        State::InitBridge => {
            // updtRoleDisabledTree() (17.21.26).
            for p in &mut b.ports {
                p.selected_role = PortRole::Disabled;
            }
        }
        State::RoleSelection => {
            // clearReselectTree() (17.21.2).
            for p in &mut b.ports {
                p.reselect = false;
            }
            updt_roles_tree(b);
            // setSelectedTree() (17.21.16).
            if !b.ports.iter().any(|p| p.reselect) {
                for p in &mut b.ports {
                    p.selected = true;
                }
            }
        }
    }
    true
}

/// updtRolesTree() (17.21.25).
fn updt_roles_tree(b: &mut Bridge) {
    let own = b.bridge_id;
    // a)–c): the best root path priority vector, bridge's own first.
    let mut best = b.bridge_priority();
    let mut best_port_id = 0u16;
    let mut root_idx = None;
    let mut root_times = b.bridge_times;
    for (i, p) in b.ports.iter().enumerate() {
        // Expired information (message age at max age; it ages out on
        // the next step of the Port Information machine) is no path to the
        // root: taking it would send BPDUs older than max age.
        if p.info_is != InfoIs::Received
            || p.port_priority.designated_bridge.address() == own.address()
            || p.port_times.message_age >= p.port_times.max_age
        {
            continue;
        }
        let cand = PriorityVector {
            root_path_cost: p.port_priority.root_path_cost.saturating_add(p.path_cost),
            ..p.port_priority
        };
        let better = match cand.order(&best) {
            Ordering::Less => true,
            Ordering::Equal => root_idx.is_some() && p.port_id < best_port_id,
            Ordering::Greater => false,
        };
        if better {
            best = cand;
            best_port_id = p.port_id;
            root_idx = Some(i);
            root_times = p.port_times;
            root_times.message_age = root_times.message_age.saturating_add(1);
        }
    }
    b.root_priority = best;
    b.root_port_id = best_port_id;
    b.root_times = root_times;
    let hello = b.bridge_times.hello_time;
    // d), e): designated priority vectors and times.
    for p in &mut b.ports {
        p.designated_priority = PriorityVector {
            root: best.root,
            root_path_cost: best.root_path_cost,
            designated_bridge: own,
            designated_port: p.port_id,
        };
        p.designated_times = root_times;
        p.designated_times.hello_time = hello;
    }
    // f)–j): roles.
    for (i, p) in b.ports.iter_mut().enumerate() {
        match p.info_is {
            InfoIs::Disabled => p.selected_role = PortRole::Disabled,
            InfoIs::Aged => {
                p.selected_role = PortRole::Designated;
                p.updt_info = true;
            }
            InfoIs::Mine => {
                p.selected_role = PortRole::Designated;
                if p.port_priority != p.designated_priority || p.port_times != p.designated_times {
                    p.updt_info = true;
                }
            }
            InfoIs::Received => {
                if root_idx == Some(i) {
                    p.selected_role = PortRole::Root;
                    p.updt_info = false;
                } else if p.designated_priority.order(&p.port_priority) != Ordering::Less {
                    p.selected_role =
                        if p.port_priority.designated_bridge.address() == own.address() {
                            PortRole::Backup
                        } else {
                            PortRole::Alternate
                        };
                    p.updt_info = false;
                } else {
                    p.selected_role = PortRole::Designated;
                    p.updt_info = true;
                }
            }
        }
    }
}
