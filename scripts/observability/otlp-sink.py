#!/usr/bin/env python3
"""A minimal OTLP/HTTP receiver for measurements: accepts POST /v1/traces (protobuf), answers
200 with an empty ExportTraceServiceResponse, and prints the running count of exports and
bytes after each one. It decodes nothing; tests/api/traces.rs has the decoding receiver.

    python3 scripts/observability/otlp-sink.py [PORT]      # default 4318
"""
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        received["requests"] += 1
        received["bytes"] += length
        print(f"otlp-sink: {received['requests']} exports, {received['bytes']} bytes", flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def stop(*_):
    sys.exit(0)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
