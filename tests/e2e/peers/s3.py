#!/usr/bin/env python3
"""A path-style S3 endpoint on 127.0.0.1 for the backup tests: PUT, GET and
DELETE of /BUCKET/KEY, and ListObjectsV2 (GET /BUCKET/?list-type=2&prefix=
&continuation-token=) answered in S3's documented XML (ListBucketResult with
Contents/Key, IsTruncated, NextContinuationToken), MAX_KEYS keys a page so
the tests reach the second page. Objects live under DIR/BUCKET/KEY.

A simulator, the last resort (no S3 here): it checks that each request is
signed with AWS SigV4 (an Authorization header naming AWS4-HMAC-SHA256 and
x-amz-date/x-amz-content-sha256 present), not that the signature is right;
every request line goes to DIR/requests.log. A file DIR/FAIL holding a
method (PUT, GET, DELETE, LIST) makes those requests answer 500.

Usage: s3.py DIR PORT_FILE [MAX_KEYS]
"""
import http.server
import os
import socketserver
import sys
import urllib.parse
from xml.sax.saxutils import escape

root, port_file = sys.argv[1], sys.argv[2]
max_keys = int(sys.argv[3]) if len(sys.argv) > 3 else 1000


class S3(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def _reply(self, code, body=b"", ctype="application/xml"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _check(self, op):
        with open(os.path.join(root, "requests.log"), "a") as f:
            f.write("%s %s\n" % (op, self.path))
        auth = self.headers.get("Authorization", "")
        signed = auth.split("SignedHeaders=")[-1].split(",")[0].split(";")
        if (not auth.startswith("AWS4-HMAC-SHA256 Credential=") or not self.headers.get("x-amz-date")
                or not self.headers.get("x-amz-content-sha256")
                or "x-amz-content-sha256" not in signed):
            self._reply(403, b"<Error><Code>AccessDenied</Code></Error>")
            return False
        try:
            fail = open(os.path.join(root, "FAIL")).read().split()
        except OSError:
            fail = []
        if op in fail:
            self._reply(500, b"<Error><Code>InternalError</Code></Error>")
            return False
        return True

    def _split(self):
        u = urllib.parse.urlsplit(self.path)
        parts = urllib.parse.unquote(u.path).lstrip("/").split("/", 1)
        bucket = parts[0]
        key = parts[1] if len(parts) > 1 else ""
        if not bucket or ".." in key.split("/"):
            return None, None, None
        return bucket, key, urllib.parse.parse_qs(u.query)

    def do_PUT(self):
        bucket, key, _ = self._split()
        if not self._check("PUT"):
            return
        if not bucket or not key:
            return self._reply(400)
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        path = os.path.join(root, bucket, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(body)
        self._reply(200)

    def do_GET(self):
        bucket, key, q = self._split()
        if bucket is None:
            return self._reply(400)
        if not key and q.get("list-type") == ["2"]:
            if not self._check("LIST"):
                return
            prefix = q.get("prefix", [""])[0]
            start = q.get("continuation-token", [""])[0]
            keys = []
            base = os.path.join(root, bucket)
            for d, _, files in os.walk(base):
                for f in files:
                    k = os.path.relpath(os.path.join(d, f), base)
                    if k.startswith(prefix) and k > start:
                        keys.append(k)
            keys.sort()
            page, more = keys[:max_keys], len(keys) > max_keys
            body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            body += "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            body += "<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount>" % (
                escape(bucket), escape(prefix), len(page))
            body += "<IsTruncated>%s</IsTruncated>" % ("true" if more else "false")
            if more:
                body += "<NextContinuationToken>%s</NextContinuationToken>" % escape(page[-1])
            for k in page:
                body += "<Contents><Key>%s</Key><Size>%d</Size></Contents>" % (
                    escape(k), os.path.getsize(os.path.join(base, k)))
            body += "</ListBucketResult>"
            return self._reply(200, body.encode())
        if not self._check("GET"):
            return
        path = os.path.join(root, bucket, key)
        if not key or not os.path.isfile(path):
            return self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
        with open(path, "rb") as f:
            self._reply(200, f.read(), "application/octet-stream")

    def do_DELETE(self):
        bucket, key, _ = self._split()
        if not self._check("DELETE"):
            return
        if not bucket or not key:
            return self._reply(400)
        try:
            os.unlink(os.path.join(root, bucket, key))
        except FileNotFoundError:
            pass
        self._reply(204)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), S3)
tmp = port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, port_file)
srv.serve_forever()
