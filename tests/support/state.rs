//! The switch-state reader: `vswitchctl --json show` / `stats` / `fdb
//! show` and the Prometheus scrape, parsed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use super::cmd::text;
use super::switchd::Switchd;
use super::wait::{PATIENCE, wait_for};

/// A JSON string's text, empty for anything else.
fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A port of `vswitchctl --json show` / `stats` output, by name; panics
/// if it is not there.
pub fn port_json<'a>(v: &'a Value, name: &str) -> &'a Value {
    let ports = v
        .get("ports")
        .and_then(|p| p.as_array())
        .unwrap_or_else(|| panic!("no ports in {v}"));
    ports
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {v}"))
}

/// The `show` entry of port `name`, if the switch lists it.
pub fn port_info(sw: &Switchd, name: &str) -> Option<Value> {
    let show = sw.ctl_json(&["show"]);
    show["ports"]
        .as_array()
        .expect("show: ports array")
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

/// The state (`up`, `down`, `link-down`, `gone`) of port `name`.
pub fn port_state(sw: &Switchd, name: &str) -> Option<String> {
    port_info(sw, name).map(|p| text_of(&p["state"]))
}

/// The switch's ports as (name, kind), in `show` order.
pub fn port_kinds(sw: &Switchd) -> Vec<(String, String)> {
    sw.ctl_json(&["show"])["ports"]
        .as_array()
        .expect("show: ports array")
        .iter()
        .map(|p| (text_of(&p["name"]), text_of(&p["kind"])))
        .collect()
}

/// The names of the switch's ports, sorted.
pub fn port_names(sw: &Switchd) -> Vec<String> {
    let mut v: Vec<String> = port_kinds(sw).into_iter().map(|(n, _)| n).collect();
    v.sort();
    v
}

/// Waits until vswitchd shows every port in `ports` as `up`. A TAP that
/// was down while being moved into its namespace makes writes fail with
/// EIO; vswitchd then marks the port `link-down` and retries about once a
/// second, so a test must not send before this settles.
pub fn wait_ports_up(sw: &Switchd, ports: &[String]) {
    let ok = wait_for(PATIENCE, || {
        let s = sw.ctl_json(&["show"]);
        ports.iter().all(|p| port_json(&s, p)["state"] == "up")
    });
    assert!(
        ok.is_some(),
        "ports {ports:?} not all up: {}\n{}",
        sw.ctl_json(&["show"]),
        sw.log_text()
    );
}

/// A drop counter of a port (`counters.drops[reason]`), 0 when absent.
pub fn drops(v: &Value, port: &str, reason: &str) -> u64 {
    port_json(v, port)["counters"]["drops"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// `fdb show --json` as (mac, port, static) triples.
pub fn fdb(sw: &Switchd) -> Vec<(String, String, bool)> {
    sw.ctl_json(&["fdb", "show"])
        .as_array()
        .expect("fdb show: array")
        .iter()
        .map(|e| {
            let is_static = e["static"].as_bool().unwrap_or(false);
            (
                text_of(&e["mac"]).to_lowercase(),
                text_of(&e["port"]),
                is_static,
            )
        })
        .collect()
}

/// Where the FDB puts `mac`, if anywhere: (port, static).
pub fn fdb_port_of(sw: &Switchd, mac: &str) -> Option<(String, bool)> {
    let mac = mac.to_lowercase();
    fdb(sw)
        .into_iter()
        .find(|(m, _, _)| *m == mac)
        .map(|(_, p, s)| (p, s))
}

/// Whether the FDB has any entry on `port`.
pub fn fdb_has_port(sw: &Switchd, port: &str) -> bool {
    fdb(sw).iter().any(|(_, p, _)| p == port)
}

/// MACs the switch has in its FDB on `port` (`fdb show --port`).
pub fn fdb_macs(sw: &Switchd, port: &str) -> Vec<String> {
    let v = sw.ctl_json(&["fdb", "show", "--port", port]);
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["mac"].as_str().map(str::to_lowercase))
        .collect()
}

/// What the switch says about itself, for failure messages.
pub fn dump(sw: &Switchd) -> String {
    format!(
        "--- vswitchctl show\n{}--- vswitchctl fdb show\n{}--- vswitchd log\n{}",
        text(&sw.ctl(&["show"])),
        text(&sw.ctl(&["fdb", "show"])),
        sw.log_text()
    )
}

/// One HTTP/1.1 request; returns (status code, head, body).
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: vswitch-e2e\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, head.to_string(), body.to_string())
}

/// Sample values of one Prometheus scrape, keyed `name{labels}` as
/// exported.
pub struct Scrape(pub HashMap<String, f64>);

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut m = HashMap::new();
        for l in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            m.insert(k.to_string(), v.parse::<f64>().expect("sample value"));
        }
        Scrape(m)
    }

    /// A per-port sample of `family`.
    pub fn port(&self, family: &str, port: &str) -> f64 {
        self.get(&format!("{family}{{port=\"{port}\"}}"))
    }

    /// A port's drop counter for `reason`, 0 when absent.
    pub fn drops(&self, port: &str, reason: &str) -> f64 {
        let k = format!("vswitchd_port_drops_total{{port=\"{port}\",reason=\"{reason}\"}}");
        self.0.get(&k).copied().unwrap_or(0.0)
    }

    pub fn get(&self, k: &str) -> f64 {
        *self.0.get(k).unwrap_or_else(|| panic!("no sample {k}"))
    }
}

/// `GET /metrics` from `addr` (must answer 200): the text and its samples.
pub fn scrape(addr: &str) -> (String, Scrape) {
    let (code, head, body) = http(addr, "GET", "/metrics");
    assert_eq!(code, 200, "{head}");
    let s = Scrape::parse(&body);
    (body, s)
}
