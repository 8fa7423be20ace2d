#!/usr/bin/python3
"""A stand-in for `vswitchd --metrics-addr`: serves GET /metrics with every metric
family vswitchd exports (see docs/metrics.md), with values that grow over time
like a switch carrying traffic. Used to prove the dashboard/alerts/Prometheus
chain without the daemon.

    fake_exporter.py [--listen 127.0.0.1:0] [--port-file FILE]   serve until killed
    fake_exporter.py --once                                        print one scrape, exit

With port 0 the kernel picks a free port; the chosen host:port is printed on
stdout and, with --port-file, written to FILE (atomically) once the socket
listens, so a caller can wait for the file instead of racing for a port.

Process metrics are the real ones of this python process, read from /proc, in
the form the Rust prometheus crate's ProcessCollector produces them (whole CPU
seconds). Standard library only.
"""

import argparse
import http.server
import os
import resource
import sys
import time

VERSION = "0.1.0"
START = time.monotonic()

# name: (up, rx frames/s, mean rx frame bytes, tx frames/s, mean tx frame bytes,
#        share of rx flooded)
PORTS = {
    "tap0": (True, 4200.0, 900, 3900.0, 1100, 0.03),
    "tap1": (True, 3900.0, 1100, 4100.0, 880, 0.02),
    "vm1": (True, 350.0, 180, 330.0, 240, 0.25),
    "vnet3": (False, 0.0, 0, 0.0, 0, 0.0),
    "vxlan:vx100": (True, 600.0, 700, 650.0, 650, 0.1),
}

# Spanning tree: (role, state) per port; the switch is not the root.
STP_PORTS = {
    "tap0": ("root", "forwarding"),
    "tap1": ("alternate", "discarding"),
    "vm1": ("designated", "forwarding"),
    "vnet3": ("disabled", "disabled"),
    "vxlan:vx100": ("designated", "forwarding"),
}
STP_ROLES = ["root", "designated", "alternate", "backup", "disabled"]
STP_STATES = ["discarding", "learning", "forwarding", "disabled"]

# VXLAN: remote VTEPs of the vxlan port and their share of its traffic.
VXLAN_REMOTES = {"198.19.7.2": 0.7, "198.19.7.3": 0.3}
MCAST_MALFORMED = ["ipv4_header", "ipv4_checksum", "ipv6_header", "ipv6_ext_header",
                   "truncated", "checksum", "bad_query", "bad_record"]

FORWARD_REASONS = ["port_down", "runt", "truncated_tag", "invalid_source", "pause_frame",
                   "link_local", "vlan_ingress", "same_segment", "isolated", "no_egress",
                   "stp_blocked", "mcast_malformed", "mdb_full", "storm_broadcast",
                   "storm_multicast", "storm_unknown_unicast", "control_queue_full"]
IO_REASONS = ["queue_full", "too_big", "malformed", "io_error", "link_down"]

# (port, reason): drops/s. Everything else exists at 0 (the exporter is expected
# to pre-create every port x reason series so rate() has something to work on).
DROP_RATES = {
    ("tap0", "link_local"): 0.033,    # LLDP every 30 s
    ("tap1", "queue_full"): 0.8,      # a slow consumer
    ("vm1", "no_egress"): 0.2,        # flooded broadcasts with nowhere to go
    ("vm1", "vlan_ingress"): 0.05,
    ("tap0", "same_segment"): 0.5,
    ("vm1", "runt"): 0.01,
    ("vm1", "storm_broadcast"): 3.0,  # a guest's ARP bursts over its limit
    ("tap1", "stp_blocked"): 0.5,     # the alternate port
}

FDB_CAPACITY = 8192


def family(out, name, mtype, help_, samples):
    out.append(f"# HELP {name} {help_}")
    out.append(f"# TYPE {name} {mtype}")
    for labels, value in samples:
        if labels:
            lab = ",".join(f'{k}="{v}"' for k, v in labels)
            out.append(f"{name}{{{lab}}} {value}")
        else:
            out.append(f"{name} {value}")


def process_metrics(out):
    clk = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as f:
        stat = f.read()
    # Fields after the command name "(...)"; field 3 of proc(5) is index 0 here.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    threads = int(fields[17])
    starttime = int(fields[19])
    vsize = int(fields[20])
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    with open("/proc/stat") as f:
        btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    open_fds = len(os.listdir("/proc/self/fd"))
    max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    ns = "vswitchd_process_"
    family(out, ns + "cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.", [((), (utime + stime) // clk)])
    family(out, ns + "max_fds", "gauge", "Maximum number of open file descriptors.", [((), max_fds)])
    family(out, ns + "open_fds", "gauge", "Number of open file descriptors.", [((), open_fds)])
    family(out, ns + "resident_memory_bytes", "gauge", "Resident memory size in bytes.", [((), rss)])
    family(out, ns + "start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.", [((), starttime // clk + btime)])
    family(out, ns + "threads", "gauge", "Number of OS threads in the process.", [((), threads)])
    family(out, ns + "virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", [((), vsize)])


def render(now=None):
    t = (time.monotonic() if now is None else now) - START
    def count(rate):
        return int(rate * t)

    out = []
    ports = sorted(PORTS)
    family(out, "vswitchd_build_info", "gauge",
           "Build information; the value is always 1.", [((("version", VERSION),), 1)])
    family(out, "vswitchd_config_last_reload_successful", "gauge",
           "1 if the last load of the configuration worked, 0 if the last reload failed.",
           [((), 1)])
    family(out, "vswitchd_config_last_reload_success_timestamp_seconds", "gauge",
           "Unix time of the last successful load of the configuration.",
           [((), int(time.time() - t))])

    fdb_learned = 96 + count(0.4)
    fdb_aged = count(0.35)
    fdb_entries = fdb_learned - fdb_aged + 2  # + 2 static entries
    family(out, "vswitchd_fdb_aged_total", "counter",
           "Learned FDB entries removed because they were not seen for the ageing time.",
           [((), fdb_aged)])
    family(out, "vswitchd_fdb_capacity", "gauge",
           "Maximum number of entries in the FDB.", [((), FDB_CAPACITY)])
    family(out, "vswitchd_fdb_entries", "gauge",
           "Entries in the FDB, learned and static.", [((), fdb_entries)])
    family(out, "vswitchd_fdb_evicted_total", "counter",
           "Learned FDB entries evicted to make room for a new MAC at capacity.", [((), 0)])
    family(out, "vswitchd_fdb_learned_total", "counter",
           "New MAC addresses learned into the FDB.", [((), fdb_learned)])
    family(out, "vswitchd_fdb_moved_total", "counter",
           "FDB entries whose MAC was seen on a different port and moved there.", [((), count(0.02))])
    family(out, "vswitchd_fdb_refused_total", "counter",
           "MAC addresses not learned (static owner, per-port limit, nothing evictable).", [((), 0)])

    drops = []
    for p in ports:
        for r in FORWARD_REASONS + IO_REASONS:
            drops.append(((("port", p), ("reason", r)), count(DROP_RATES.get((p, r), 0.0))))
    family(out, "vswitchd_port_drops_total", "counter",
           "Frames dropped, by port and reason.", drops)
    family(out, "vswitchd_port_flooded_frames_total", "counter",
           "Frames received on the port that were flooded.",
           [((("port", p),), count(PORTS[p][1] * PORTS[p][5])) for p in ports])
    family(out, "vswitchd_port_rx_bytes_total", "counter", "Bytes received on the port.",
           [((("port", p),), count(PORTS[p][1] * PORTS[p][2])) for p in ports])
    family(out, "vswitchd_port_rx_frames_total", "counter", "Frames received on the port.",
           [((("port", p),), count(PORTS[p][1])) for p in ports])
    family(out, "vswitchd_port_tx_bytes_total", "counter", "Bytes sent on the port.",
           [((("port", p),), count(PORTS[p][3] * PORTS[p][4])) for p in ports])
    family(out, "vswitchd_port_tx_frames_total", "counter", "Frames sent on the port.",
           [((("port", p),), count(PORTS[p][3])) for p in ports])
    family(out, "vswitchd_port_up", "gauge", "1 if the port is up, 0 if it is down.",
           [((("port", p),), 1 if PORTS[p][0] else 0) for p in ports])
    family(out, "vswitchd_port_io_uring", "gauge",
           "1 while the port is read through io_uring, 0 while it is polled.",
           [((("port", p),), 1 if PORTS[p][1] > 1000 else 0) for p in ports])
    family(out, "vswitchd_port_punted_frames_total", "counter",
           "Frames received on the port that the control plane took.",
           [((("port", p),), count(0.5) if PORTS[p][0] else 0) for p in ports])
    family(out, "vswitchd_port_forwarded_frames_total", "counter",
           "Frames received on the port that were forwarded.",
           [((("port", p),), max(0, count(PORTS[p][1]) - count(0.5)
                                  - sum(count(DROP_RATES.get((p, r), 0.0)) for r in FORWARD_REASONS)))
            for p in ports])

    # Spanning tree.
    family(out, "vswitchd_stp_port_role", "gauge", "1 for the port's role, 0 for the others.",
           [((("port", p), ("role", r)), int(STP_PORTS[p][0] == r))
            for p in ports for r in STP_ROLES])
    family(out, "vswitchd_stp_port_state", "gauge", "1 for the port's state, 0 for the others.",
           [((("port", p), ("state", st)), int(STP_PORTS[p][1] == st))
            for p in ports for st in STP_STATES])
    family(out, "vswitchd_stp_root_bridge", "gauge", "1 if this switch is the root.", [((), 0)])
    family(out, "vswitchd_stp_root_path_cost", "gauge", "Path cost to the root.", [((), 20000)])
    family(out, "vswitchd_stp_topology_changes_total", "counter",
           "Topology changes this switch saw begin.", [((), 3 + count(0.001))])
    family(out, "vswitchd_stp_bpdus_received_total", "counter", "BPDUs received on the port.",
           [((("port", p),), count(0.5) if PORTS[p][0] else 0) for p in ports])
    family(out, "vswitchd_stp_bpdus_sent_total", "counter", "BPDUs sent on the port.",
           [((("port", p),), count(0.5) if PORTS[p][0] else 0) for p in ports])
    family(out, "vswitchd_stp_bpdus_bad_total", "counter", "Malformed or looped-back BPDUs.",
           [((("port", p),), 0) for p in ports])
    family(out, "vswitchd_stp_bpdu_guard_trips_total", "counter",
           "Times BPDU guard disabled the port.", [((("port", "vnet3"),), 1)])

    # Multicast snooping: an IGMP querier elsewhere, no MLD querier.
    family(out, "vswitchd_mdb_groups", "gauge", "(group, VLAN) entries.", [((), 12)])
    family(out, "vswitchd_mdb_full_total", "counter", "Reports refused: database full.", [((), 0)])
    family(out, "vswitchd_mcast_reports_total", "counter", "Reports received.", [((), count(0.4))])
    family(out, "vswitchd_mcast_leaves_total", "counter", "Leaves received.", [((), count(0.02))])
    family(out, "vswitchd_mcast_queries_total", "counter", "Queries received.", [((), count(1 / 125))])
    family(out, "vswitchd_mcast_queries_sent_total", "counter", "Queries sent.", [((), 0)])
    family(out, "vswitchd_mcast_malformed_total", "counter", "Malformed IGMP/MLD by reason.",
           [((("reason", r),), count(0.01) if r == "checksum" else 0) for r in MCAST_MALFORMED])
    family(out, "vswitchd_mcast_igmp_querier_present", "gauge", "IGMP querier known.", [((), 1)])
    family(out, "vswitchd_mcast_mld_querier_present", "gauge", "MLD querier known.", [((), 0)])

    # VXLAN: the vxlan port's traffic spread over its remotes.
    vx = "vxlan:vx100"
    rows = lambda f: [((("port", vx), ("remote", r)), f(share))
                      for r, share in VXLAN_REMOTES.items()]
    family(out, "vswitchd_vxlan_remote_rx_frames_total", "counter", "Datagrams received.",
           rows(lambda sh: count(PORTS[vx][1] * sh)))
    family(out, "vswitchd_vxlan_remote_rx_bytes_total", "counter", "Inner bytes received.",
           rows(lambda sh: count(PORTS[vx][1] * PORTS[vx][2] * sh)))
    family(out, "vswitchd_vxlan_remote_tx_frames_total", "counter", "Frames sent.",
           rows(lambda sh: count(PORTS[vx][3] * sh)))
    family(out, "vswitchd_vxlan_remote_tx_bytes_total", "counter", "Inner bytes sent.",
           rows(lambda sh: count(PORTS[vx][3] * PORTS[vx][4] * sh)))
    family(out, "vswitchd_vxlan_remote_drops_total", "counter", "Dropped, by reason.",
           [((("port", vx), ("remote", "198.19.7.3"), ("reason", "wrong_vni")), count(0.05))])
    family(out, "vswitchd_vxlan_remote_macs", "gauge", "Inner MAC table entries.",
           [((("port", vx),), 40)])
    family(out, "vswitchd_vxlan_no_remote_frames_total", "counter", "Frames with no remote.",
           [((("port", vx),), 0)])
    family(out, "vswitchd_vxlan_learn_refused_total", "counter", "Inner MACs not learned.",
           [((("port", vx),), 0)])

    # A port mirror, and EVPN on the vxlan port.
    family(out, "vswitchd_mirror_copied_frames_total", "counter", "Mirror copies sent.",
           [((("mirror", "vm1"),), count(250))])
    family(out, "vswitchd_mirror_dropped_frames_total", "counter", "Mirror copies lost.",
           [((("mirror", "vm1"),), count(0.5))])
    family(out, "vswitchd_evpn_gobgp_up", "gauge", "Connected to GoBGP.", [((), 1)])
    family(out, "vswitchd_evpn_gobgp_connects_total", "counter", "Connections to GoBGP.",
           [((), 1)])
    family(out, "vswitchd_evpn_routes_advertised", "gauge", "Routes advertised.",
           [((("port", vx),), 41)])
    family(out, "vswitchd_evpn_routes_received", "gauge", "Remote routes taken.",
           [((("port", vx),), 37)])
    family(out, "vswitchd_evpn_remote_vteps", "gauge", "Remote VTEPs.", [((("port", vx),), 2)])
    process_metrics(out)
    return "\n".join(out) + "\n"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        body = render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description="Fake vswitchd metrics endpoint.")
    ap.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0 = any free port)")
    ap.add_argument("--port-file", help="write the bound host:port here once listening")
    ap.add_argument("--once", action="store_true", help="print one scrape to stdout and exit")
    args = ap.parse_args()

    if args.once:
        global START
        START -= 600  # as if it had been running for 10 minutes
        sys.stdout.write(render())
        return 0

    host, _, port = args.listen.rpartition(":")
    srv = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    srv.daemon_threads = True
    addr = f"{srv.server_address[0]}:{srv.server_address[1]}"
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(addr + "\n")
        os.replace(tmp, args.port_file)
    print(f"fake_exporter: serving http://{addr}/metrics", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
