#!/usr/bin/python3
"""Raw Ethernet frames in and out of one interface, for the end-to-end tests
(tests/support/agent.rs drives it; it is the tests' only way to put crafted
frames on a wire and to see the frames a switch sent).

Usage: frame_agent.py IFNAME   (run inside the interface's namespace)

An AF_PACKET socket bound to IFNAME receives every frame that is not its own
outgoing copy, with the VLAN tag the kernel moved to aux data put back in
place, and sends the hex frames it is told to. Prints READY once bound.
Commands on stdin, one a line:
  send HEX   sends the frame; answers OK
  dump       answers "F HEX" per frame received since the last dump, then END
EOF ends the agent.
"""
import errno
import socket
import struct
import sys
import threading
import time

ifname = sys.argv[1]
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.bind((ifname, 0))
lock = threading.Lock()
got = []


def rx():
    while True:
        try:
            data, anc, _flags, addr = s.recvmsg(262144, socket.CMSG_SPACE(64))
        except OSError as e:
            # ENETDOWN: the link went down for a moment; anything else
            # (the interface or namespace is gone): stop quietly.
            if e.errno == errno.ENETDOWN:
                time.sleep(0.05)
                continue
            return
        if addr[0] != ifname or addr[2] == socket.PACKET_OUTGOING:
            continue
        for level, typ, cd in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cd) >= 20:
                status, _l, _s, _m, _n, tci, tpid = struct.unpack("IIIHHHH", cd[:20])
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
        with lock:
            got.append(data.hex())


threading.Thread(target=rx, daemon=True).start()
print("READY", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "send":
        s.send(bytes.fromhex(cmd[1]))
        print("OK", flush=True)
    elif cmd[0] == "dump":
        with lock:
            items = got[:]
            got.clear()
        out = "".join("F " + x + "\n" for x in items)
        sys.stdout.write(out + "END\n")
        sys.stdout.flush()
