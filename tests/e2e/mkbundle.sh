#!/bin/bash
# mkbundle.sh DIR OUT [KEY.pem]: makes a bundle archive from DIR with the
# system's own tools (not ours, so the tests check firstboot against an
# independent producer): appends `checksums:` with the sha256 of every file
# but bundle.yaml to DIR/bundle.yaml, signs bundle.yaml with the Ed25519
# KEY when given, and writes a gzip'd tar to OUT (a .b64 OUT gets the
# "#firstboot-bundle v1" text form).
set -euo pipefail
dir=$1 out=$2 key=${3:-}

sed -i '/^checksums:/,$d' "$dir/bundle.yaml"
{
	echo "checksums:"
	(cd "$dir" && find . -type f ! -name bundle.yaml ! -name bundle.yaml.sig | sed 's|^\./||' | sort |
		while read -r f; do printf '  %s: "%s"\n' "$f" "$(sha256sum "$f" | cut -d' ' -f1)"; done)
} >>"$dir/bundle.yaml"
if [ -n "$key" ]; then
	openssl pkeyutl -sign -rawin -inkey "$key" -in "$dir/bundle.yaml" -out "$dir/bundle.yaml.sig"
fi
tarball=$(mktemp)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -czf "$tarball" .
case "$out" in
*.b64) { echo "#firstboot-bundle v1"; base64 -w 76 "$tarball"; } >"$out" ;;
*) cp "$tarball" "$out" ;;
esac
rm -f "$tarball"
