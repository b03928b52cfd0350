#!/usr/bin/env python3
"""A peer that is down the worst way: it accepts TCP connections on 127.0.0.1:PORT and never
says a word (no HTTP answer, no SMTP greeting), so every client waits out its own timeout.
For the benchmarks of a dead webhook endpoint and SMTP server (bench-booking.sh NOTIFY=dead).

    blackhole.py PORT
"""
import socket
import sys

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(4096)
held = []
while True:
    conn, _ = server.accept()
    held.append(conn)
