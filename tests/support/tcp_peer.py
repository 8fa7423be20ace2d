#!/usr/bin/python3
"""The two ends of one TCP connection, for the end-to-end tests
(tests/support/traffic.rs: tcp_peer). Each end is bounded in time.

  tcp_peer.py listen BIND PORT   accepts one connection (15 s at most),
                                 prints "PEER <address>", sends "hi"
  tcp_peer.py connect DST PORT   connects (retrying for 12 s), prints
                                 "LOCAL <own address>" and "GOT <what came>"
"""
import socket
import sys
import time

mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "listen":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(15)
    c, a = s.accept()
    print("PEER", a[0], flush=True)
    c.sendall(b"hi\n")
    c.close()
elif mode == "connect":
    deadline = time.time() + 12
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=2)
            break
        except OSError as e:
            if time.time() > deadline:
                print("FAIL", e)
                sys.exit(1)
            time.sleep(0.2)
    print("LOCAL", s.getsockname()[0])
    print("GOT", s.recv(64).decode().strip())
else:
    sys.exit("usage: tcp_peer.py listen|connect ADDR PORT")
