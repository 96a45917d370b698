#!/usr/bin/env python3
"""The controller's phone-home receiver, for tests.

Listens on 127.0.0.1 (port 0, written to --port-file once bound) and records
every POST as one JSON line in --record:

    {"path": ..., "headers": {...}, "body": <body text>,
     "signature_ok": true|false|null}

signature_ok compares X-Firstboot-Signature with "sha256=" + the hex
HMAC-SHA256 of the raw body keyed with --token (null without --token).

Answers to POSTs on --path (default /callback):
    --mode ok          200 (after --fail-first N answers of --fail-status)
    --mode fail        --fail-status (default 500) always
    --mode hang        never answers; the request is dropped when the client
                       closes its end or the server stops
    --mode redirect    --fail-status (default 500; give 301, 302, 303, 307 or
                       308) with Location: --location (default /moved),
                       after --fail-first N of them 200 (N 0: always)
POSTs to --location are recorded and answered 200, so a client that
followed a redirect would count it as delivered; POSTs to any other path
are recorded and answered 404. GET /health answers 200 for readiness
checks; every other GET is recorded (as {"method": "GET", "path": ...})
and answered 200 when it asks for --location, else 404. SIGTERM and SIGINT stop the server promptly, hung
requests included. Python 3 standard library only.
"""

import argparse
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.posts = 0

    def record(self, entry):
        if not self.args.record:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            with open(self.args.record, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()

    def next_post(self):
        with self.lock:
            self.posts += 1
            return self.posts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "firstboot-test-receiver/1"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        sys.stderr.write("receiver: %s %s\n" % (self.address_string(), format % args))

    def reply(self, status, text=""):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, "ok\n")
            return
        st = self.server.state
        st.record({"method": "GET", "path": self.path, "headers": dict(self.headers.items())})
        if self.path == st.args.location:
            self.reply(200, "moved here\n")
        else:
            self.reply(404, "not found\n")

    def redirect(self, status):
        data = b"moved\n"
        self.send_response(status)
        self.send_header("Location", self.server.state.args.location)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_POST(self):
        st = self.server.state
        try:
            raw = self.read_body()
        except ValueError as e:
            self.reply(400, "%s\n" % e)
            return
        sig_ok = None
        if st.args.token is not None:
            want = "sha256=" + hmac.new(st.args.token.encode(), raw, hashlib.sha256).hexdigest()
            got = self.headers.get("X-Firstboot-Signature", "")
            sig_ok = hmac.compare_digest(want.encode(), got.encode())
        st.record({
            "method": "POST",
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": raw.decode("utf-8", errors="replace"),
            "signature_ok": sig_ok,
        })
        if self.path == st.args.location and self.path != st.args.path:
            self.reply(200, "moved here\n")
            return
        if self.path != st.args.path:
            self.reply(404, "no such callback\n")
            return
        n = st.next_post()
        if st.args.mode == "hang":
            self.hang()
        elif st.args.mode == "redirect":
            if st.args.fail_first == 0 or n <= st.args.fail_first:
                self.redirect(st.args.fail_status)
            else:
                self.reply(200, "recorded\n")
        elif st.args.mode == "fail" or n <= st.args.fail_first:
            self.reply(st.args.fail_status, "failing on purpose\n")
        else:
            self.reply(200, "recorded\n")

    def hang(self):
        """Holds the request unanswered until the client closes its end or the
        server stops; polls so neither waits long."""
        conn = self.connection
        while not self.server.state.stop.is_set():
            try:
                readable, _, _ = select.select([conn], [], [], 0.1)
                if readable and not conn.recv(1, socket.MSG_PEEK):
                    break
            except (OSError, ValueError):
                break
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--record", help="append one JSON line per POST here")
    p.add_argument("--token", help="HMAC key the signature is checked against")
    p.add_argument("--mode", choices=("ok", "fail", "hang", "redirect"), default="ok")
    p.add_argument("--fail-first", type=int, default=0, metavar="N",
                   help="answer the first N callbacks with --fail-status")
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--path", default="/callback", help="the callback path (others get 404)")
    p.add_argument("--location", default="/moved",
                   help="where --mode redirect points (answered 200)")
    args = p.parse_args()

    server = Server(("127.0.0.1", 0), Handler)
    server.state = State(args)
    stopping = threading.Event()

    def on_signal(_signo, _frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    write_port_file(args.port_file, server.server_address[1])

    while not stopping.wait(0.2):
        pass
    server.state.stop.set()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
