//! The frame parser and the forwarding core over sequences of frames and
//! control operations (ports added, changed, removed, up and down; FDB
//! entries added, removed, flushed, aged; VLAN filtering, group forward
//! mask, capacity and ageing time changed; time moving on).
//!
//! Every decision is checked against a model of the port table and the
//! bridge rules (docs/architecture.md), not only for panics: nothing goes
//! back out of the ingress port without hairpin, to a port that is absent,
//! down or outside the frame's VLAN, or from an isolated port to another;
//! floods reach exactly the ports whose flood flags allow them; known
//! unicast goes to the port the FDB names; learning leaves the source on
//! the ingress port. After each sweep the FDB's counts, capacity and
//! entries agree with the port table.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vswitch::switch::{
    Action, Flush, IngressTag, Learn, MAX_PORTS, MacLimit, PortConfig, PortFlags, PortId, PortSet,
    Switch, SwitchConfig, TableError, TagAction, Vid, VlanMode, VlanSet,
};
use vswitch::wire::{Frame, FrameError, Mac};

/// Ports the fuzzer mostly uses: few, so frames meet each other.
const NEAR: u8 = 8;

/// Every id a [`PortRef`] can name (the checks look at these only).
fn ids() -> impl Iterator<Item = PortId> {
    (0..NEAR as PortId).chain((0..16).map(|k| k * 16 + 15))
}

#[derive(Arbitrary, Debug)]
struct Input {
    filtering: bool,
    dot1ad: bool,
    capacity: u8,
    ageing: u16,
    group_fwd_mask: u16,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct PortRef(u8);

impl PortRef {
    fn id(self) -> PortId {
        // Mostly the first few ports; now and then one far away (ids in
        // the other words of a PortSet).
        if self.0 < 240 {
            (self.0 % NEAR) as PortId
        } else {
            (self.0 as PortId - 240) * 16 + 15
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum VidSel {
    One,
    Two,
    Ten,
    Max,
    Any(u16),
}

impl VidSel {
    fn raw(self) -> u16 {
        match self {
            VidSel::One => 1,
            VidSel::Two => 2,
            VidSel::Ten => 10,
            VidSel::Max => 4094,
            VidSel::Any(v) => v & 0x0fff,
        }
    }
    fn vid(self) -> Vid {
        Vid::new(self.raw()).unwrap_or(Vid::ONE)
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum VlanSel {
    Access(VidSel),
    Trunk(Vec<VidSel>, Option<VidSel>),
}

impl VlanSel {
    fn mode(&self) -> VlanMode {
        match self {
            VlanSel::Access(v) => VlanMode::Access { vid: v.vid() },
            VlanSel::Trunk(allowed, native) => {
                let mut set = VlanSet::default();
                for v in allowed.iter().take(8) {
                    set.insert(v.vid().get());
                }
                VlanMode::Trunk {
                    allowed: set,
                    native: native.map(VidSel::vid),
                }
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
struct PortSel {
    name: u8,
    vlan: VlanSel,
    learning: bool,
    no_flood: bool,
    no_mcast_flood: bool,
    no_bcast_flood: bool,
    isolated: bool,
    hairpin: bool,
    mac_limit: u8,
}

impl PortSel {
    fn config(&self) -> PortConfig {
        PortConfig {
            name: format!("p{}", self.name % 12),
            vlan: self.vlan.mode(),
            flags: PortFlags {
                learning: self.learning,
                flood: !self.no_flood,
                mcast_flood: !self.no_mcast_flood,
                bcast_flood: !self.no_bcast_flood,
                isolated: self.isolated,
                hairpin: self.hairpin,
                mac_limit: MacLimit::new((self.mac_limit % 8) as usize).ok(),
                // Storm control is the dataplane's; spanning-tree and
                // multicast settings act only with those protocols on
                // (the bpdu and igmp targets).
                ..PortFlags::default()
            },
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum MacSel {
    Host(u8),
    Broadcast,
    Ipv4Multicast(u8),
    LinkLocal(u8),
    Zero,
    Raw([u8; 6]),
}

impl MacSel {
    fn mac(self) -> Mac {
        match self {
            MacSel::Host(n) => Mac([2, 0, 0, 0, 0, n % 6]),
            MacSel::Broadcast => Mac::BROADCAST,
            MacSel::Ipv4Multicast(n) => Mac([1, 0, 0x5e, 0, 0, n]),
            MacSel::LinkLocal(n) => Mac([1, 0x80, 0xc2, 0, 0, n % 16]),
            MacSel::Zero => Mac::ZERO,
            MacSel::Raw(b) => Mac(b),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum FrameSel {
    Built {
        dst: MacSel,
        src: MacSel,
        /// (TPID is 802.1ad, PCP, VID)
        tag: Option<(bool, u8, VidSel)>,
        ethertype: u16,
        payload: u8,
    },
    Raw(Vec<u8>),
}

impl FrameSel {
    fn bytes(&self) -> Vec<u8> {
        match self {
            FrameSel::Built {
                dst,
                src,
                tag,
                ethertype,
                payload,
            } => {
                let mut f = Vec::with_capacity(80);
                f.extend_from_slice(&dst.mac().0);
                f.extend_from_slice(&src.mac().0);
                if let Some((ad, pcp, vid)) = tag {
                    let tpid: u16 = if *ad { 0x88a8 } else { 0x8100 };
                    f.extend_from_slice(&tpid.to_be_bytes());
                    let tci = ((*pcp as u16 & 7) << 13) | vid.raw();
                    f.extend_from_slice(&tci.to_be_bytes());
                }
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.resize(f.len() + (*payload % 64) as usize, 0xa5);
                f
            }
            FrameSel::Raw(b) => b.clone(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    Add(PortSel),
    Set(PortRef, PortSel),
    Remove(PortRef),
    /// As the port registry does: the whole table at once.
    Install(Vec<(PortRef, PortSel)>),
    Up(PortRef, bool),
    /// A frame decided with `Switch::decide`.
    Frame(PortRef, FrameSel),
    /// A frame decided through a cached view, as a worker does; `true`:
    /// the frame is what brought the port up.
    ViewFrame(PortRef, FrameSel, bool),
    Advance(u16),
    Jump(u32),
    Expire,
    AddStatic(MacSel, VidSel, PortRef),
    RemoveEntry(MacSel, VidSel),
    Flush {
        port: Option<PortRef>,
        vlan: Option<VidSel>,
        include_static: bool,
    },
    Filtering(bool, bool),
    GroupFwdMask(u16),
    Capacity(u8),
    Ageing(u16),
}

/// What the switch should hold, kept beside it.
struct Model {
    ports: Vec<Option<PortConfig>>,
    up: PortSet,
    filtering: bool,
    tpid: u16,
    mask: u16,
}

impl Model {
    fn port(&self, id: PortId) -> Option<&PortConfig> {
        self.ports.get(id as usize)?.as_ref()
    }

    fn check_table(&self, sw: &Switch) {
        for id in ids() {
            assert_eq!(sw.port(id).as_ref(), self.port(id), "port {id} config");
        }
        assert_eq!(sw.vlan_filtering(), self.filtering);
        assert_eq!(sw.vlan_protocol(), self.tpid);
        assert_eq!(sw.group_fwd_mask(), self.mask);
    }

    /// Whether port `p` is in VLAN `vid` as the switch classifies frames.
    fn member(&self, p: PortId, vid: u16) -> bool {
        match self.port(p) {
            None => false,
            Some(c) if self.filtering => c.vlan.allows(vid),
            Some(_) => vid == 1,
        }
    }
}

fn drop_reason(d: &Action) -> Option<&'static str> {
    match d {
        Action::Drop(r) => Some(r.as_str()),
        Action::Forward(_) => None,
        // Only with spanning tree on, which this target never turns on.
        Action::Punt => Some("punt"),
    }
}

/// Checks one decision against the model; `came_up`: the ingress port
/// counts as up for this frame.
fn check_decision(
    sw: &Switch,
    m: &Model,
    ingress: PortId,
    bytes: &[u8],
    now: u64,
    came_up: bool,
    action: Action,
    learn: Learn,
) {
    let got = drop_reason(&action);
    let mut up = m.up;
    if came_up {
        up.insert(ingress);
    }
    let Some(port) = m.port(ingress).filter(|_| up.contains(ingress)) else {
        assert_eq!(got, Some("port_down"));
        return;
    };
    let frame = match Frame::parse(bytes) {
        Ok(f) => f,
        Err(FrameError::Runt) => return assert_eq!(got, Some("runt")),
        Err(FrameError::TruncatedTag) => return assert_eq!(got, Some("truncated_tag")),
    };
    let (src, dst) = (frame.src(), frame.dst());
    if src.is_multicast() || src.is_zero() {
        return assert_eq!(got, Some("invalid_source"));
    }
    let group = (dst.0[..5] == [1, 0x80, 0xc2, 0, 0] && dst.0[5] < 16).then_some(dst.0[5]);
    if group == Some(1) {
        return assert_eq!(got, Some("pause_frame"));
    }
    let (vid, tagged) = if m.filtering {
        let tag = frame.tag().filter(|t| t.tpid == m.tpid);
        let (vid, kind) = match tag {
            Some(t) if t.vid != 0 => (Some(t.vid), IngressTag::Tagged),
            Some(_) => (port.vlan.pvid(), IngressTag::Priority),
            None => (port.vlan.pvid(), IngressTag::Untagged),
        };
        match vid {
            Some(v) if v <= 4094 && port.vlan.allows(v) => (v, kind),
            _ => return assert_eq!(got, Some("vlan_ingress")),
        }
    } else {
        (1, IngressTag::Untagged)
    };
    // Learning.
    match learn {
        Learn::Skipped => assert!(!port.flags.learning, "learning port skipped {src}"),
        Learn::Learned | Learn::LearnedEvicting | Learn::Moved | Learn::Refreshed => {
            assert!(port.flags.learning);
            // A new MAC only within the port's limit (a limit lowered
            // below the count learned keeps what is there, as the
            // kernel's fdb_max_learned does).
            if let (Learn::Learned | Learn::LearnedEvicting, Some(lim)) =
                (learn, port.flags.mac_limit)
            {
                assert!(sw.fdb().learned_on(ingress) <= lim.get(), "over the limit");
            }
            assert_eq!(
                sw.fdb().lookup(src, vid, now),
                Some(ingress),
                "{learn:?} {src} vid {vid}"
            );
        }
        Learn::Refused => {
            assert!(port.flags.learning);
            assert_ne!(
                sw.fdb().lookup(src, vid, now),
                Some(ingress),
                "refused {src}"
            );
        }
    }
    if let Some(g) = group
        && g != 0
        && m.mask & (1 << g) == 0
    {
        return assert_eq!(got, Some("link_local"));
    }
    let usable = |p: PortId| m.member(p, vid) && up.contains(p);
    let flags = |p: PortId| m.port(p).map(|c| c.flags).unwrap_or_default();
    let expect_out = if !dst.is_multicast()
        && let Some(out) = sw.fdb().lookup(dst, vid, now)
    {
        if out == ingress && !port.flags.hairpin {
            return assert_eq!(got, Some("same_segment"));
        }
        if port.flags.isolated && m.port(out).is_some_and(|c| c.flags.isolated) {
            return assert_eq!(got, Some("isolated"));
        }
        if !usable(out) {
            return assert_eq!(got, Some("no_egress"));
        }
        Some((PortSet::single(out), false))
    } else {
        let out: PortSet = ids()
            .filter(|&p| usable(p))
            .filter(|&p| {
                let f = flags(p);
                if dst.is_broadcast() {
                    f.bcast_flood
                } else if dst.is_multicast() {
                    f.mcast_flood
                } else {
                    f.flood
                }
            })
            .filter(|&p| p != ingress || port.flags.hairpin)
            .filter(|&p| !(port.flags.isolated && flags(p).isolated))
            .collect();
        (!out.is_empty()).then_some((out, true))
    };
    let Some((ports, flooded)) = expect_out else {
        return assert_eq!(got, Some("no_egress"));
    };
    let Action::Forward(e) = action else {
        panic!("dropped ({got:?}), expected forward to {ports:?}");
    };
    assert_eq!(e.ports, ports, "egress ports");
    assert_eq!(e.flooded, flooded);
    assert_eq!(e.vid, vid);
    assert_eq!(e.filtering, m.filtering);
    assert_eq!(e.ingress_tag, tagged);
    for (p, act) in e.iter() {
        // Invariants that hold whatever the rules: never to an absent or
        // down port, never back without hairpin.
        assert!(m.port(p).is_some() && up.contains(p), "to absent/down {p}");
        assert!(p != ingress || port.flags.hairpin, "back out of {p}");
        let want = if !m.filtering {
            TagAction::Keep
        } else {
            let untagged = m.port(p).unwrap().vlan.pvid() == Some(vid);
            match (untagged, tagged) {
                (true, IngressTag::Untagged) => TagAction::Keep,
                (true, _) => TagAction::Pop,
                (false, IngressTag::Untagged) => TagAction::Push(vid),
                (false, IngressTag::Priority) => TagAction::Rewrite(vid),
                (false, IngressTag::Tagged) => TagAction::Keep,
            }
        };
        assert_eq!(act, want, "tag action on {p}");
    }
}

/// The FDB after a sweep: within capacity (unless all static), counts
/// that match its entries, entries only on ports of the table, learned
/// ones only in VLANs their port is in.
fn check_fdb(sw: &Switch, m: &Model, now: u64) {
    let fdb = sw.fdb();
    let entries = fdb.entries(now);
    assert_eq!(fdb.len(), entries.len(), "len vs entries");
    assert!(
        fdb.len() <= fdb.capacity() || entries.iter().all(|e| e.is_static),
        "{} entries over capacity {}",
        fdb.len(),
        fdb.capacity()
    );
    let mut learned = vec![0usize; MAX_PORTS];
    for e in &entries {
        assert!(
            m.port(e.port).is_some(),
            "entry {e:?} on a port not in the table"
        );
        assert!(e.mac.is_valid_source(), "entry {e:?}");
        if !e.is_static {
            learned[e.port as usize] += 1;
            assert!(
                m.member(e.port, e.vlan),
                "learned {e:?} outside its port's VLANs"
            );
            assert!(e.age_ms < fdb.ageing_ms(), "aged {e:?} still there");
        }
    }
    for p in ids() {
        assert_eq!(fdb.learned_on(p), learned[p as usize], "learned on {p}");
    }
}

fn run(input: Input) {
    let tpid = if input.dot1ad { 0x88a8 } else { 0x8100 };
    let mask = input.group_fwd_mask & !2;
    let sw = Switch::new(&SwitchConfig {
        ageing_ms: input.ageing as u64 + 1,
        fdb_capacity: input.capacity as usize % 32 + 1,
        group_fwd_mask: mask,
        vlan_filtering: input.filtering,
        vlan_protocol: tpid,
        // Snooping off: the model floods multicast as a bridge without
        // snooping does (IGMP/MLD have the igmp target).
        mcast: vswitch::mcast::MdbConfig {
            snooping: false,
            ..Default::default()
        },
    });
    let mut m = Model {
        ports: vec![None; MAX_PORTS],
        up: PortSet::EMPTY,
        filtering: input.filtering,
        tpid,
        mask,
    };
    let mut cache = sw.view_cache();
    let mut now: u64 = 1;
    for op in input.ops.into_iter().take(256) {
        let table_op = matches!(
            op,
            Op::Add(_)
                | Op::Set(..)
                | Op::Remove(_)
                | Op::Install(_)
                | Op::Filtering(..)
                | Op::GroupFwdMask(_)
        );
        match op {
            Op::Add(p) => {
                let cfg = p.config();
                let r = sw.add_port(cfg.clone());
                if cfg.vlan.check().is_err() {
                    assert!(matches!(r, Err(TableError::Invalid { .. })), "{r:?}");
                } else if m.ports.iter().flatten().any(|c| c.name == cfg.name) {
                    assert_eq!(r, Err(TableError::Duplicate(cfg.name)));
                } else {
                    let want = m.ports.iter().position(Option::is_none).unwrap();
                    assert_eq!(r, Ok(want as PortId), "lowest free id");
                    m.ports[want] = Some(cfg);
                    // "down until set_port_up"
                    assert!(!sw.port_up(want as PortId), "a new port is up");
                    m.up.remove(want as PortId);
                }
            }
            Op::Set(id, p) => {
                let (id, cfg) = (id.id(), p.config());
                let r = sw.set_port(id, cfg.clone());
                if cfg.vlan.check().is_err() {
                    assert!(matches!(r, Err(TableError::Invalid { .. })), "{r:?}");
                } else if m.port(id).is_none() {
                    assert_eq!(r, Err(TableError::NoSuchPort(id)));
                } else if m.ports.iter().enumerate().any(|(i, c)| {
                    i != id as usize && c.as_ref().is_some_and(|c| c.name == cfg.name)
                }) {
                    assert_eq!(r, Err(TableError::Duplicate(cfg.name)));
                } else {
                    assert_eq!(r, Ok(()));
                    m.ports[id as usize] = Some(cfg);
                }
            }
            Op::Remove(id) => {
                let id = id.id();
                let r = sw.remove_port(id);
                match m.ports[id as usize].take() {
                    Some(old) => {
                        assert_eq!(r, Ok(old));
                        m.up.remove(id);
                        assert!(!sw.port_up(id));
                        assert_eq!(sw.fdb().learned_on(id), 0);
                    }
                    None => assert_eq!(r, Err(TableError::NoSuchPort(id))),
                }
            }
            Op::Install(list) => {
                let mut ports: Vec<Option<PortConfig>> = Vec::new();
                for (id, p) in list.iter().take(12) {
                    let id = id.id() as usize;
                    if ports.len() <= id {
                        ports.resize(id + 1, None);
                    }
                    ports[id] = Some(p.config());
                }
                let mut gone = sw.install(ports.clone());
                gone.sort_unstable();
                ports.resize(MAX_PORTS, None);
                let want: Vec<PortId> = (0..MAX_PORTS)
                    .filter(|&i| match (&m.ports[i], &ports[i]) {
                        (Some(old), Some(new)) => old.name != new.name,
                        (Some(_), None) => true,
                        _ => false,
                    })
                    .map(|i| i as PortId)
                    .collect();
                assert_eq!(gone, want, "ports gone");
                for &id in &gone {
                    m.up.remove(id);
                    assert!(!sw.port_up(id));
                }
                for (i, p) in ports.iter().enumerate() {
                    if p.is_some() && m.ports[i].is_none() {
                        // A new port starts down.
                        assert!(!sw.port_up(i as PortId), "new port {i} is up");
                        m.up.remove(i as PortId);
                    }
                }
                m.ports = ports;
            }
            Op::Up(id, up) => {
                let id = id.id();
                sw.set_port_up(id, up);
                if up {
                    m.up.insert(id);
                } else {
                    m.up.remove(id);
                    assert_eq!(sw.fdb().learned_on(id), 0);
                }
                assert_eq!(sw.port_up(id), up);
            }
            Op::Frame(id, f) => {
                let (id, bytes) = (id.id(), f.bytes());
                // `vswitchctl trace` walks the same code, dry: it must
                // foresee the decision, learning included.
                let t = sw.trace(id, &bytes, now);
                let d = sw.decide(id, &bytes, now);
                assert_eq!(t.decision, d, "trace disagrees: {:?}", t.steps);
                check_decision(&sw, &m, id, &bytes, now, false, d.action, d.learn);
            }
            Op::ViewFrame(id, f, came_up) => {
                let (id, bytes) = (id.id(), f.bytes());
                let d = {
                    let view = sw.view(&mut cache);
                    if came_up {
                        view.port_came_up(id);
                    }
                    view.decide(id, &bytes, now)
                };
                // As a worker does after each pass: put-off refreshes land
                // before anything else reads the FDB.
                cache.refresh();
                check_decision(&sw, &m, id, &bytes, now, came_up, d.action, d.learn);
            }
            Op::Advance(ms) => now += ms as u64,
            Op::Jump(ms) => now += ms as u64,
            Op::Expire => {
                sw.expire(now);
                check_fdb(&sw, &m, now);
            }
            Op::AddStatic(mac, vid, port) => {
                let (mac, port) = (mac.mac(), port.id());
                // The control plane adds statics only for valid MACs on
                // ports it has.
                if mac.is_valid_source() && m.port(port).is_some() {
                    let vid = vid.vid().get();
                    if sw.fdb().add_static(mac, vid, port) {
                        assert_eq!(sw.fdb().lookup(mac, vid, now), Some(port));
                    }
                }
            }
            Op::RemoveEntry(mac, vid) => {
                let (mac, vid) = (mac.mac(), vid.vid().get());
                sw.fdb().remove(mac, vid);
                assert_eq!(sw.fdb().lookup(mac, vid, now), None);
            }
            Op::Flush {
                port,
                vlan,
                include_static,
            } => {
                let f = Flush {
                    port: port.map(PortRef::id),
                    vlan: vlan.map(|v| v.vid().get()),
                    include_static,
                };
                sw.fdb().flush(f);
                for e in sw.fdb().entries(now) {
                    let hit =
                        f.port.is_none_or(|p| p == e.port) && f.vlan.is_none_or(|v| v == e.vlan);
                    assert!(
                        !hit || (e.is_static && !include_static),
                        "{e:?} survived {f:?}"
                    );
                }
            }
            Op::Filtering(on, ad) => {
                let tpid = if ad { 0x88a8 } else { 0x8100 };
                let changed = on != m.filtering || tpid != m.tpid;
                sw.set_vlan_filtering(on, tpid);
                (m.filtering, m.tpid) = (on, tpid);
                if changed {
                    assert!(sw.fdb().entries(now).iter().all(|e| e.is_static));
                }
            }
            Op::GroupFwdMask(mask) => {
                let mask = mask & !2;
                sw.set_group_fwd_mask(mask);
                m.mask = mask;
            }
            Op::Capacity(n) => {
                let n = n as usize % 32 + 1;
                sw.fdb().set_capacity(n);
                assert_eq!(sw.fdb().capacity(), n);
            }
            Op::Ageing(ms) => sw.fdb().set_ageing_ms(ms as u64 + 1),
        }
        if table_op {
            m.check_table(&sw);
        }
    }
    sw.expire(now);
    check_fdb(&sw, &m, now);
}

fuzz_target!(|data: &[u8]| {
    // The parser alone, on the raw bytes: a checked view whose accessors
    // never panic and agree with the bytes.
    if let Ok(f) = Frame::parse(data) {
        assert_eq!(f.dst().0, data[..6]);
        assert_eq!(f.src().0, data[6..12]);
        let et = u16::from_be_bytes([data[12], data[13]]);
        assert_eq!(f.tag().is_some(), et == 0x8100 || et == 0x88a8);
        let _ = f.inner_ethertype();
        assert_eq!(f.len(), data.len());
    } else {
        assert!(data.len() < 18);
    }
    if let Ok(input) = Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) {
        if std::env::var_os("FUZZ_DEBUG").is_some() {
            eprintln!("{input:#?}");
        }
        run(input);
    }
});
