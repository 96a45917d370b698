#!/usr/bin/env python3
"""A cloud metadata service, for tests: the paths firstboot's datasources use.

Listens on 127.0.0.1 (port 0, written to --port-file once bound).

    --provider ec2           IMDSv2: PUT /latest/api/token (needs the header
                             X-aws-ec2-metadata-token-ttl-seconds: 1..21600)
                             returns a token; every GET needs it in
                             X-aws-ec2-metadata-token, else 401.
                             GET /latest/meta-data/instance-id
                             GET /latest/meta-data/local-hostname (404 without
                                 --hostname)
                             GET /latest/user-data (404 without --user-data)
                             GET /latest/meta-data/public-keys/ (lines N=name,
                                 404 without --public-keys) and
                                 /latest/meta-data/public-keys/N/openssh-key
    --provider hetzner       GET /hetzner/v1/metadata (YAML: instance-id,
                                 hostname, public-keys (a list), ...)
                             GET /hetzner/v1/userdata (empty without
                                 --user-data)
    --provider digitalocean  GET /metadata/v1.json (JSON: droplet_id,
                                 hostname, public_keys (a list), ...)
                             GET /metadata/v1/user-data (404 without
                                 --user-data)

For tests of the HTTP client itself, with any provider:
    /_test/status?code=N        answers N
    /_test/echo                 answers 200 with "METHOD BODY"
    /_test/big?n=N[&chunked=1]  answers N bytes (chunked: no Content-Length)
    /_test/sleep?ms=N           answers 200 after N ms
    /_test/redirect?to=URL[&code=N]  answers N (302) with Location: URL

Anything else is 404. --fail-first N answers 500 to the first N requests,
whatever they are. --metadata-body FILE serves FILE's bytes as the metadata
document (hetzner, digitalocean) to test bad metadata. --log FILE gets one
JSON line per request: {"method", "path", "headers", "status"}.
--public-keys FILE: the SSH public keys, one per line (served verbatim,
malformed ones too).
Python 3 standard library only.
"""

import argparse
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.tokens = set()
        self.user_data = None
        if args.user_data is not None:
            with open(args.user_data, "rb") as f:
                self.user_data = f.read()
        self.public_keys = None
        if args.public_keys is not None:
            with open(args.public_keys, encoding="utf-8") as f:
                self.public_keys = [l.rstrip("\n") for l in f if l.strip()]
        self.metadata_body = None
        if args.metadata_body is not None:
            with open(args.metadata_body, "rb") as f:
                self.metadata_body = f.read()

    def count(self):
        with self.lock:
            self.requests += 1
            return self.requests

    def log(self, entry):
        if not self.args.log:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            with open(self.args.log, "a", encoding="utf-8") as f:
                f.write(line)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "firstboot-test-metadata/1"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        sys.stderr.write("metadata: %s %s\n" % (self.address_string(), format % args))

    @property
    def state(self):
        return self.server.state

    def reply(self, status, data=b"", ctype="text/plain"):
        self.state.log(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "status": status,
            }
        )
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        body = self.drain()
        n = self.state.count()
        if n <= self.state.args.fail_first:
            self.reply(500, b"failing on purpose (%d of %d)\n" % (n, self.state.args.fail_first))
            return
        provider = self.state.args.provider
        path, _, query = self.path.partition("?")
        if path.startswith("/_test/"):
            self.test_path(path, urllib.parse.parse_qs(query), body)
        elif provider == "ec2":
            self.ec2(path)
        elif provider == "hetzner":
            self.hetzner(path)
        else:
            self.digitalocean(path)

    def ec2(self, path):
        args = self.state.args
        if self.command == "PUT":
            if path != "/latest/api/token":
                self.reply(404)
                return
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                self.reply(400, b"missing or bad X-aws-ec2-metadata-token-ttl-seconds\n")
                return
            token = secrets.token_urlsafe(32)
            with self.state.lock:
                self.state.tokens.add(token)
            self.reply(200, token.encode())
            return
        if self.command != "GET":
            self.reply(405)
            return
        token = self.headers.get("X-aws-ec2-metadata-token")
        with self.state.lock:
            valid = token in self.state.tokens
        if not valid:
            self.reply(401, b"missing or invalid X-aws-ec2-metadata-token\n")
            return
        if path == "/latest/meta-data/instance-id":
            self.reply(200, args.instance_id.encode())
        elif path == "/latest/meta-data/local-hostname" and args.hostname:
            self.reply(200, args.hostname.encode())
        elif path == "/latest/user-data" and self.state.user_data is not None:
            self.reply(200, self.state.user_data, "application/octet-stream")
        elif path == "/latest/meta-data/public-keys/" and self.state.public_keys is not None:
            names = "\n".join("%d=key-%d" % (i, i) for i in range(len(self.state.public_keys)))
            self.reply(200, names.encode())
        elif (path.startswith("/latest/meta-data/public-keys/") and path.endswith("/openssh-key")
              and self.state.public_keys is not None):
            i = path.split("/")[4]
            if i.isdigit() and int(i) < len(self.state.public_keys):
                self.reply(200, (self.state.public_keys[int(i)] + "\n").encode())
            else:
                self.reply(404)
        else:
            self.reply(404)

    def hetzner(self, path):
        args = self.state.args
        if self.command != "GET":
            self.reply(405)
        elif path == "/hetzner/v1/metadata":
            if self.state.metadata_body is not None:
                body = self.state.metadata_body
            else:
                lines = ["instance-id: %s" % args.instance_id]
                if args.hostname:
                    lines.append("hostname: %s" % args.hostname)
                lines += ["region: eu-central", "availability-zone: fsn1-dc14"]
                if self.state.public_keys is not None:
                    lines.append("public-keys:")
                    lines += ["- %s" % json.dumps(k) for k in self.state.public_keys]
                lines.append("")
                body = "\n".join(lines).encode()
            self.reply(200, body)
        elif path == "/hetzner/v1/userdata":
            self.reply(200, self.state.user_data or b"")
        else:
            self.reply(404)

    def digitalocean(self, path):
        args = self.state.args
        if self.command != "GET":
            self.reply(405)
        elif path == "/metadata/v1.json":
            if self.state.metadata_body is not None:
                body = self.state.metadata_body
            else:
                iid = int(args.instance_id) if args.instance_id.isdigit() else args.instance_id
                doc = {"droplet_id": iid, "region": "fra1"}
                if args.hostname:
                    doc["hostname"] = args.hostname
                if self.state.public_keys is not None:
                    doc["public_keys"] = self.state.public_keys
                body = json.dumps(doc).encode()
            self.reply(200, body, "application/json")
        elif path == "/metadata/v1/user-data" and self.state.user_data is not None:
            self.reply(200, self.state.user_data, "application/octet-stream")
        else:
            self.reply(404)

    def test_path(self, path, q, body):
        def arg(name, default=None):
            return q.get(name, [default])[0]

        if path == "/_test/status":
            self.reply(int(arg("code", "200")))
        elif path == "/_test/echo":
            self.reply(200, self.command.encode() + b" " + body)
        elif path == "/_test/big" and arg("chunked"):
            n = int(arg("n", "0"))
            self.state.log({"method": self.command, "path": self.path,
                            "headers": dict(self.headers.items()), "status": 200})
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while n > 0:
                    k = min(n, 8192)
                    self.wfile.write(b"%x\r\n" % k + b"x" * k + b"\r\n")
                    n -= k
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
        elif path == "/_test/big":
            try:
                self.reply(200, b"x" * int(arg("n", "0")))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
        elif path == "/_test/sleep":
            time.sleep(int(arg("ms", "0")) / 1000)
            try:
                self.reply(200, b"slept")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
        elif path == "/_test/redirect":
            self.state.log({"method": self.command, "path": self.path,
                            "headers": dict(self.headers.items()), "status": int(arg("code", "302"))})
            self.send_response(int(arg("code", "302")))
            self.send_header("Location", arg("to", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(404)

    do_GET = handle_any
    do_PUT = handle_any
    do_POST = handle_any
    do_HEAD = handle_any
    do_DELETE = handle_any


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--provider", required=True, choices=["ec2", "hetzner", "digitalocean"])
    p.add_argument("--instance-id", default="i-0123456789abcdef0")
    p.add_argument("--hostname", default="test-host")
    p.add_argument("--user-data")
    p.add_argument("--metadata-body")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--log")
    p.add_argument("--public-keys")
    args = p.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
