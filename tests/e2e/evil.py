#!/usr/bin/env python3
"""evil.py KIND OUT: writes a malicious or broken bundle archive of one
kind, built with Python's tarfile (independent of our code), for the bad
input tests. The bundle.yaml inside is valid so the archive itself is
what must be refused."""
import hashlib
import io
import sys
import tarfile

kind, out = sys.argv[1], sys.argv[2]
script = b"#!/bin/sh\ntouch /tmp/evil-ran\n"
manifest = b'id: m\nname: m\nversion: "1"\n'


def bundle_yaml(extra):
    sums = {"modules/m/manifest.yml": manifest, "modules/m/install.sh": script}
    sums.update(extra)
    y = "version: 1\nname: evil\nmodules:\n  - id: m\nchecksums:\n"
    for k, v in sums.items():
        y += '  %s: "%s"\n' % (k, hashlib.sha256(v).hexdigest())
    return y.encode()


def add(t, name, data=b"", typ=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.size = len(data) if typ == tarfile.REGTYPE else 0
    ti.linkname = link
    ti.mode = 0o755 if name.endswith(".sh") else 0o644
    t.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)


buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as t:
    extra = {}
    if kind == "dotdot":
        extra = {"../../etc/evil": b"x"}
        add(t, "modules/../../etc/evil", b"x")
    elif kind == "absolute":
        add(t, "/etc/evil", b"x")
    elif kind == "symlink":
        add(t, "modules/m/link", typ=tarfile.SYMTYPE, link="/etc/shadow")
    elif kind == "hardlink":
        add(t, "modules/m/hard", typ=tarfile.LNKTYPE, link="bundle.yaml")
    elif kind == "device":
        add(t, "modules/m/dev", typ=tarfile.CHRTYPE)
    elif kind == "unlisted":
        add(t, "modules/m/extra.txt", b"not listed")
    elif kind == "mismatch":
        add(t, "bundle.yaml", bundle_yaml({}))
        add(t, "modules/m/manifest.yml", manifest)
        add(t, "modules/m/install.sh", script + b"# tampered\n")
    if kind != "mismatch":
        add(t, "bundle.yaml", bundle_yaml(extra))
        add(t, "modules/m/manifest.yml", manifest)
        add(t, "modules/m/install.sh", script)
data = buf.getvalue()
if kind == "truncated":
    data = data[: len(data) // 2]
open(out, "wb").write(data)
