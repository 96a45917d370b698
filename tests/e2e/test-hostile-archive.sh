#!/bin/bash
# Decompression bombs as user-data: every byte the tar reader inflates
# (headers, pax global headers, GNU long names, data, padding) counts
# against max_user_data. Each bomb is refused with exit 1 and the limit in
# the message, no ready marker, and nothing written under the root but
# firstboot's state and logs; a bundle just under the limit still runs.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

LIMIT=1048576 # max_user_data for these roots: 1 MiB

# bomb KIND OUT: writes a hostile user-data file made here with Python's
# zlib (not with our code):
#   pax-global  28 MiB of 64 KiB pax global headers ('g'), seven in a row
#               before each of 64 empty directories; 60 KB gzip'd
#   big-member  one 8 MiB file of zeros
#   long-links  GNU long link names ('K') of 60 KiB before each of 64
#               empty files (a regular file has no use for one)
#   long-path   a GNU long name ('L') of 60 KiB
bomb() {
	python3 - "$1" "$2" <<'EOF'
import sys, zlib

kind, out = sys.argv[1], sys.argv[2]

def header(name, typ, size, mode=0o644):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = typ
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)

def entry(name, typ, data=b""):
    pad = (-len(data)) % 512
    return header(name, typ, len(data)) + data + b"\0" * pad

def pax_record(key, value):
    n = len(key) + len(value) + 3
    length = n + 1
    while length != n + len(str(length)):
        length = n + len(str(length))
    return b"%d %s=%s\n" % (length, key, value)

z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
parts = []
if kind == "pax-global":
    g = entry(b"pax_global_header", b"g", pax_record(b"comment", b"g" * (64 * 1024 - 32)))
    for i in range(64):
        parts.append(z.compress(g * 7 + entry(b"d%d/" % i, b"5")))
elif kind == "big-member":
    parts.append(z.compress(header(b"bundle.yaml", b"0", 8 << 20)))
    chunk = b"\0" * (1 << 20)
    for _ in range(8):
        parts.append(z.compress(chunk))
elif kind == "long-links":
    link = b"x" * (60 * 1024) + b"\0"
    for i in range(64):
        parts.append(z.compress(entry(b"././@LongLink", b"K", link) + entry(b"f%d" % i, b"0")))
elif kind == "long-path":
    name = b"d/" * (30 * 1024) + b"f\0"
    parts.append(z.compress(entry(b"././@LongLink", b"L", name) + entry(b"short", b"0")))
parts.append(z.compress(b"\0" * 1024))
parts.append(z.flush())
with open(out, "wb") as f:
    f.write(b"".join(parts))
EOF
}

# refused NAME USERDATA PATTERN: firstboot run on a fresh root with
# max_user_data LIMIT exits 1, stderr matches PATTERN, no ready marker,
# the root unchanged outside the state and log directories, nothing
# unpacked.
refused() {
	local name=$1 ud=$2 pattern=$3 r
	r=$T/root-$name
	new_root "$r"
	mkdir -p "$r/etc/firstboot"
	printf 'max_user_data: %s\n' "$LIMIT" >"$r/etc/firstboot/firstboot.conf"
	tree_snapshot "$r" >"$T/before"
	t_case "refused: $name"
	if ! expect_rc 1 "$FIRSTBOOT" run --root "$r" --user-data "$ud"; then
		t_fail "exit code"
		return
	fi
	if ! grep -qE -- "$pattern" "$T/err"; then
		t_fail "message: wanted /$pattern/, got: $(head -c 600 "$T/err")"
		return
	fi
	if [ -e "$r/var/lib/firstboot/ready" ]; then
		t_fail "the ready marker exists"
		return
	fi
	tree_snapshot "$r" >"$T/after"
	if ! diff -u "$T/before" "$T/after" >"$T/diff"; then
		t_fail "root changed: $(cat "$T/diff")"
		return
	fi
	if compgen -G "$r/var/lib/firstboot/instances/*/bundle" >/dev/null; then
		t_fail "something was unpacked"
		return
	fi
	t_pass
}

for k in pax-global big-member long-links long-path; do
	bomb "$k" "$T/$k.tgz"
done
# The bombs are small: what they would inflate to is not.
t_case "the bombs are under max_user_data as given"
big=$(stat -c %s "$T"/*.tgz | sort -n | tail -1)
if [ "$big" -lt "$LIMIT" ]; then t_pass; else t_fail "a bomb is $big bytes"; fi

refused pax-global-headers "$T/pax-global.tgz" "archive over the limit of $LIMIT bytes uncompressed"
refused gnu-long-link-names "$T/long-links.tgz" "archive over the limit of $LIMIT bytes uncompressed"
refused gnu-long-path "$T/long-path.tgz" "path longer than 4095 bytes"
refused big-member "$T/big-member.tgz" "\"bundle.yaml\": archive over the limit of $LIMIT bytes"
{
	echo "#firstboot-bundle v1"
	base64 -w 76 "$T/pax-global.tgz"
} >"$T/pax-global.b64"
refused pax-global-headers-base64-text "$T/pax-global.b64" \
	"archive over the limit of $LIMIT bytes uncompressed"

# Just under the limit: a 900 KiB file (the tar is a little more) is
# unpacked and the run succeeds.
B=$T/under
mkdir -p "$B/files"
printf 'version: 1\nname: under\nfiles:\n  - {path: /opt/big, source: files/big, mode: "0600"}\n' >"$B/bundle.yaml"
head -c $((900 << 10)) /dev/zero >"$B/files/big"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/under.tgz"
r=$T/root-under
new_root "$r"
mkdir -p "$r/etc/firstboot"
printf 'max_user_data: %s\n' "$LIMIT" >"$r/etc/firstboot/firstboot.conf"
t_case "a bundle just under max_user_data uncompressed runs"
if expect_rc 0 "$FIRSTBOOT" run --root "$r" --user-data "$T/under.tgz" &&
	[ -e "$r/var/lib/firstboot/ready" ] && cmp -s "$B/files/big" "$r/opt/big"; then
	t_pass
else
	t_fail "run failed: $(head -c 600 "$T/err")"
fi
