#!/usr/bin/python3
"""A small HTTP(S) server for tests of fleetcore's outbound calls (authorizers, hooks, rules).

    http_test_server.py [--tls-cert C --tls-key K] [--log FILE]

Prints "listening on PORT" once ready (it binds 127.0.0.1:0). Every request is answered
according to its query string, so one server serves every case of a test:

    ?status=503              the status (default 200)
    ?delay=2.5               seconds to wait before answering
    ?body_b64=...            the response body, base64 (default: {"ok":true})
    ?echo=1                  the body is a JSON echo of the request (method, path, headers, body)
    ?trickle=1               send headers, then the body one byte per second, forever

With --log, each request is appended to FILE as one JSON line: method, path, headers, body.
"""
import argparse
import base64
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

args = None
log_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *unused):
        pass

    def handle_any(self):
        length = int(self.headers.get("content-length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        record = {"method": self.command, "path": self.path,
                  "headers": {k.lower(): v for k, v in self.headers.items()},
                  "body": body.decode("utf-8", "replace")}
        if args.log:
            with log_lock, open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")
        if "delay" in query:
            time.sleep(float(query["delay"]))
        status = int(query.get("status", "200"))
        if query.get("echo"):
            payload = json.dumps(record).encode()
        elif "body_b64" in query:
            payload = base64.b64decode(query["body_b64"])
        else:
            payload = b'{"ok":true}'
        if query.get("trickle"):
            self.send_response(status)
            self.send_header("content-length", "1000000")
            self.end_headers()
            while True:
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--log")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
