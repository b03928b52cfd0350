#!/usr/bin/env python3
"""A healthy webhook receiver for the benchmarks: answers every POST on 127.0.0.1:PORT with
204 and counts them (printed on SIGTERM). bench-booking.sh NOTIFY=healthy.

    http_ok.py PORT
"""
import http.server
import signal
import sys

count = 0


class Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("content-length", 0)))
        count += 1
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def stop(*_):
    print(f"webhook receiver: {count} deliveries", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
