#!/usr/bin/python3
"""An example custom authorizer function for fleetcore (the Lambda of AWS's tutorial).

fleetcore's policy service POSTs AWS IoT's authorizer event to this server:
  {"token": ..., "signatureVerified": true, "protocols": ["mqtt", ...],
   "protocolData": {"mqtt": {"username": ..., "password": <base64>, "clientId": ...}, ...},
   "connectionMetadata": {"id": ...}}
and it answers like AWS's example: a device presenting the shared token may connect as its
client id and use the topics under things/<clientId>/ (an HTTP publisher names its device in
an x-device-id header); any other token is refused.

  tools/examples/custom_authorizer.py --port 8800 --token-file token.txt

Standard library only. Tokens are compared in constant time and never logged.
"""
import argparse
import base64
import hmac
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED_CLIENT = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def policy(region, account, client_id):
    arn = f"arn:aws:iot:{region}:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": f"{arn}:client/{client_id}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": f"{arn}:topic/things/{client_id}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": f"{arn}:topicfilter/things/{client_id}/*"},
        ],
    }


def answer(event, args):
    token = event.get("token") or ""
    mqtt = event.get("protocolData", {}).get("mqtt", {})
    if not token and "password" in mqtt:
        # Devices that cannot set a token header send it as the MQTT password.
        try:
            token = base64.b64decode(mqtt["password"]).decode("utf-8", "replace")
        except ValueError:
            token = ""
    if not hmac.compare_digest(token.encode(), args.token.encode()):
        return {"isAuthenticated": False}
    client_id = mqtt.get("clientId", "")
    if not client_id:
        # HTTP publishers have no MQTT client id: they name their device in a header.
        headers = event.get("protocolData", {}).get("http", {}).get("headers", {})
        client_id = headers.get("x-device-id", "")
    if not ALLOWED_CLIENT.match(client_id):
        return {"isAuthenticated": False}
    return {
        "isAuthenticated": True,
        "principalId": re.sub(r"[^A-Za-z0-9]", "", client_id) or "device",
        "disconnectAfterInSeconds": args.disconnect_after,
        "refreshAfterInSeconds": args.refresh_after,
        "policyDocuments": [json.dumps(policy(args.region, args.account_id, client_id))],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--token", help="the shared token devices present")
    p.add_argument("--token-file", help="read the token from this file instead")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--account-id", default="000000000000")
    p.add_argument("--refresh-after", type=int, default=300)
    p.add_argument("--disconnect-after", type=int, default=3600)
    args = p.parse_args()
    if args.token_file:
        with open(args.token_file) as f:
            args.token = f.read().strip()
    if not args.token:
        p.error("--token or --token-file is required")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            started = time.monotonic()
            try:
                length = int(self.headers.get("content-length", "0"))
                event = json.loads(self.rfile.read(length))
                if not isinstance(event, dict):
                    raise ValueError("event is not an object")
            except ValueError as e:
                self.send_error(400, f"bad event: {e}")
                return
            body = json.dumps(answer(event, args)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            client = event.get("protocolData", {}).get("mqtt", {}).get("clientId", "")
            print(json.dumps({"msg": "authorized", "client_id": client,
                              "authenticated": b'"isAuthenticated": true' in body,
                              "connection": event.get("connectionMetadata", {}).get("id", ""),
                              "ms": round((time.monotonic() - started) * 1000, 2)}),
                  file=sys.stderr, flush=True)

        def log_message(self, fmt, *a):
            pass  # one structured line per request above; none with the token

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
