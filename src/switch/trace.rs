//! `vswitchctl trace`: the forwarding core's own account of one frame.
//!
//! [`super::SwitchView::decide`] is written once, generic over an
//! `Observer`. The dataplane decides with `Live`, whose notes compile
//! to nothing; [`super::Switch::trace`] decides the same frame with a
//! `Steps` recorder, which also makes the decision dry: learning is only
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
    LinkLocal { group: u8, verdict: &'static str },
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
    /// Mirror output ports.
    pub mirror_out: PortSet,
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
        let ingress_cfg = self
            .ports
            .get(self.ingress as usize)
            .and_then(Option::as_ref);
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
                "the ingress port, hairpin off".to_string()
            } else if self.mirror_out.contains(p) {
                "a mirror's output port".to_string()
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
            Learn::Refused => {
                "refuse (static entry elsewhere, mac-limit, or FDB full of static entries)"
            }
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
            DropReason::MirrorOutput => {
                "received on a mirror's output port, which carries nothing else"
            }
        }
    }
}

impl Step {
    /// The step in a sentence, for `vswitchctl trace`'s text output.
    pub fn detail(&self) -> String {
        let mac = |m: &Option<Mac>| m.map_or("?".to_string(), |m| m.to_string());
        match self {
            Step::Ingress { port, up: true } => format!("received on {port}, which is up"),
            Step::Ingress { port, up: false } => format!("received on {port}, which is down"),
            Step::Parse {
                length,
                error: Some(e),
                ..
            } => format!("{length} bytes: cannot be read ({e})"),
            Step::Parse {
                src,
                dst,
                ethertype,
                tag_vid,
                length,
                ..
            } => {
                let tag = tag_vid.map_or("untagged".to_string(), |v| format!("tagged VID {v}"));
                let et = ethertype.map_or("?".to_string(), |t| format!("{t:#06x}"));
                format!(
                    "{} > {}, ethertype {et}, {tag}, {length} bytes",
                    mac(src),
                    mac(dst)
                )
            }
            Step::Source { valid: true } => "source MAC is a valid unicast address".into(),
            Step::Source { valid: false } => {
                "source MAC is multicast, broadcast or zero: dropped".into()
            }
            Step::LinkLocal { group, verdict } => {
                format!("link-local group 01:80:c2:00:00:{group:02x}: {verdict}")
            }
            Step::SpanningTree { state } => format!("ingress port is {state}"),
            Step::Vlan {
                filtering: false, ..
            } => "VLAN filtering off: every frame is in VLAN 1, tags untouched".into(),
            Step::Vlan {
                vid,
                arrived,
                member,
                ..
            } => {
                let v = vid.map_or("no VLAN (untagged, no native VLAN)".to_string(), |v| {
                    format!("VLAN {v}")
                });
                let m = if *member {
                    "the port is a member"
                } else {
                    "the port is not a member: dropped"
                };
                format!("arrived {arrived}: {v}; {m}")
            }
            Step::Learn { outcome } => format!("source: {outcome}"),
            Step::Lookup {
                dst,
                vid,
                result,
                port,
                age_ms,
                is_static,
            } => match (*result, port) {
                ("hit", Some(p)) => {
                    let age = match (is_static, age_ms) {
                        (Some(true), _) => "static".to_string(),
                        (_, Some(a)) => format!("seen {:.1} s ago", *a as f64 / 1000.0),
                        _ => "learned from this frame".to_string(),
                    };
                    format!("{dst} in VLAN {vid} is on {p} ({age})")
                }
                ("multicast", _) => format!("{dst} is a group address: not looked up"),
                _ => format!("{dst} in VLAN {vid} is unknown: flood"),
            },
            Step::Multicast { route, ports } => match *route {
                "ports" => format!(
                    "snooping: to the group's member and router ports [{}]",
                    ports.join(", ")
                ),
                "malformed" => "snooping: malformed IGMP/MLD, dropped".into(),
                "mdb_full" => "snooping: multicast database full, dropped".into(),
                _ => "snooping: flooded (snooping off, not IP, or no querier)".into(),
            },
            Step::Flood { class, flag } => {
                format!("{class}: to every port in the VLAN with {flag} on")
            }
            Step::Candidates { ports } => {
                let each: Vec<String> = ports
                    .iter()
                    .map(|c| {
                        let mark = if c.kept { "+" } else { "-" };
                        format!("{mark}{} ({})", c.port, c.why)
                    })
                    .collect();
                each.join(", ")
            }
        }
    }

    /// The step's name, as `"step"` carries it in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Ingress { .. } => "ingress",
            Step::Parse { .. } => "parse",
            Step::Source { .. } => "source",
            Step::LinkLocal { .. } => "link_local",
            Step::SpanningTree { .. } => "spanning_tree",
            Step::Vlan { .. } => "vlan",
            Step::Learn { .. } => "learn",
            Step::Lookup { .. } => "lookup",
            Step::Multicast { .. } => "multicast",
            Step::Flood { .. } => "flood",
            Step::Candidates { .. } => "candidates",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::{Candidate, Step};
    use crate::wire::Mac;

    const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);

    fn eth(dst: Mac, src: Mac, tag: Option<u16>) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        if let Some(v) = tag {
            f.extend_from_slice(&[0x81, 0, (v >> 8) as u8, v as u8]);
        }
        f.extend_from_slice(&[0x88, 0xb5]);
        f.resize(60, 0);
        f
    }

    fn switch(filtering: bool, ports: Vec<PortConfig>) -> Switch {
        let sw = Switch::new(&SwitchConfig {
            vlan_filtering: filtering,
            ..SwitchConfig::default()
        });
        for p in ports {
            let id = sw.add_port(p).unwrap();
            sw.set_port_up(id, true);
        }
        sw
    }

    fn ports(n: usize) -> Vec<PortConfig> {
        (0..n).map(|i| PortConfig::new(format!("p{i}"))).collect()
    }

    fn step<'t>(t: &'t Trace, name: &str) -> &'t Step {
        t.steps
            .iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| panic!("no {name} step in {:?}", t.steps))
    }

    fn candidates(t: &Trace) -> Vec<Candidate> {
        match step(t, "candidates") {
            Step::Candidates { ports } => ports.clone(),
            _ => unreachable!(),
        }
    }

    fn why(t: &Trace, port: &str) -> (bool, String) {
        let c = candidates(t);
        let c = c.iter().find(|c| c.port == port).expect("candidate");
        (c.kept, c.why.clone())
    }

    #[test]
    fn a_trace_learns_nothing_and_predicts_the_learning() {
        let sw = switch(false, ports(2));
        let t = sw.trace(0, &eth(B, A, None), 0);
        assert_eq!(t.decision.learn, Learn::Learned);
        assert!(sw.fdb().entries(0).is_empty(), "a trace learned");
        assert_eq!(sw.fdb().stats().learned.load(Relaxed), 0);
        assert_eq!(sw.decide(0, &eth(B, A, None), 0), t.decision);
        assert_eq!(
            sw.trace(0, &eth(B, A, None), 1).decision.learn,
            Learn::Refreshed
        );
    }

    #[test]
    fn ingress_down_and_runt() {
        let sw = switch(false, ports(2));
        sw.set_port_up(1, false);
        let t = sw.trace(1, &eth(B, A, None), 0);
        assert_eq!(
            t.steps,
            vec![Step::Ingress {
                port: "p1".into(),
                up: false
            }]
        );
        assert_eq!(t.decision.drop_reason(), Some(DropReason::PortDown));
        let t = sw.trace(0, &[0u8; 10], 0);
        assert!(matches!(
            step(&t, "parse"),
            Step::Parse {
                error: Some("runt"),
                ..
            }
        ));
    }

    #[test]
    fn vlan_ingress_says_which_vlan_and_why() {
        let sw = switch(
            true,
            vec![
                PortConfig::new("p0").access(10),
                PortConfig::new("p1").access(10),
            ],
        );
        let t = sw.trace(0, &eth(B, A, Some(20)), 0);
        assert_eq!(
            step(&t, "vlan"),
            &Step::Vlan {
                filtering: true,
                vid: Some(20),
                arrived: "tagged",
                member: false
            }
        );
        assert_eq!(t.decision.drop_reason(), Some(DropReason::VlanIngress));
        // Untagged on the access port: VLAN 10, out untagged.
        let t = sw.trace(0, &eth(B, A, None), 0);
        assert_eq!(t.egress, vec![("p1".to_string(), TagAction::Keep)]);
    }

    #[test]
    fn a_hit_names_the_port_and_age_and_only_that_candidate() {
        let sw = switch(false, ports(3));
        sw.decide(1, &eth(A, B, None), 1000);
        let t = sw.trace(0, &eth(B, A, None), 3500);
        assert_eq!(
            step(&t, "lookup"),
            &Step::Lookup {
                dst: B,
                vid: 1,
                result: "hit",
                port: Some("p1".into()),
                age_ms: Some(2500),
                is_static: Some(false),
            }
        );
        assert_eq!(candidates(&t).len(), 3);
        assert_eq!(why(&t, "p1"), (true, "the FDB's port in VLAN 1".into()));
        assert_eq!(why(&t, "p2"), (false, "not the FDB's port".into()));
        // Back to where it came from: same segment.
        let t = sw.trace(1, &eth(B, A, None), 3500);
        assert_eq!(t.decision.drop_reason(), Some(DropReason::SameSegment));
        assert_eq!(
            why(&t, "p1"),
            (false, "the ingress port, hairpin off".into())
        );
    }

    #[test]
    fn flood_candidates_say_why_each_port_is_left_out() {
        let mut p = ports(6);
        p[1].flags.flood = false;
        p[3].vlan = VlanMode::Access {
            vid: Vid::new(20).unwrap(),
        };
        p[0].flags.isolated = true;
        p[4].flags.isolated = true;
        let sw = switch(true, p);
        sw.set_port_up(2, false);
        let t = sw.trace(0, &eth(B, A, None), 0);
        assert_eq!(
            step(&t, "flood"),
            &Step::Flood {
                class: "unknown_unicast",
                flag: "flood"
            }
        );
        assert_eq!(
            why(&t, "p0"),
            (false, "the ingress port, hairpin off".into())
        );
        assert_eq!(why(&t, "p1"), (false, "not a flood port".into()));
        assert_eq!(why(&t, "p2"), (false, "link down".into()));
        assert_eq!(why(&t, "p3"), (false, "not a member of VLAN 1".into()));
        assert_eq!(
            why(&t, "p4"),
            (false, "isolated, like the ingress port".into())
        );
        assert_eq!(why(&t, "p5"), (true, "a flood port in VLAN 1".into()));
        assert_eq!(t.egress, vec![("p5".to_string(), TagAction::Keep)]);
    }

    #[test]
    fn spanning_tree_states_and_bpdus() {
        let sw = switch(false, ports(3));
        sw.set_stp(true);
        sw.set_stp_gate(0, StpGate::Forwarding);
        sw.set_stp_gate(1, StpGate::Learning);
        let t = sw.trace(1, &eth(B, A, None), 0);
        assert_eq!(
            step(&t, "spanning_tree"),
            &Step::SpanningTree { state: "learning" }
        );
        assert_eq!(t.decision.drop_reason(), Some(DropReason::StpBlocked));
        assert_eq!(t.decision.learn, Learn::Learned);
        let t = sw.trace(0, &eth(B, A, None), 0);
        assert_eq!(
            why(&t, "p1"),
            (false, "spanning tree: not forwarding".into())
        );
        let bpdu = Mac([0x01, 0x80, 0xc2, 0, 0, 0]);
        let t = sw.trace(2, &eth(bpdu, A, None), 0);
        assert_eq!(t.decision.action, Action::Punt);
        assert!(matches!(
            step(&t, "link_local"),
            Step::LinkLocal { group: 0, .. }
        ));
    }

    #[test]
    fn link_local_follows_the_group_forward_mask() {
        let sw = switch(false, ports(2));
        let lldp = Mac([0x01, 0x80, 0xc2, 0, 0, 0x0e]);
        let t = sw.trace(0, &eth(lldp, A, None), 0);
        assert_eq!(t.decision.drop_reason(), Some(DropReason::LinkLocal));
        sw.set_group_fwd_mask(1 << 0x0e);
        let t = sw.trace(0, &eth(lldp, A, None), 0);
        assert_eq!(
            step(&t, "link_local"),
            &Step::LinkLocal {
                group: 0x0e,
                verdict: "forwarded: the group forward mask allows it"
            }
        );
    }

    #[test]
    fn a_traced_report_joins_nothing() {
        use crate::wire::igmp::igmp_frame;
        use std::net::Ipv4Addr;
        let sw = switch(false, ports(3));
        let g = Ipv4Addr::new(239, 1, 1, 1);
        let mut m = vec![0x16, 0, 0, 0];
        m.extend_from_slice(&g.octets());
        let report = igmp_frame(A.0, Ipv4Addr::new(198, 18, 0, 9), g, &m);
        let t = sw.trace(1, &report, 0);
        assert!(matches!(
            step(&t, "multicast"),
            Step::Multicast { route: "flood", .. }
        ));
        assert!(sw.mdb_entries(0).is_empty(), "a trace joined a group");
        assert_eq!(sw.mcast_stats(0).reports, 0);
        assert_eq!(sw.decide(1, &report, 0).action, t.decision.action);
        assert_eq!(sw.mdb_entries(0).len(), 1);
    }

    #[test]
    fn a_port_at_its_mac_limit_is_predicted_to_refuse() {
        let mut p = ports(2);
        p[0].flags.mac_limit = MacLimit::new(1).ok();
        let sw = switch(false, p);
        sw.decide(0, &eth(B, A, None), 0);
        let c = Mac([2, 0, 0, 0, 0, 0xc]);
        let t = sw.trace(0, &eth(B, c, None), 10);
        assert_eq!(t.decision.learn, Learn::Refused);
        assert_eq!(sw.decide(0, &eth(B, c, None), 10).learn, Learn::Refused);
    }

    #[test]
    fn every_step_has_a_sentence() {
        let sw = switch(false, ports(2));
        let t = sw.trace(0, &eth(B, A, None), 0);
        for s in &t.steps {
            assert!(!s.detail().is_empty());
            let v = serde_json::to_value(s).unwrap();
            assert_eq!(v["step"], s.name());
        }
    }
}
