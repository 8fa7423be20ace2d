#!/usr/bin/python3
"""Helpers for benches/compare.sh (Python standard library only).

  compare_report.py iperf FILE.json        -> "<Gbit/s received>"
  compare_report.py ping FILE.txt          -> "<median µs> <p99 µs> <received> <sent>"
  compare_report.py trafgen FILE.txt       -> "<packets trafgen reports>"
  compare_report.py fdb FILE.json          -> "<fdb_entries>"
  compare_report.py report RAW.tsv META.json OUTDIR
      -> OUTDIR/results.json, results.md, plot.svg; prints the markdown

RAW.tsv holds lines "peer<TAB>key<TAB>value" written while the run goes.
"""

import json
import math
import os
import re
import sys
from html import escape

# Order of rows in tables and plot, and how each is named for a reader.
PEERS = [
    ("bridge", "Linux bridge"),
    ("bare", "bare TAP forwarder"),
    ("bare-drain", "bare forwarder, poll + drain"),
    ("bare-uring", "bare forwarder, io_uring"),
    ("vswitchd", "vswitchd"),
    ("vswitchd-64p", "vswitchd, 64 ports"),
    ("vswitchd-100k", "vswitchd, 100k MACs"),
    ("vswitchd-busy", "vswitchd --busy-poll 20000"),
    ("ovs", "OVS userspace"),
    ("vde", "VDE"),
]
NAMES = dict(PEERS)
# The peers the report gives a table of ratios to.
REFS = [("bridge", "Linux bridge"), ("bare", "bare TAP forwarder"),
        ("bare-drain", "bare drain forwarder (poll + read until EAGAIN)")]

# (key, column title, digits, better: "up" = higher is better)
METRICS = [
    ("tcp1_gbps", "TCP 1 stream Gbit/s", 2, "up"),
    ("tcp4_gbps", "TCP 4 streams Gbit/s", 2, "up"),
    ("udp_offered_mpps", "64B offered Mpps (attempts)", 3, "up"),
    ("udp_rx_mpps", "64B received Mpps", 3, "up"),
    ("rtt_median_us", "RTT median µs", 1, "down"),
    ("rtt_p99_us", "RTT p99 µs", 1, "down"),
    ("rtt1ms_median_us", "RTT median µs, pings 1 ms apart", 1, "down"),
    ("cpu_pct_per_gbps", "CPU % per Gbit/s (TCP 1)", 2, "down"),
    ("cpu_pct_per_mpps", "CPU % per Mpps (64B)", 1, "down"),
    ("idle_cpu_pct", "idle CPU %", 2, "down"),
]


def percentile(xs, p):
    """Nearest-rank percentile of a sorted list."""
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, math.ceil(p / 100.0 * len(xs)) - 1))
    return xs[k]


def cmd_iperf(path):
    with open(path) as f:
        j = json.load(f)
    if "error" in j:
        raise SystemExit(f"iperf3: {j['error']}")
    bps = j["end"]["sum_received"]["bits_per_second"]
    print(f"{bps / 1e9:.4f}")


def cmd_ping(path):
    times = []
    sent = 0
    with open(path) as f:
        for line in f:
            m = re.search(r"time=([0-9.]+) ms", line)
            if m:
                times.append(float(m.group(1)) * 1000.0)
            m = re.search(r"(\d+) packets transmitted", line)
            if m:
                sent = int(m.group(1))
    times.sort()
    if not times:
        print(f"nan nan 0 {sent}")
        return
    n = len(times)
    median = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
    print(f"{median:.1f} {percentile(times, 99):.1f} {n} {sent}")


def cmd_trafgen(path):
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.findall(r"(\d+) packets outgoing", text)
    print(m[-1] if m else "0")


def cmd_fdb(path):
    with open(path) as f:
        j = json.load(f)

    def find(o):
        if isinstance(o, dict):
            if "fdb_entries" in o:
                return o["fdb_entries"]
            for v in o.values():
                r = find(v)
                if r is not None:
                    return r
        elif isinstance(o, list):
            for v in o:
                r = find(v)
                if r is not None:
                    return r
        return None

    r = find(j)
    print(r if r is not None else "nan")


# ---------------------------------------------------------------- report


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def load_raw(path):
    """Per peer, key -> value; a key recorded several times (repetitions)
    becomes the median, and the list is kept under "<key>_runs"."""
    peers = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            peer, key, val = parts
            d = peers.setdefault(peer, {})
            try:
                v = float(val)
                v = v if math.isfinite(v) else None
                d.setdefault(key + "_runs", []).append(v)
            except ValueError:
                d[key] = val
    for d in peers.values():
        for k in [k for k in d if k.endswith("_runs")]:
            runs = d[k]
            good = [v for v in runs if v is not None]
            d[k[: -len("_runs")]] = median(good) if good else None
            if len(runs) == 1:
                del d[k]
    return peers


def derive(d):
    """Rates and CPU-per-unit figures from the raw counters of one peer."""
    def num(k):
        v = d.get(k)
        return v if isinstance(v, (int, float)) else None

    dur = num("udp_seconds")
    if dur:
        for src, dst in (("udp_offered", "udp_offered_mpps"), ("udp_rx", "udp_rx_mpps")):
            if num(src) is not None:
                d[dst] = num(src) / dur / 1e6
        if num("udp_nft") is not None:
            d["udp_nft_mpps"] = num("udp_nft") / dur / 1e6
    for t in ("tcp1", "tcp4"):
        c, g = num(f"{t}_cpu"), num(f"{t}_gbps")
        if c is not None:
            d[f"{t}_cpu_pct"] = 100.0 * c
            if g:
                d[f"{t}_cpu_pct_per_gbps"] = 100.0 * c / g
    if num("tcp1_cpu_pct_per_gbps") is not None:
        d["cpu_pct_per_gbps"] = d["tcp1_cpu_pct_per_gbps"]
    c, r = num("udp_cpu"), num("udp_rx_mpps")
    if c is not None:
        d["udp_cpu_pct"] = 100.0 * c
        if r:
            d["cpu_pct_per_mpps"] = 100.0 * c / r
    c = num("idle_cpu")
    if c is not None:
        d["idle_cpu_pct"] = 100.0 * c


def fmt(v, digits):
    if v is None or not isinstance(v, (int, float)):
        return "—"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return None
    return a / b


def ok_peers(peers):
    return [(k, n) for k, n in PEERS if peers.get(k, {}).get("status") == "ok"]


def targets(peers):
    """The issue's targets, reported (not asserted)."""
    g = lambda p, k: peers.get(p, {}).get(k) if peers.get(p, {}).get("status") == "ok" else None
    out = []

    def add(name, value, goal, met):
        out.append({"target": name, "value": value, "goal": goal, "unit": "ratio",
                    "met": None if value is None else met(value)})

    r = ratio(g("vswitchd", "tcp1_gbps"), g("bridge", "tcp1_gbps"))
    add("TCP 1 stream vs Linux bridge", r, "≥ 0.80×", lambda v: v >= 0.8)
    r = ratio(g("vswitchd", "udp_rx_mpps"), g("bare", "udp_rx_mpps"))
    add("64B received vs bare forwarder", r, "≥ 0.95×", lambda v: v >= 0.95)
    # The bar: a single-thread poll(2) forwarder draining each TAP
    # until EAGAIN (benches/bare_drain.rs), as a newcomer would write one.
    r = ratio(g("vswitchd", "udp_rx_mpps"), g("bare-drain", "udp_rx_mpps"))
    add("64B vs bare drain (poll + read until EAGAIN)", r, "≥ 1.00×", lambda v: v >= 1.0)
    add("Stretch: 64B vs bare drain", r, "≥ 1.20×", lambda v: v >= 1.2)
    r = ratio(g("bare-uring", "udp_rx_mpps"), g("bare", "udp_rx_mpps"))
    add("Stretch, batched I/O: io_uring bare forwarder vs bare forwarder, 64B received "
        "(vswitchd reads busy TAPs through io_uring too: see the interleaved test)", r, "> 1.00×", lambda v: v > 1.0)
    r = ratio(g("vswitchd", "udp_rx_mpps"), g("vde", "udp_rx_mpps"))
    add("64B received vs VDE", r, "≥ 1.00×", lambda v: v >= 1.0)
    r = ratio(g("vswitchd", "rtt_median_us"), g("vde", "rtt_median_us"))
    add("RTT median vs VDE", r, "≤ 1.00×", lambda v: v <= 1.0)
    r = ratio(g("vswitchd-busy", "rtt_median_us"), g("vde", "rtt_median_us"))
    add("RTT median vs VDE, vswitchd --busy-poll 20000", r, "≤ 1.00×", lambda v: v <= 1.0)
    r = ratio(g("vswitchd", "rtt1ms_median_us"), g("vde", "rtt1ms_median_us"))
    add("RTT median vs VDE, pings 1 ms apart (no idle wake-ups)", r, "≤ 1.00×", lambda v: v <= 1.0)
    for p, label in (("vswitchd-64p", "64 ports"), ("vswitchd-100k", "100k MACs")):
        for k, what in (("tcp1_gbps", "TCP 1 stream"), ("udp_rx_mpps", "64B received")):
            r = ratio(g(p, k), g("vswitchd", k))
            add(f"{label}: {what} vs 2 ports/few MACs", r, "≥ 0.90× (loses < 10 %)",
                lambda v: v >= 0.9)
    for p in ("vswitchd", "vswitchd-busy"):
        v = g(p, "idle_cpu_pct")
        out.append({"target": f"{NAMES[p]} idle CPU % (10 s)", "value": v, "goal": "≈ 0",
                    "unit": "%", "met": None if v is None else v < 0.5})
    return out


def markdown(meta, peers, tg):
    rows = ok_peers(peers)
    L = []
    L.append(f"### Side-by-side run {meta.get('date', '?')}")
    L.append("")
    L.append(
        f"Host: {meta.get('cpu', '?')}, {meta.get('ncpu', '?')} CPUs, kernel {meta.get('kernel', '?')}. "
        f"Load average (1/5/15 min) before: {meta.get('load_before', '?')}, after: {meta.get('load_after', '?')}. "
        f"{meta.get('duration', '?')} s per throughput test, median of {meta.get('repeat', 1)} runs; "
        f"{meta.get('pings', '?')} pings at 10 ms. "
        f"Switch processes pinned to CPU 1, trafgen to CPU 0; switches and generators at nice {meta.get('nice', 0)}."
    )
    L.append("")
    head = "| | " + " | ".join(t for _, t, _, _ in METRICS) + " |"
    sep = "|---|" + "---:|" * len(METRICS)
    L += [head, sep]
    for k, n in rows:
        d = peers[k]
        L.append(f"| {n} | " + " | ".join(fmt(d.get(m), dg) for m, _, dg, _ in METRICS) + " |")
    for k, n in PEERS:
        st = peers.get(k, {}).get("status")
        if st is not None and st != "ok":
            L.append(f"| {n} | " + " | ".join("—" for _ in METRICS) + " |")
    L.append("")
    for ref, title in REFS:
        if peers.get(ref, {}).get("status") != "ok":
            continue
        L.append(f"Ratio to the {title} (throughput: > 1 is faster; RTT and CPU: < 1 is better):")
        L.append("")
        L += [head, sep]
        for k, n in rows:
            cells = []
            for m, _, _, _ in METRICS:
                r = ratio(peers[k].get(m), peers[ref].get(m))
                cells.append("—" if r is None else f"{r:.2f}×")
            L.append(f"| {n} | " + " | ".join(cells) + " |")
        L.append("")
    skipped = [(n, peers[k]["status"]) for k, n in PEERS
               if k in peers and peers[k].get("status") not in (None, "ok")]
    if skipped:
        L.append("Not measured: " + "; ".join(f"{n}: {s}" for n, s in skipped) + ".")
        L.append("")
    L.append("Targets (reported, not asserted):")
    L.append("")
    L.append("| target | goal | measured | met |")
    L.append("|---|---|---:|---|")
    for t in tg:
        v = t["value"]
        if v is None:
            val, met = "—", "n/a"
        elif t.get("unit") == "%":
            val, met = f"{v:.2f} %", "yes" if t["met"] else "**no**"
        else:
            val, met = f"{v:.2f}×", "yes" if t["met"] else "**no**"
        L.append(f"| {t['target']} | {t['goal']} | {val} | {met} |")
    L.append("")
    extra = []
    for k, n in rows:
        d = peers[k]
        bits = []
        if isinstance(d.get("udp_nft_mpps"), float):
            bits.append(f"64B at the receiver's nft hook {d['udp_nft_mpps']:.3f} Mpps")
        if isinstance(d.get("udp_trafgen"), float):
            bits.append(f"trafgen sent {int(d['udp_trafgen'])} frames in all")
        runs = d.get("tcp1_gbps_runs")
        if runs and None not in runs:
            bits.append(f"TCP 1 stream runs {min(runs):.2f}–{max(runs):.2f} Gbit/s")
        rx, secs = d.get("udp_rx_runs"), d.get("udp_seconds_runs")
        if rx and secs and len(rx) == len(secs) and None not in rx and None not in secs:
            rates = [a / b / 1e6 for a, b in zip(rx, secs) if b]
            if rates:
                bits.append(f"64B received runs {min(rates):.3f}–{max(rates):.3f} Mpps")
        if isinstance(d.get("tcp4_cpu_pct_per_gbps"), float):
            bits.append(f"CPU {d['tcp4_cpu_pct_per_gbps']:.2f} %/Gbit/s with 4 streams")
        if isinstance(d.get("fdb_before"), float):
            bits.append(f"FDB {int(d['fdb_before'])} entries before the tests, "
                        f"{int(d.get('fdb_after') or 0)} after")
        if isinstance(d.get("rtt1ms_p99_us"), float):
            bits.append(f"RTT p99 with pings 1 ms apart {d['rtt1ms_p99_us']:.0f} µs")
        if isinstance(d.get("rtt_received"), float):
            bits.append(f"{int(d['rtt_received'])}/{int(d.get('rtt_sent') or 0)} pings answered")
        if bits:
            extra.append(f"- {n}: " + "; ".join(bits) + ".")
    if extra:
        L.append("Details:")
        L.append("")
        L += extra
        L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------- SVG plot

COLORS = {
    "bridge": "#4c72b0",
    "bare": "#8c8c8c",
    "bare-drain": "#666666",
    "bare-uring": "#bdbdbd",
    "vswitchd": "#dd8452",
    "vswitchd-64p": "#e6a57a",
    "vswitchd-100k": "#f0c6a6",
    "vswitchd-busy": "#b35806",
    "ovs": "#55a868",
    "vde": "#8172b3",
}

PANELS = [
    ("tcp1_gbps", None, "TCP, 1 stream (Gbit/s, higher is better)", 2),
    ("tcp4_gbps", None, "TCP, 4 streams (Gbit/s, higher is better)", 2),
    ("udp_rx_mpps", "udp_offered_mpps", "64-byte frames received (Mpps; outline = offered attempts)", 3),
    ("rtt_median_us", "rtt_p99_us", "Ping RTT, 10 ms apart: median (µs; tick = p99)", 0),
    ("rtt1ms_median_us", "rtt1ms_p99_us", "Ping RTT, 1 ms apart: median (µs; tick = p99)", 0),
    ("cpu_pct_per_gbps", None, "Switch CPU per Gbit/s, TCP 1 stream (% of a core)", 1),
    ("cpu_pct_per_mpps", None, "Switch CPU per Mpps, 64 B (% of a core)", 0),
    ("idle_cpu_pct", None, "Switch CPU when idle, 10 s (% of a core)", 2),
]


def svg(meta, peers):
    rows = ok_peers(peers)
    pw, ph_row, lab = 480, 22, 150
    ph = 40 + ph_row * max(1, len(rows)) + 10
    cols = 2
    nrow = math.ceil(len(PANELS) / cols)
    W = pw * cols + 20
    H = 60 + nrow * (ph + 10)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="10" y="22" font-size="16" font-weight="bold">vswitchd side by side: '
         f'{escape(str(meta.get("date", "")))}</text>',
         f'<text x="10" y="42" fill="#555">{escape(str(meta.get("cpu", "")))}, kernel '
         f'{escape(str(meta.get("kernel", "")))}, load before {escape(str(meta.get("load_before", "")))}; '
         f'switch on CPU 1, generators on CPU 0</text>']
    for i, (key, key2, title, dg) in enumerate(PANELS):
        x0 = 10 + (i % cols) * pw
        y0 = 60 + (i // cols) * (ph + 10)
        o.append(f'<rect x="{x0}" y="{y0}" width="{pw - 10}" height="{ph}" fill="#fafafa" stroke="#ddd"/>')
        o.append(f'<text x="{x0 + 8}" y="{y0 + 18}" font-weight="bold">{escape(title)}</text>')
        vals = []
        for k, _ in rows:
            for kk in (key, key2):
                v = peers[k].get(kk) if kk else None
                if isinstance(v, (int, float)):
                    vals.append(v)
        vmax = max(vals) if vals else 1.0
        if key2 in ("rtt_p99_us", "rtt1ms_p99_us"):
            # A few-ms p99 would flatten every median: clip the p99 ticks.
            meds = [peers[k].get(key) for k, _ in rows if isinstance(peers[k].get(key), (int, float))]
            if meds:
                vmax = min(vmax, 4 * max(meds))
        vmax = vmax * 1.15 if vmax > 0 else 1.0
        bw = pw - 10 - lab - 70
        for j, (k, n) in enumerate(rows):
            y = y0 + 30 + j * ph_row
            o.append(f'<text x="{x0 + lab - 6}" y="{y + 14}" text-anchor="end">{escape(n)}</text>')
            v = peers[k].get(key)
            if not isinstance(v, (int, float)):
                o.append(f'<text x="{x0 + lab + 4}" y="{y + 14}" fill="#999">n/a</text>')
                continue
            w = max(1.0, bw * v / vmax)
            o.append(f'<rect x="{x0 + lab}" y="{y + 3}" width="{w:.1f}" height="{ph_row - 6}" '
                     f'fill="{COLORS.get(k, "#999")}"/>')
            v2 = peers[k].get(key2) if key2 else None
            end = w
            if isinstance(v2, (int, float)):
                w2 = min(bw * v2 / vmax, bw + 4)
                if key2 == "udp_offered_mpps":
                    o.append(f'<rect x="{x0 + lab}" y="{y + 3}" width="{w2:.1f}" height="{ph_row - 6}" '
                             f'fill="none" stroke="#333" stroke-dasharray="3,2"/>')
                else:
                    o.append(f'<line x1="{x0 + lab + w2:.1f}" x2="{x0 + lab + w2:.1f}" y1="{y + 2}" '
                             f'y2="{y + ph_row - 2}" stroke="#333" stroke-width="2"/>')
                    o.append(f'<line x1="{x0 + lab + w:.1f}" x2="{x0 + lab + w2:.1f}" y1="{y + ph_row / 2}" '
                             f'y2="{y + ph_row / 2}" stroke="#333"/>')
                end = max(w, w2)
            label = f"{v:.{dg}f}"
            if key2 and isinstance(v2, (int, float)):
                label += f" / {v2:.{dg}f}"
            o.append(f'<text x="{x0 + lab + end + 4:.1f}" y="{y + 14}" fill="#333">{label}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def interleaved(path):
    """Medians from benches/interleaved.sh output: {name: (value, ratio to the first)}."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"\s+(\S+): ([\d.]+) \S+ = ([\d.]+)x", line)
                if m:
                    out[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    except OSError:
        pass
    return out


def interleaved_targets(raw):
    """Targets measured in the interleaved and paired tests (the robust
    figures), from the files next to `raw`."""
    raw = os.path.dirname(raw)
    out = []
    pps = interleaved(os.path.join(raw, "interleaved.txt"))
    if "vswitchd" in pps and "bare" in pps:
        r = pps["vswitchd"][0] / pps["bare"][0]
        out.append({"target": "64B received vs bare forwarder, interleaved", "value": r,
                    "goal": "≥ 0.95×", "unit": "ratio", "met": r >= 0.95})
    if "vswitchd" in pps and "bare-drain" in pps:
        r = pps["vswitchd"][0] / pps["bare-drain"][0]
        out.append({"target": "64B vs bare drain, interleaved", "value": r,
                    "goal": "≥ 1.00× (stretch 1.20×)", "unit": "ratio", "met": r >= 1.0})
    rtt = interleaved(os.path.join(raw, "interleaved-rtt.txt"))
    if "vde" in rtt:
        for k, label in (("vswitchd", "vswitchd"), ("vswitchd-busy", "vswitchd --busy-poll 20000")):
            if k in rtt:
                r = rtt[k][0] / rtt["vde"][0]
                out.append({"target": f"RTT median vs VDE, interleaved, {label}", "value": r,
                            "goal": "≤ 1.00×", "unit": "ratio", "met": r <= 1.0})
    paired = interleaved(os.path.join(raw, "paired-rtt.txt"))
    if "vde" in paired and "vswitchd" in paired:
        r = paired["vswitchd"][0] / paired["vde"][0]
        out.append({"target": "RTT median vs VDE, paired (one echo to each in turn)", "value": r,
                    "goal": "≤ 1.00×", "unit": "ratio", "met": r <= 1.0})
    return out


def cmd_report(raw, meta_path, outdir):
    with open(meta_path) as f:
        meta = json.load(f)
    peers = load_raw(raw)
    for d in peers.values():
        derive(d)
    tg = targets(peers) + interleaved_targets(raw)
    ratios = {}
    for ref, _ in REFS:
        if peers.get(ref, {}).get("status") != "ok":
            continue
        ratios[ref] = {
            k: {m: ratio(peers[k].get(m), peers[ref].get(m)) for m, _, _, _ in METRICS}
            for k, _ in ok_peers(peers)
        }
    md = markdown(meta, peers, tg)
    result = {"meta": meta, "metrics": [{"key": m, "title": t, "better": b} for m, t, _, b in METRICS],
              "peers": peers, "ratios": ratios, "targets": tg}
    with open(f"{outdir}/results.json", "w") as f:
        json.dump(result, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    with open(f"{outdir}/results.md", "w") as f:
        f.write(md + "\n")
    with open(f"{outdir}/plot.svg", "w") as f:
        f.write(svg(meta, peers))
    print(md)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "iperf":
        cmd_iperf(*args)
    elif cmd == "ping":
        cmd_ping(*args)
    elif cmd == "trafgen":
        cmd_trafgen(*args)
    elif cmd == "fdb":
        cmd_fdb(*args)
    elif cmd == "report":
        cmd_report(*args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
