#!/usr/bin/env python3
"""A model server whose every prediction takes a while: for the tests of
draining. GET /health answers 200; POST /predict reads its body, waits
--delay-ms, then answers {"predictions": [0]}. HTTP/1.1 keep-alive, a
thread per connection. It has no shutdown of its own: SIGTERM ends it at
once, with whatever it was serving, so a request still in flight when the
daemon stops an instance fails, and a test sees it.

Usage: slow_model.py --port PORT [--delay-ms MS]"""
import argparse
import http.server
import json
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 0.3

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"status": "ok"})
        else:
            self.answer(404, {"error": "not_found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        time.sleep(self.delay)
        self.answer(200, {"predictions": [0]})

    def log_message(self, fmt, *args):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay-ms", type=int, default=300)
    a = p.parse_args()
    Handler.delay = a.delay_ms / 1000.0
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
