#!/usr/bin/python3
"""Minimal hub for QEMU `-netdev stream` peers (reference, not the switch).

Listens on unix stream sockets (one per path given), accepts one QEMU per
socket (again after it disconnects), and copies every frame to every other
connected socket. Wire format, as QEMU 7.2 net/stream.c writes it: a 4-byte
big-endian length, then the Ethernet frame (no vnet header, so no GSO: the
guest's virtio-net gets no offloads and TCP arrives segmented to the MTU).

Usage: stream-hub.py --seconds N SOCKET_PATH...
Exits after N seconds (or SIGTERM/SIGINT), printing per-socket counters and
the largest frame seen on stderr. Creates the sockets before it prints
"READY" on stdout; start QEMU only after that (QEMU connects once).
"""
import argparse
import os
import selectors
import signal
import socket
import struct
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()

    sel = selectors.DefaultSelector()
    conns = {}  # path -> [socket, bytearray buffer]
    stats = {p: {"rx": 0, "tx": 0, "max": 0, "connects": 0} for p in args.paths}
    for p in args.paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(p)
        ls.listen(1)
        sel.register(ls, selectors.EVENT_READ, ("listen", p))
    print("READY", flush=True)

    stop = [False]

    def on_signal(_sig, _frm):
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def drop(p):
        c = conns.pop(p, None)
        if c:
            sel.unregister(c[0])
            c[0].close()

    deadline = time.monotonic() + args.seconds
    while not stop[0] and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            kind, p = key.data
            if kind == "listen":
                s, _ = key.fileobj.accept()
                drop(p)  # a reconnecting QEMU replaces the old connection
                s.setblocking(True)
                conns[p] = [s, bytearray()]
                sel.register(s, selectors.EVENT_READ, ("conn", p))
                stats[p]["connects"] += 1
                continue
            s, buf = conns[p]
            data = s.recv(262144)
            if not data:
                drop(p)
                continue
            buf += data
            while len(buf) >= 4:
                (n,) = struct.unpack(">I", buf[:4])
                if len(buf) < 4 + n:
                    break
                frame = bytes(buf[: 4 + n])
                del buf[: 4 + n]
                stats[p]["rx"] += 1
                stats[p]["max"] = max(stats[p]["max"], n)
                for q, (t, _) in list(conns.items()):
                    if q == p:
                        continue
                    try:
                        t.sendall(frame)
                        stats[q]["tx"] += 1
                    except OSError:
                        drop(q)
    for p in args.paths:
        st = stats[p]
        print(
            f"stream-hub: {p}: connects={st['connects']} rx_frames={st['rx']} "
            f"tx_frames={st['tx']} max_frame={st['max']}",
            file=sys.stderr,
        )
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
