#!/usr/bin/python3
"""An example HTTP endpoint for fleetcore's http rule actions (a webhook).

A topic rule destination must be confirmed by the endpoint it names before any rule sends
there, as on AWS IoT. fleetcore POSTs a confirmation request to
{confirmationUrl}/?confirmationToken=... with the header
x-amz-rules-engine-message-type: DestinationConfirmation and a JSON body
{"arn", "confirmationToken", "enableUrl", "messageType"}. This endpoint prints the
destination's ARN and enableUrl, so its owner can confirm by opening the enableUrl (or
passing the token to `fleetctl confirm-topic-rule-destination`); with --confirm it opens
the enableUrl itself, as a webhook that trusts whoever may create rules would. Every other
request is a rule's output and is printed as a line "POST <path> <body>".

  tools/examples/webhook_receiver.py --port 8090 [--confirm]

Standard library only. Answers 200 to everything.
"""
import argparse
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None


def confirm(enable_url):
    """Opens the enableUrl (after the confirmation request has been answered)."""
    try:
        with urllib.request.urlopen(enable_url, timeout=10) as answer:
            print(f"  {answer.read().decode().strip()}", flush=True)
    except OSError as e:
        print(f"  could not confirm: {e}", flush=True)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *unused):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.headers.get("x-amz-rules-engine-message-type") == "DestinationConfirmation":
            request = json.loads(body)
            print(f"confirmation request for {request['arn']}", flush=True)
            print(f"  enableUrl: {request.get('enableUrl', '(none)')}", flush=True)
            if args.confirm and request.get("enableUrl"):
                threading.Timer(0.1, confirm, [request["enableUrl"]]).start()
        else:
            print(f"POST {self.path} {body}", flush=True)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


def main():
    global args
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--confirm", action="store_true",
                        help="open each confirmation request's enableUrl")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
