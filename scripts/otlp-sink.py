"""A do-nothing OTLP/HTTP collector for benchmarks: answers every export
with 200 and counts requests and bytes (printed on each export), so the
services' trace export can be measured without a real collector.

  python3 scripts/otlp-sink.py 4318 &
  BENCH_EXTRA_ENV=OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
    BENCH_STACKS=real scripts/bench.sh --bookings 5000 --flow-bookings 0
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        received["requests"] += 1
        received["bytes"] += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        print(received, flush=True)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
