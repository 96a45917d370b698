#!/bin/bash
# Installs the Debian packages the build, the tests and the demo need,
# only those missing, so a machine that has them all is not touched.
set -euo pipefail

pkgs=(
	build-essential pkg-config git
	libyaml-dev libjson-c-dev libcurl4-openssl-dev libarchive-dev libssl-dev libsystemd-dev libsodium-dev zlib1g-dev libpcre2-dev
	python3 python3-yaml xorriso systemd curl openssl time
	docker-compose nginx postgresql redis-server jq nodejs gnupg age mariadb-server-core mariadb-client
	cppcheck shellcheck clang-format clang libclang-rt-14-dev
	groff-base man-db
	dpkg-dev lintian
	debootstrap qemu-system-x86 e2fsprogs zstd openssh-client
	openssh-server util-linux procps strace
)
# npm comes with NodeSource's nodejs (which conflicts with Debian's npm).
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# hiredict (hiredis 1.x with hiredict_ssl, for rediss://) is in Debian 12
# only in bookworm-backports; later releases have it in main.
backports=()
if ! dpkg-query -W -f='${Status}' libhiredict-dev 2>/dev/null | grep -q 'install ok installed'; then
	# shellcheck source=/dev/null
	if [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" = bookworm ]; then
		backports=(libhiredict-dev)
	else
		missing+=(libhiredict-dev)
	fi
fi
[ ${#missing[@]} -eq 0 ] && [ ${#backports[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]} ${backports[*]} (run as root to install them)" >&2
	exit 1
fi
echo "deps: installing ${missing[*]} ${backports[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ ${#backports[@]} -gt 0 ]; then
	src=/etc/apt/sources.list.d/bookworm-backports.sources
	[ -e "$src" ] || cat >"$src" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
apt-get update -qq
[ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Only these from backports (-t): the rest stays bookworm's.
[ ${#backports[@]} -eq 0 ] ||
	apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backports[@]}" >/dev/null
