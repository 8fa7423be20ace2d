//! Network namespaces and what a test changes in the root namespace
//! (links, addresses, nft tables, sysctls): each a guard that undoes
//! exactly what it did, on drop.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use super::cmd::{Bg, ok, run, spawn};
use super::wait::wait_for;

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = run(&["ip", "netns", "del", name]);
        ok(&["ip", "netns", "add", name]);
        let ns = Netns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Where a command runs: here.
    pub fn at(&self) -> At<'_> {
        At::Ns(self)
    }

    /// `ip ARGS...` in the namespace; panics unless it succeeds.
    pub fn ip(&self, args: &[&str]) -> String {
        self.at().ip(args)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.at().run(args)
    }

    /// Starts a command inside the namespace in the background.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        self.at().spawn(args)
    }

    /// Moves interface `dev` (in the root namespace) here, with `addr`
    /// (CIDR, may be empty), and brings it up.
    pub fn take(&self, dev: &str, addr: &str) {
        ok(&["ip", "link", "set", dev, "netns", &self.name]);
        if !addr.is_empty() {
            self.ip(&["addr", "add", addr, "dev", dev]);
        }
        self.ip(&["link", "set", dev, "up"]);
    }

    /// One bounded ping; true if any reply came back.
    pub fn ping(&self, dst: &str, count: u32) -> bool {
        self.at().ping(dst, count)
    }

    /// The MAC address of `dev` in this namespace.
    pub fn mac(&self, dev: &str) -> String {
        self.at().mac(dev)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Disables IPv6 in a namespace so the hosts send nothing on their own
/// (no router solicitations, DAD or MLD): a switch then only sees the
/// frames a test sends. Call before moving interfaces in.
pub fn quiet_ipv6(ns: &Netns) {
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
    ] {
        ns.at().sysctl(key, "1");
    }
}

/// Where a command runs: the root namespace or a named one.
#[derive(Clone, Copy)]
pub enum At<'a> {
    Root,
    Ns(&'a Netns),
}

impl At<'_> {
    fn argv<'s>(&'s self, args: &[&'s str]) -> Vec<&'s str> {
        let mut v = match self {
            At::Root => Vec::new(),
            At::Ns(ns) => vec!["ip", "netns", "exec", ns.name.as_str()],
        };
        v.extend_from_slice(args);
        v
    }

    pub fn label(&self) -> String {
        match self {
            At::Root => "root".into(),
            At::Ns(ns) => ns.name.clone(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&self.argv(args))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.argv(args))
    }

    /// Starts a command in the background (stdout/stderr piped).
    pub fn spawn(&self, args: &[&str]) -> Bg {
        spawn(&self.argv(args))
    }

    /// `ip ARGS` here.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip"];
        v.extend_from_slice(args);
        self.ok(&v)
    }

    /// One bounded ping (`count` requests 0.2 s apart): true if any reply
    /// came back.
    pub fn ping(&self, dst: &str, count: u32) -> bool {
        let c = count.to_string();
        self.run(&[
            "timeout", "20", "ping", "-n", "-c", &c, "-i", "0.2", "-W", "2", "-q", dst,
        ])
        .status
        .success()
    }

    /// Like `ping`, but first waits (at most `limit`) for one reply: for
    /// peers that are still coming up.
    pub fn ping_after_first(&self, dst: &str, count: u32, limit: Duration) -> bool {
        let first = wait_for(limit, || {
            self.run(&[
                "timeout", "5", "ping", "-n", "-c", "1", "-W", "1", "-q", dst,
            ])
            .status
            .success()
        });
        first.is_some() && self.ping(dst, count)
    }

    pub fn dev_exists(&self, dev: &str) -> bool {
        self.run(&["ip", "link", "show", "dev", dev])
            .status
            .success()
    }

    /// Whether `dev` holds `addr` (CIDR).
    pub fn dev_has(&self, dev: &str, addr: &str) -> bool {
        let o = self.run(&["ip", "-br", "addr", "show", "dev", dev]);
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        o.status.success() && t.split_whitespace().any(|w| w == addr)
    }

    /// The MAC address of `dev`.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-br", "link", "show", "dev", dev]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    }

    /// Writes a sysctl (only for namespaces or interfaces this test made).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.ok(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }
}

/// A loopback TCP port the kernel says is free now (bound and released),
/// for a metrics endpoint.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether interface `name` exists in the root namespace.
pub fn iface_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// An interface in the root namespace this test created (a veth's root
/// end, a TAP), or the name one will have; deleted on drop (with its peer
/// and its addresses) wherever it still exists under that name.
pub struct Link(pub String);

impl Link {
    /// `ip link add NAME type veth peer name PEER [netns NS]`
    pub fn veth(name: &str, peer: &str, peer_ns: Option<&Netns>) -> Link {
        assert!(
            name.len() <= 15 && peer.len() <= 15,
            "{name}/{peer}: > 15 bytes"
        );
        let _ = run(&["ip", "link", "del", name]);
        let mut v = vec![
            "ip", "link", "add", name, "type", "veth", "peer", "name", peer,
        ];
        if let Some(ns) = peer_ns {
            v.extend_from_slice(&["netns", &ns.name]);
        }
        ok(&v);
        Link(name.into())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.0]);
    }
}

/// An address on an interface of the root namespace; removed on drop (if
/// the interface still exists).
pub struct RootAddr {
    pub dev: String,
    pub addr: String,
}

impl RootAddr {
    /// Only records it: for addresses vswitchd adds (host ports).
    pub fn expect(dev: &str, addr: &str) -> RootAddr {
        assert_net(addr);
        RootAddr {
            dev: dev.into(),
            addr: addr.into(),
        }
    }

    pub fn add(dev: &str, addr: &str) -> RootAddr {
        assert_net(addr);
        ok(&["ip", "addr", "add", addr, "dev", dev]);
        RootAddr::expect(dev, addr)
    }
}

impl Drop for RootAddr {
    fn drop(&mut self) {
        let _ = run(&["ip", "addr", "del", &self.addr, "dev", &self.dev]);
    }
}

/// Addresses in these tests come from 198.18.0.0/15 only.
pub fn assert_net(cidr: &str) {
    assert!(
        cidr.starts_with("198.18.") || cidr.starts_with("198.19."),
        "{cidr} is outside 198.18.0.0/15"
    );
}

/// An nft table of this test's own (named after it), deleted on drop: all
/// the test's rules live in it, so removing it removes exactly them.
pub struct NftTable {
    pub family: String,
    pub name: String,
}

impl NftTable {
    pub fn new(family: &str, name: &str) -> NftTable {
        let _ = run(&["nft", "delete", "table", family, name]);
        ok(&["nft", "add", "table", family, name]);
        NftTable {
            family: family.into(),
            name: name.into(),
        }
    }

    /// `nft add chain FAMILY NAME CHAIN { SPEC }`
    pub fn chain(&self, chain: &str, spec: &str) {
        ok(&[
            "nft",
            &format!(
                "add chain {} {} {chain} {{ {spec} }}",
                self.family, self.name
            ),
        ]);
    }

    /// `nft add rule FAMILY NAME CHAIN RULE`
    pub fn rule(&self, chain: &str, rule: &str) {
        ok(&[
            "nft",
            &format!("add rule {} {} {chain} {rule}", self.family, self.name),
        ]);
    }

    pub fn list(&self) -> String {
        String::from_utf8_lossy(&run(&["nft", "list", "table", &self.family, &self.name]).stdout)
            .into_owned()
    }

    pub fn exists(family: &str, name: &str) -> bool {
        run(&["nft", "list", "table", family, name])
            .status
            .success()
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        let _ = run(&["nft", "delete", "table", &self.family, &self.name]);
    }
}

/// A root-namespace sysctl set for the test; the old value comes back on
/// drop.
pub struct Sysctl {
    path: PathBuf,
    old: String,
}

impl Sysctl {
    fn path(key: &str) -> PathBuf {
        Path::new("/proc/sys").join(key.replace('.', "/"))
    }

    pub fn set(key: &str, value: &str) -> Sysctl {
        let path = Sysctl::path(key);
        let old = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_string();
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        Sysctl { path, old }
    }

    pub fn read(key: &str) -> String {
        std::fs::read_to_string(Sysctl::path(key))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.old);
    }
}

/// A VXLAN underlay (tests/e2e_vxlan.rs, tests/e2e_evpn.rs): a bridge in
/// namespace `u`; a root veth carrying vswitchd's addresses.
pub struct Underlay {
    pub u: Netns,
    _root: Link,
    _addrs: Vec<RootAddr>,
    n: usize,
}

impl Underlay {
    pub fn new(base: &str, root_addrs: &[&str]) -> Underlay {
        let u = Netns::new(&format!("{base}u"));
        quiet_ipv6(&u);
        u.ip(&["link", "add", "ub", "type", "bridge"]);
        u.ip(&["link", "set", "ub", "up"]);
        let root_dev = format!("{base}r");
        let root = Link::veth(&root_dev, "ur", Some(&u));
        u.ip(&["link", "set", "ur", "master", "ub", "up"]);
        super::cmd::ok(&["ip", "link", "set", &root_dev, "up"]);
        let addrs = root_addrs
            .iter()
            .map(|a| RootAddr::add(&root_dev, &format!("{a}/24")))
            .collect();
        Underlay {
            u,
            _root: root,
            _addrs: addrs,
            n: 0,
        }
    }

    /// A veth from the underlay bridge into `ns`, named `dev` there, with
    /// `addr`; returns its name on the underlay side.
    pub fn attach(&mut self, ns: &Netns, dev: &str, addr: &str) -> String {
        let here = format!("up{}", self.n);
        self.n += 1;
        self.u.ip(&[
            "link", "add", &here, "type", "veth", "peer", "name", dev, "netns", &ns.name,
        ]);
        self.u.ip(&["link", "set", &here, "master", "ub", "up"]);
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
        here
    }
}
