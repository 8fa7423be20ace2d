//! `vswitchctl trace`: the forwarding core's own account of one frame.
//!
//! [`super::SwitchView::decide`] is written once, generic over an
//! [`Observer`]. The dataplane decides with [`Live`], whose notes compile
//! to nothing; [`super::Switch::trace`] decides the same frame with a
//! [`Steps`] recorder, which also makes the decision dry: learning is only
//! predicted ([`super::FdbReader::predict`]), IGMP/MLD messages are routed
//! without being applied, and no counter moves. So a trace walks the very
//! code a frame takes, branch for branch, and leaves the switch as it was.

use serde::Serialize;

use super::decision::{Action, Decision, DropReason, TagAction};
use super::fdb::Learn;
use super::ports::{PortId, PortSet};
use crate::wire::Mac;

/// Watches [`super::SwitchView::decide`] take its steps.
pub(crate) trait Observer {
    /// Decide without side effects (no learning, no counters, no
    /// multicast state learned from the frame).
    const DRY: bool;
    /// Records a step; `step` is only called when someone listens.
    fn note(&mut self, step: impl FnOnce() -> Step);
}

/// The dataplane's observer: no notes, every side effect.
pub(crate) struct Live;

impl Observer for Live {
    const DRY: bool = false;
    #[inline(always)]
    fn note(&mut self, _step: impl FnOnce() -> Step) {}
}

/// A trace's observer: keeps every step, changes nothing.
#[derive(Default)]
pub(crate) struct Steps(pub Vec<Step>);

impl Observer for Steps {
    const DRY: bool = true;
    fn note(&mut self, step: impl FnOnce() -> Step) {
        self.0.push(step());
    }
}

/// One frame's way through the forwarding core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// What the dataplane would do (with learning as predicted).
    pub decision: Decision,
    /// How it got there, in order.
    pub steps: Vec<Step>,
    /// The egress ports' names, in the order of `decision`'s port set.
    pub egress: Vec<(String, TagAction)>,
}

/// A step of [`Trace`]. Serialised with its name under `"step"`; the
/// fields are part of the control protocol (docs/troubleshooting.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The ingress port: known and up?
    Ingress { port: String, up: bool },
    /// The Ethernet header as read (or why it could not be).
    Parse {
        src: Option<Mac>,
        dst: Option<Mac>,
        /// The EtherType after the outer tag.
        ethertype: Option<u16>,
        /// The outer tag's VID, if the frame carries one.
        tag_vid: Option<u16>,
        length: usize,
        error: Option<&'static str>,
    },
    /// Multicast, broadcast and all-zero sources are refused.
    Source { valid: bool },
    /// A frame to 01:80:C2:00:00:0X: what the link-local rules say.
    LinkLocal {
        group: u8,
        verdict: &'static str,
    },
    /// The ingress port's spanning-tree state (only while it runs).
    SpanningTree { state: &'static str },
    /// Ingress VLAN classification and filtering.
    Vlan {
        filtering: bool,
        vid: Option<u16>,
        /// untagged, priority or tagged.
        arrived: &'static str,
        member: bool,
    },
    /// What learning the source would do.
    Learn { outcome: &'static str },
    /// The destination in the FDB.
    Lookup {
        dst: Mac,
        vid: u16,
        /// hit, miss, or multicast (not looked up).
        result: &'static str,
        port: Option<String>,
        age_ms: Option<u64>,
        #[serde(rename = "static")]
        is_static: Option<bool>,
    },
    /// Multicast snooping's answer for a group address.
    Multicast {
        /// flood, ports (members and routers), malformed or mdb_full.
        route: &'static str,
        ports: Vec<String>,
    },
    /// Which flood rule applies, and the ports that allow it.
    Flood {
        /// broadcast, multicast or unknown_unicast.
        class: &'static str,
        /// The port flag that lets a port receive it.
        flag: &'static str,
    },
    /// Every port that could have received the frame, with why it was
    /// kept or excluded.
    Candidates { ports: Vec<Candidate> },
}

/// One port considered for egress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub port: String,
    pub kept: bool,
    /// For a kept port, why it receives the frame; else why not.
    pub why: String,
}

/// What the candidate step needs to explain each port.
pub(crate) struct Why<'a> {
    pub ports: &'a [Option<super::PortConfig>],
    pub ingress: PortId,
    pub vid: u16,
    /// Ports whose link is up.
    pub up: PortSet,
    /// Spanning tree's forwarding ports, while it runs.
    pub stp_forwarding: Option<PortSet>,
    pub members: PortSet,
    pub isolated: PortSet,
    /// The ports the frame is meant for (flood flag set, group member, or
    /// the FDB's port), and what that set is called.
    pub to: PortSet,
    pub to_is: &'static str,
    pub kept: PortSet,
}

impl Why<'_> {
    /// Each port of the table, kept or not and why, in port order.
    pub(crate) fn explain(&self) -> Vec<Candidate> {
        let ingress_cfg = self.ports.get(self.ingress as usize).and_then(Option::as_ref);
        let hairpin = ingress_cfg.is_some_and(|c| c.flags.hairpin);
        let ingress_isolated = ingress_cfg.is_some_and(|c| c.flags.isolated);
        let mut out = Vec::new();
        for (i, cfg) in self.ports.iter().enumerate() {
            let Some(cfg) = cfg else { continue };
            let p = i as PortId;
            let why = if self.kept.contains(p) {
                format!("{} in VLAN {}", self.to_is, self.vid)
            } else if !self.to.contains(p) {
                format!("not {}", self.to_is)
            } else if p == self.ingress && !hairpin {
                "the ingress port (hairpin off)".to_string()
            } else if !self.up.contains(p) {
                "link down".to_string()
            } else if self.stp_forwarding.is_some_and(|f| !f.contains(p)) {
                "spanning tree: not forwarding".to_string()
            } else if !self.members.contains(p) {
                format!("not a member of VLAN {}", self.vid)
            } else if ingress_isolated && self.isolated.contains(p) {
                "isolated, like the ingress port".to_string()
            } else {
                "excluded".to_string()
            };
            out.push(Candidate {
                port: cfg.name.clone(),
                kept: self.kept.contains(p),
                why,
            });
        }
        out
    }
}

impl Learn {
    /// How a trace words what learning would do.
    pub fn trace_word(self) -> &'static str {
        match self {
            Learn::Skipped => "skipped (learning off on the port)",
            Learn::Refreshed => "refresh (known on this port)",
            Learn::Learned => "learn (new MAC)",
            Learn::LearnedEvicting => "learn, evicting another entry (FDB full)",
            Learn::Moved => "move here from another port",
            Learn::Refused => "refuse (static entry elsewhere, mac-limit, or FDB full of static entries)",
        }
    }
}

impl TagAction {
    /// How `trace` words it: `keep`, `pop`, `push 10`, `rewrite 10`.
    pub fn word(self) -> String {
        match self {
            TagAction::Keep => "keep".into(),
            TagAction::Pop => "pop".into(),
            TagAction::Push(v) => format!("push {v}"),
            TagAction::Rewrite(v) => format!("rewrite {v}"),
        }
    }
}

impl Decision {
    /// `forward`, `drop` or `punt`, as `trace` reports it.
    pub fn word(&self) -> &'static str {
        match self.action {
            Action::Forward(_) => "forward",
            Action::Drop(_) => "drop",
            Action::Punt => "punt",
        }
    }
}

impl DropReason {
    /// A sentence for `trace`: why a frame with this reason is dropped.
    pub fn meaning(self) -> &'static str {
        match self {
            DropReason::PortDown => "the ingress port is unknown or down",
            DropReason::Runt => "shorter than the 14-byte Ethernet header",
            DropReason::TruncatedTag => "a VLAN EtherType without the 4 tag bytes",
            DropReason::InvalidSource => "the source MAC is multicast, broadcast or all-zero",
            DropReason::PauseFrame => "a pause frame (01:80:c2:00:00:01) is never forwarded",
            DropReason::LinkLocal => "a link-local group the group forward mask does not allow",
            DropReason::VlanIngress => {
                "the VLAN is not allowed on the ingress port (or untagged with no native VLAN)"
            }
            DropReason::SameSegment => "the destination is on the ingress port (hairpin off)",
            DropReason::Isolated => "from an isolated port to another isolated port",
            DropReason::NoEgress => "no port can take it",
            DropReason::StpBlocked => "spanning tree keeps the ingress port from forwarding",
            DropReason::McastMalformed => "malformed IGMP/MLD",
            DropReason::MdbFull => "a report for a new group while the multicast database is full",
        }
    }
}
