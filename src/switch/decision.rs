//! What the forwarding core tells the dataplane to do with one frame.

use super::fdb::Learn;
use super::ports::{PortId, PortSet};

/// Why a frame was dropped. Each reason is a metrics label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The ingress port is unknown or down.
    PortDown,
    /// Shorter than the 14-byte Ethernet header.
    Runt,
    /// An 802.1Q/802.1ad EtherType without the 4 tag bytes.
    TruncatedTag,
    /// Source MAC is multicast, broadcast or all-zero.
    InvalidSource,
    /// 01:80:C2:00:00:01 (MAC control / pause): never forwarded.
    PauseFrame,
    /// 01:80:C2:00:00:0X not allowed by the group forward mask.
    LinkLocal,
    /// Tagged with a VLAN the ingress port is not a member of, or untagged
    /// on a port with no native VLAN, or VID 4095.
    VlanIngress,
    /// Known unicast whose destination is the ingress port (no hairpin).
    SameSegment,
    /// Known unicast from an isolated port to another isolated port.
    Isolated,
    /// Nowhere to send it: no other port in the VLAN accepts the flood, or the
    /// destination port is down or not in the VLAN.
    NoEgress,
    /// Received on a port that spanning tree keeps from forwarding
    /// (discarding, or learning: learned from, then dropped).
    StpBlocked,
    /// IGMP/MLD (or the IP header around it) the Linux bridge refuses: bad
    /// checksum, truncated message or record, a malformed query. Dropped
    /// whenever snooping is on, querier or not.
    McastMalformed,
    /// A report for a new group while the multicast database is full.
    MdbFull,
    /// Received on a mirror's output port, which carries nothing else.
    MirrorOutput,
}

impl DropReason {
    pub const ALL: [DropReason; 14] = [
        DropReason::PortDown,
        DropReason::Runt,
        DropReason::TruncatedTag,
        DropReason::InvalidSource,
        DropReason::PauseFrame,
        DropReason::LinkLocal,
        DropReason::VlanIngress,
        DropReason::SameSegment,
        DropReason::Isolated,
        DropReason::NoEgress,
        DropReason::StpBlocked,
        DropReason::McastMalformed,
        DropReason::MdbFull,
        DropReason::MirrorOutput,
    ];

    /// Metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::PortDown => "port_down",
            DropReason::Runt => "runt",
            DropReason::TruncatedTag => "truncated_tag",
            DropReason::InvalidSource => "invalid_source",
            DropReason::PauseFrame => "pause_frame",
            DropReason::LinkLocal => "link_local",
            DropReason::VlanIngress => "vlan_ingress",
            DropReason::SameSegment => "same_segment",
            DropReason::Isolated => "isolated",
            DropReason::NoEgress => "no_egress",
            DropReason::StpBlocked => "stp_blocked",
            DropReason::McastMalformed => "mcast_malformed",
            DropReason::MdbFull => "mdb_full",
            DropReason::MirrorOutput => "mirror_output",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What happens to the outer VLAN tag on one egress port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    /// Leave the frame as it is.
    Keep,
    /// Remove the outer tag.
    Pop,
    /// Insert a tag with this VID (and the switch's TPID, PCP 0).
    Push(u16),
    /// Set the VID of the existing (priority-only) tag, keeping its PCP.
    Rewrite(u16),
}

/// How the frame arrived, relative to the switch's VLAN protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressTag {
    Untagged,
    /// Tag with VID 0: priority only.
    Priority,
    Tagged,
}

/// Where a forwarded frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    /// Ports to send to.
    pub ports: PortSet,
    /// Of those, ports where the frame leaves untagged.
    pub untagged: PortSet,
    /// The VLAN the frame was classified into (1 when VLAN-unaware).
    pub vid: u16,
    pub ingress_tag: IngressTag,
    /// False for a VLAN-unaware switch: tags pass through untouched.
    pub filtering: bool,
    /// Flooded (unknown unicast, broadcast or multicast) rather than sent to
    /// one known port.
    pub flooded: bool,
}

impl Egress {
    /// The tag action for egress port `p`.
    pub fn tag_action(&self, p: PortId) -> TagAction {
        if !self.filtering {
            return TagAction::Keep;
        }
        match (self.untagged.contains(p), self.ingress_tag) {
            (true, IngressTag::Untagged) => TagAction::Keep,
            (true, _) => TagAction::Pop,
            (false, IngressTag::Untagged) => TagAction::Push(self.vid),
            (false, IngressTag::Priority) => TagAction::Rewrite(self.vid),
            (false, IngressTag::Tagged) => TagAction::Keep,
        }
    }

    /// Each egress port with its tag action.
    pub fn iter(&self) -> impl Iterator<Item = (PortId, TagAction)> + '_ {
        self.ports.iter().map(|p| (p, self.tag_action(p)))
    }
}

/// Drop, forward, or hand to the switch's own control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Drop(DropReason),
    Forward(Egress),
    /// For the switch itself, not forwarded: a BPDU while spanning tree
    /// runs. The dataplane passes the frame to the control plane.
    Punt,
}

/// The outcome of [`super::Switch::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// What learning the source did.
    pub learn: Learn,
}

impl Decision {
    pub(crate) fn drop(reason: DropReason) -> Decision {
        Decision {
            action: Action::Drop(reason),
            learn: Learn::Skipped,
        }
    }

    pub fn drop_reason(&self) -> Option<DropReason> {
        match self.action {
            Action::Drop(r) => Some(r),
            Action::Forward(_) | Action::Punt => None,
        }
    }

    pub fn egress(&self) -> Option<&Egress> {
        match &self.action {
            Action::Forward(e) => Some(e),
            Action::Drop(_) | Action::Punt => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_indexes_are_dense_and_names_unique() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }
}
