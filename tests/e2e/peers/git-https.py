#!/usr/bin/env python3
"""A git server over HTTPS with a token, for tests.

Listens on 127.0.0.1 (port 0, written to --port-file once bound) with TLS
(--cert, --key) and serves the repositories under --root through git's
own `git http-backend` (a CGI program: GIT_PROJECT_ROOT, GIT_HTTP_EXPORT_ALL,
PATH_INFO, QUERY_STRING, REQUEST_METHOD, CONTENT_TYPE, REMOTE_USER and the
request's headers as HTTP_*, per git's Documentation/git-http-backend.txt).

Every request must carry HTTP Basic authentication with the user
x-access-token and the password in --token-file (a file: a token on
this server's own command line would show in the process list); any other is answered 401 with
WWW-Authenticate: Basic (so git asks its askpass helper) and counted in
--record as {"auth": false}. On each authenticated request the process
list (`ps -eo args`, every process's command line) is appended to --ps,
taken while the client is waiting: a token on a command line shows there.
Python 3 standard library only.
"""

import argparse
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--ps", required=True)
    a = ap.parse_args()
    token = open(a.token_file).read()
    want = "Basic " + base64.b64encode(("x-access-token:" + token).encode()).decode()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def record(self, ok):
            with open(a.record, "a") as f:
                f.write(json.dumps({"auth": ok, "path": self.path}) + "\n")

        def handle_any(self):
            if self.headers.get("Authorization") != want:
                self.record(False)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.record(True)
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            with open(a.ps, "a") as f:
                f.write(ps)
            path, _, query = self.path.partition("?")
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": a.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "x-access-token",
                "REMOTE_ADDR": self.client_address[0],
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.0",
            }
            for k, v in self.headers.items():
                if k.lower() not in ("authorization", "content-type", "content-length"):
                    env["HTTP_" + k.upper().replace("-", "_")] = v
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, rest = out.partition(b"\r\n\r\n")
            if not _:
                head, _, rest = out.partition(b"\n\n")
            status, headers = 200, []
            for line in head.decode("latin-1").splitlines():
                k, _, v = line.partition(":")
                if k.lower() == "status":
                    status = int(v.split()[0])
                elif k:
                    headers.append((k, v.strip()))
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(rest)))
            self.end_headers()
            self.wfile.write(rest)

        do_GET = handle_any
        do_POST = handle_any

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
