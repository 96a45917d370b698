#!/bin/bash
# packaging/deb.sh BUILD VERSION [OUTDIR]: builds the Debian packages from
# a built tree with dpkg-deb (no source package: the Makefile is the
# build), into OUTDIR (default BUILD/deb/):
#   firstboot          the agent, its units, tmpfiles.d, journal catalog,
#                      man pages; for images
#   imagegen           the host tool, its templates, and (for bake) a copy
#                      of the agent and units under /usr/lib/imagegen
#   firstboot-modules  /usr/lib/firstboot/modules, which both need
# Depends come from dpkg-shlibdeps, plus libarchive13, libsodium23 and (for
# firstboot) libcurl4 and libsystemd0: dlopen()ed, so invisible to it. Run through
# `make deb`.
set -euo pipefail

BUILD=${1:?usage: deb.sh BUILD VERSION}
VERSION=${2:?usage: deb.sh BUILD VERSION}
cd "$(dirname "$0")/.."
TOP=$PWD
OUT=${3:-$TOP/$BUILD/deb}
W=$OUT/work # a debian/ tree for dpkg-shlibdeps: debian/control, debian/<pkg>/
ARCH=$(dpkg --print-architecture)
# The package version is the changelog's: the Makefile's VERSION and a
# Debian revision (not a native package: the packaging is kept apart).
DEBVERSION=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ "${DEBVERSION%-*}" != "$VERSION" ]; then
	echo "deb: packaging/debian/changelog is at $DEBVERSION, the Makefile at $VERSION" >&2
	exit 1
fi
# Reproducible: file times are clamped to the changelog's date.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l packaging/debian/changelog -S Timestamp)
export SOURCE_DATE_EPOCH

rm -rf "$W"
mkdir -p "$W/debian"
printf 'Source: firstboot\n\nPackage: firstboot\nArchitecture: any\n\nPackage: imagegen\nArchitecture: any\n' >"$W/debian/control"

# put PKG MODE SRC DST: installs a file into a package's tree.
put() {
	install -D -m "$2" "$3" "$W/debian/$1$4"
}
# put_bin PKG SRC DST: an executable, stripped (no -dbgsym package).
put_bin() {
	put "$1" 0755 "$2" "$3"
	strip --remove-section=.comment --remove-section=.note --strip-unneeded "$W/debian/$1$3"
}
# put_man PKG PAGE: a man page, gzip'd without a name or time stamp.
put_man() {
	local s=${2##*.}
	install -d "$W/debian/$1/usr/share/man/man$s"
	gzip -9n <"packaging/man/$2" >"$W/debian/$1/usr/share/man/man$s/$2.gz"
	chmod 0644 "$W/debian/$1/usr/share/man/man$s/$2.gz"
}
# put_doc PKG: copyright and changelog.Debian.gz, and lintian overrides.
put_doc() {
	put "$1" 0644 packaging/debian/copyright "/usr/share/doc/$1/copyright"
	gzip -9n <packaging/debian/changelog >"$W/debian/$1/usr/share/doc/$1/changelog.Debian.gz"
	chmod 0644 "$W/debian/$1/usr/share/doc/$1/changelog.Debian.gz"
	if [ -f "packaging/lintian-overrides/$1" ]; then
		put "$1" 0644 "packaging/lintian-overrides/$1" "/usr/share/lintian/overrides/$1"
	fi
}

UNITS=(firstboot.service firstboot-ready.target firstboot-ssh-keygen.service firstboot-agent.service)

# firstboot
put_bin firstboot "$BUILD/firstboot" /usr/bin/firstboot
for u in "${UNITS[@]}"; do put firstboot 0644 "units/$u" "/usr/lib/systemd/system/$u"; done
put firstboot 0644 units/firstboot.tmpfiles /usr/lib/tmpfiles.d/firstboot.conf
put firstboot 0644 units/firstboot.catalog /usr/lib/systemd/catalog/firstboot.catalog
for p in firstboot.8 firstboot.conf.5 firstboot-bundle.5; do put_man firstboot "$p"; done
put_doc firstboot
for s in postinst postrm; do put firstboot 0755 "packaging/debian/firstboot.$s" "/DEBIAN/$s"; done

# imagegen: what bake installs comes from here when imagegen is not run
# from a build tree (imagegen/imagegen.h: BAKE_DIR_DEFAULT).
put_bin imagegen "$BUILD/imagegen" /usr/bin/imagegen
put_bin imagegen "$BUILD/firstboot" /usr/lib/imagegen/firstboot
for u in "${UNITS[@]}" firstboot.tmpfiles firstboot.catalog; do put imagegen 0644 "units/$u" "/usr/lib/imagegen/units/$u"; done
for t in templates/*; do
	[ -f "$t" ] && put imagegen 0644 "$t" "/usr/share/imagegen/templates/${t#templates/}"
done
[ -f packaging/man/imagegen.1 ] && put_man imagegen imagegen.1
put_doc imagegen

# firstboot-modules: each module's files, scripts executable.
for m in modules/*/; do
	[ -f "$m/manifest.yml" ] || [ "$m" = modules/_lib/ ] || continue
	while IFS= read -r -d '' f; do
		mode=0644
		[ -x "$f" ] && mode=0755
		put firstboot-modules "$mode" "$f" "/usr/lib/firstboot/$f"
	done < <(find "$m" -type f -print0 | sort -z)
done
put_doc firstboot-modules

shlibs=$(cd "$W" && dpkg-shlibdeps -O -e"debian/firstboot/usr/bin/firstboot" -e"debian/imagegen/usr/bin/imagegen" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || {
	echo "deb: dpkg-shlibdeps found no dependencies" >&2
	exit 1
}

rm -f "$OUT"/*.deb
mkdir -p "$OUT"
for pkg in firstboot imagegen firstboot-modules; do
	d=$W/debian/$pkg
	arch=$ARCH
	[ "$pkg" = firstboot-modules ] && arch=all
	mkdir -p "$d/DEBIAN"
	(cd "$d" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$d/DEBIAN/md5sums"
	size=$(du -k -s --apparent-size --exclude=DEBIAN "$d" | cut -f1)
	sed -e "s/@VERSION@/$DEBVERSION/g" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" \
		"packaging/debian/$pkg.control" >"$d/DEBIAN/control"
	chmod 0644 "$d/DEBIAN/control" "$d/DEBIAN/md5sums"
	find "$d" -type d -exec chmod 0755 {} +
	dpkg-deb --root-owner-group -Zxz --build "$d" "$OUT/${pkg}_${DEBVERSION}_$arch.deb" >/dev/null
	echo "$OUT/${pkg}_${DEBVERSION}_$arch.deb"
done
rm -rf "$W"
