//! Per-port state: the variables of IEEE 802.1D-2004 17.19, the timers of
//! 17.17 and the current state of each per-port machine.

use super::PortId;
use super::config::PortStpConfig;
use super::machines::{
    detection, information, migration, receive, role_transitions, state_transitions, topology,
    transmit,
};
use super::vector::{PriorityVector, Times, port_identifier};
use crate::wire::bpdu::Bpdu;

/// A port role (17.7).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    Root,
    Designated,
    Alternate,
    Backup,
    Disabled,
}

impl PortRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PortRole::Root => "root",
            PortRole::Designated => "designated",
            PortRole::Alternate => "alternate",
            PortRole::Backup => "backup",
            PortRole::Disabled => "disabled",
        }
    }
}

/// What the forwarding core does with a port's frames (17.10 port states;
/// Disabled is a discarding port whose link is down or whose BPDU guard
/// tripped).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// Neither learns nor forwards.
    Discarding,
    /// Learns source addresses, forwards nothing.
    Learning,
    /// Learns and forwards.
    Forwarding,
    /// Link down or BPDU guard tripped: neither learns nor forwards.
    Disabled,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Discarding => "discarding",
            PortState::Learning => "learning",
            PortState::Forwarding => "forwarding",
            PortState::Disabled => "disabled",
        }
    }
}

/// infoIs (17.19.10).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InfoIs {
    Received,
    Mine,
    Aged,
    Disabled,
}

/// rcvdInfo (17.19.16): the result of rcvInfo() (17.21.8).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RcvdInfo {
    SuperiorDesignated,
    RepeatedDesignated,
    InferiorDesignated,
    InferiorRootAlternate,
    Other,
}

/// The state of every per-port machine.
#[derive(Clone, Copy, Debug)]
pub struct Machines {
    pub receive: receive::State,
    pub migration: migration::State,
    pub detection: detection::State,
    pub transmit: transmit::State,
    pub information: information::State,
    pub role: role_transitions::State,
    pub state: state_transitions::State,
    pub topology: topology::State,
}

/// One bridge port.
#[derive(Clone, Debug)]
pub struct Port {
    pub id: PortId,
    pub mac: [u8; 6],
    pub cfg: PortStpConfig,
    /// Link operational (set_link).
    pub link_up: bool,
    /// BPDU guard tripped; cleared by enable_port_after_guard.
    pub guard_tripped: bool,
    /// BEGIN for this port's machines (17.18.1), held for one pass.
    pub begin: bool,
    pub sm: Machines,

    // 17.19 variables.
    pub agree: bool,
    pub agreed: bool,
    pub designated_priority: PriorityVector,
    pub designated_times: Times,
    pub disputed: bool,
    pub fdb_flush: bool,
    pub forward: bool,
    pub forwarding: bool,
    pub info_is: InfoIs,
    pub learn: bool,
    pub learning: bool,
    pub mcheck: bool,
    pub msg_priority: PriorityVector,
    pub msg_times: Times,
    pub new_info: bool,
    pub oper_edge: bool,
    pub port_enabled: bool,
    pub port_id: u16,
    pub path_cost: u32,
    pub port_priority: PriorityVector,
    pub port_times: Times,
    pub proposed: bool,
    pub proposing: bool,
    pub rcvd_bpdu: bool,
    pub rcvd_info: RcvdInfo,
    pub rcvd_msg: bool,
    pub rcvd_rstp: bool,
    pub rcvd_stp: bool,
    pub rcvd_tc: bool,
    pub rcvd_tc_ack: bool,
    pub rcvd_tcn: bool,
    pub re_root: bool,
    pub reselect: bool,
    pub role: PortRole,
    pub selected: bool,
    pub selected_role: PortRole,
    pub send_rstp: bool,
    pub sync: bool,
    pub synced: bool,
    pub tc_ack: bool,
    pub tc_prop: bool,
    pub tx_count: u16,
    pub updt_info: bool,

    // 17.17 timers, whole seconds.
    pub edge_delay_while: u16,
    pub fd_while: u16,
    pub hello_when: u16,
    pub mdelay_while: u16,
    pub rb_while: u16,
    pub rcvd_info_while: u16,
    pub rr_while: u16,
    pub tc_while: u16,

    /// The BPDU being processed (rcvdBPDU's content).
    pub rx: Option<Bpdu>,
    /// Learned addresses may exist (learning was on since the last flush).
    pub dirty: bool,
    /// State last reported in an Event::PortState.
    pub reported: PortState,

    // Counters.
    pub bpdus_rx: u64,
    pub bpdus_tx: u64,
    pub bpdus_bad: u64,
    pub guard_trips: u64,
}

impl Port {
    pub fn new(id: PortId, cfg: PortStpConfig, mac: [u8; 6], path_cost: u32) -> Port {
        Port {
            id,
            mac,
            cfg,
            link_up: false,
            guard_tripped: false,
            begin: true,
            sm: Machines {
                receive: receive::State::Discard,
                migration: migration::State::CheckingRstp,
                detection: detection::State::NotEdge,
                transmit: transmit::State::TransmitInit,
                information: information::State::Disabled,
                role: role_transitions::State::InitPort,
                state: state_transitions::State::Discarding,
                topology: topology::State::Inactive,
            },
            agree: false,
            agreed: false,
            designated_priority: PriorityVector::default(),
            designated_times: Times::default(),
            disputed: false,
            fdb_flush: false,
            forward: false,
            forwarding: false,
            info_is: InfoIs::Disabled,
            learn: false,
            learning: false,
            mcheck: false,
            msg_priority: PriorityVector::default(),
            msg_times: Times::default(),
            new_info: false,
            oper_edge: false,
            port_enabled: false,
            port_id: port_identifier(cfg.priority, number(id)),
            path_cost,
            port_priority: PriorityVector::default(),
            port_times: Times::default(),
            proposed: false,
            proposing: false,
            rcvd_bpdu: false,
            rcvd_info: RcvdInfo::Other,
            rcvd_msg: false,
            rcvd_rstp: false,
            rcvd_stp: false,
            rcvd_tc: false,
            rcvd_tc_ack: false,
            rcvd_tcn: false,
            re_root: false,
            reselect: false,
            role: PortRole::Disabled,
            selected: false,
            selected_role: PortRole::Disabled,
            send_rstp: false,
            sync: false,
            synced: false,
            tc_ack: false,
            tc_prop: false,
            tx_count: 0,
            updt_info: false,
            edge_delay_while: 0,
            fd_while: 0,
            hello_when: 0,
            mdelay_while: 0,
            rb_while: 0,
            rcvd_info_while: 0,
            rr_while: 0,
            tc_while: 0,
            rx: None,
            dirty: false,
            reported: PortState::Disabled,
            bpdus_rx: 0,
            bpdus_tx: 0,
            bpdus_bad: 0,
            guard_trips: 0,
        }
    }

    /// The port state the forwarding core should apply.
    pub fn state(&self) -> PortState {
        if !self.port_enabled {
            PortState::Disabled
        } else if self.forwarding {
            PortState::Forwarding
        } else if self.learning {
            PortState::Learning
        } else {
            PortState::Discarding
        }
    }

    /// Decrements the timers: the Port Timers state machine (17.22).
    pub fn tick(&mut self) {
        for t in [
            &mut self.edge_delay_while,
            &mut self.fd_while,
            &mut self.hello_when,
            &mut self.mdelay_while,
            &mut self.rb_while,
            &mut self.rcvd_info_while,
            &mut self.rr_while,
            &mut self.tc_while,
            &mut self.tx_count,
        ] {
            *t = t.saturating_sub(1);
        }
    }

    // Conditions and parameters of 17.20 that depend on the port.

    /// FwdDelay (17.20.6).
    pub fn fwd_delay(&self) -> u16 {
        self.designated_times.forward_delay
    }
    /// HelloTime (17.20.7).
    pub fn hello_time(&self) -> u16 {
        self.designated_times.hello_time
    }
    /// MaxAge (17.20.8).
    pub fn max_age(&self) -> u16 {
        self.designated_times.max_age
    }
    /// forwardDelay (17.20.5): HelloTime when speaking RSTP, else FwdDelay.
    pub fn forward_delay(&self) -> u16 {
        if self.send_rstp {
            self.hello_time()
        } else {
            self.fwd_delay()
        }
    }
    /// EdgeDelay (17.20.4).
    pub fn edge_delay(&self) -> u16 {
        if self.cfg.point_to_point {
            MIGRATE_TIME
        } else {
            self.max_age()
        }
    }
}

/// Migrate Time (17.13.9): 3 s.
pub const MIGRATE_TIME: u16 = 3;

/// The port number carried in the port identifier: PortId + 1, since 0 is
/// not a valid port number (9.2.7).
pub fn number(id: PortId) -> u16 {
    id.wrapping_add(1)
}
