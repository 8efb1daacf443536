#!/usr/bin/python3
"""A small HTTP(S) server for tests of fleetcore's outbound calls (authorizers, hooks, rules).

    http_test_server.py [--tls-cert C --tls-key K] [--log FILE] [--s3-key ID --s3-secret S]

Prints "listening on PORT" once ready (it binds 127.0.0.1:0). Every request is answered
according to its query string, so one server serves every case of a test:

    ?status=503              the status (default 200)
    ?delay=2.5               seconds to wait before answering
    ?body_b64=...            the response body, base64 (default: {"ok":true})
    ?echo=1                  the body is a JSON echo of the request (method, path, headers, body)
    ?trickle=1               send headers, then the body one byte per second, forever

With --log, each request is appended to FILE as one JSON line: method, path, headers, body.

With --s3-key and --s3-secret it is an S3-compatible endpoint that checks every request's
AWS Signature V4 the way S3 does, computed here independently of fleetcore's signer (hmac,
hashlib): a missing or wrong signature, or a body that does not match x-amz-content-sha256,
gets S3's 403 error document, and the log line says "signature": "ok" or why not. The
signature may be for any service (an API behind SigV4, for http rule actions), and the log
line has "service". A topic rule destination's confirmation request (header
x-amz-rules-engine-message-type), which nobody signs, passes unchecked.
"""
import argparse
import base64
import hashlib
import hmac
import json
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, quote, urlparse

args = None
log_lock = threading.Lock()


def check_sigv4(method, raw_path, headers, body):
    """"ok", or why S3 would refuse the request."""
    auth = headers.get("authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        return "no SigV4 authorization header"
    key_id, date, region, service, signed, signature = m.groups()
    if key_id != args.s3_key:
        return "unknown access key"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(date):
        return "x-amz-date does not match the credential scope"
    payload_hash = headers.get("x-amz-content-sha256", "")
    if payload_hash != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 does not match the body"
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names or "x-amz-content-sha256" not in names:
        return "host, x-amz-date and x-amz-content-sha256 must be signed"
    path, _, query = raw_path.partition("?")
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_headers = "".join(
        f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in names)
    canonical = "\n".join([method, path, canonical_query, canonical_headers, signed, payload_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + args.s3_secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    want = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return "ok" if hmac.compare_digest(want, signature) else "SignatureDoesNotMatch"


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
        if args.s3_key and "x-amz-rules-engine-message-type" not in record["headers"]:
            headers = {k.lower(): v for k, v in self.headers.items()}
            record["signature"] = check_sigv4(self.command, self.path, headers, body)
            scope = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/", headers.get("authorization", ""))
            record["service"] = scope.group(1) if scope else ""
        if args.log:
            with log_lock, open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")
        if args.s3_key and record.get("signature", "ok") != "ok":
            error = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>"
                     "SignatureDoesNotMatch</Code><Message>" + record["signature"] +
                     "</Message></Error>").encode()
            self.send_response(403)
            self.send_header("content-type", "application/xml")
            self.send_header("content-length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
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
    parser.add_argument("--s3-key")
    parser.add_argument("--s3-secret")
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
