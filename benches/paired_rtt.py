#!/usr/bin/env python3
"""ICMP echo round trips to several switches, one echo at a time in turn.

    paired_rtt.py ROUNDS GAP_S NETNS:ADDRESS:NAME ...

Each round sends one echo request to each target in the given order (from a
raw socket opened in the target's network namespace NETNS) and waits for its
reply, then sleeps GAP_S; every switch thus sees a request every
len(targets) * GAP_S seconds and the machine's slow spells hit all alike.
The round trip is the time from just before `sendto` to the reply's kernel
receive timestamp (SO_TIMESTAMPNS), as ping measures it. Prints, per target:
median (µs) and its ratio to the first target's, p10, p99, and the median of
the per-round differences to the first target. Needs root (raw sockets,
setns). Part of benches/paired_rtt.sh.
"""
import ctypes
import os
import socket
import statistics
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = 35
libc = ctypes.CDLL(None, use_errno=True)


def socket_in(netns):
    """A raw ICMP socket in network namespace `netns` (/run/netns/NAME)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(there)
        os.close(home)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.settimeout(1.0)
    return s


def checksum(b):
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo(s, dst, ident, seq):
    """One echo request; its round trip in µs, or None (no reply in 1 s)."""
    payload = bytes(56)
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr + payload), ident, seq) + payload
    t0 = time.time_ns()
    s.sendto(pkt, (dst, 0))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            data, anc, _, _ = s.recvmsg(2048, 64)
        except socket.timeout:
            return None
        ihl = (data[0] & 15) * 4
        typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if typ == 0 and rid == ident and rseq == seq:
            for level, kind, d in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", d[:16])
                    return (sec * 10**9 + nsec - t0) / 1000
            return None
    return None


def main():
    rounds, gap = int(sys.argv[1]), float(sys.argv[2])
    targets = []
    for spec in sys.argv[3:]:
        netns, dst, name = spec.split(":", 2)
        targets.append((name, dst, socket_in(netns)))
    ident = os.getpid() & 0xFFFF
    rtt = {name: [] for name, _, _ in targets}
    paired = []
    for r in range(rounds):
        row = {}
        for name, dst, s in targets:
            v = echo(s, dst, ident, r & 0xFFFF)
            if v is not None:
                row[name] = v
                rtt[name].append(v)
            time.sleep(gap)
        if len(row) == len(targets):
            paired.append(row)
    first = targets[0][0]
    if not rtt[first]:
        sys.exit(f"paired_rtt: no replies from {first}")
    base = statistics.median(rtt[first])
    print(f"paired RTT: {rounds} rounds, one echo to each switch in turn, "
          f"{gap * 1000:.0f} ms apart; ratio to {first}:")
    for name, _, _ in targets:
        v = sorted(rtt[name])
        if not v:
            print(f"  {name}: no replies")
            continue
        m = statistics.median(v)
        diff = statistics.median([p[name] - p[first] for p in paired]) if paired else float("nan")
        print(f"  {name}: {m:.1f} µs = {m / base:.3f}x (p10 {v[len(v) // 10]:.1f}, "
              f"p99 {v[min(len(v) - 1, len(v) * 99 // 100)]:.1f}, {len(v)}/{rounds} replies, "
              f"median difference to {first} {diff:+.1f} µs)")


if __name__ == "__main__":
    main()
