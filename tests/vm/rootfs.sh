#!/bin/bash
# Builds the Debian 12 root file system the VM test boots, as a tarball,
# and keeps it in a cache keyed by this script (the package list and the
# settings below): a later run with the same script reuses it.
#
#   tests/vm/rootfs.sh CACHE_DIR    prints the path of the tarball
#
# A golden image holds what the example stack installs (the VM has no
# internet): systemd, a kernel, the agent's libraries, Docker, PostgreSQL,
# Redis, nginx and the tools the base module wants. No recommends, no
# documentation, no apt lists. The kernel's initramfs holds only the
# virtio drivers and ext4, so it is made and unpacked quickly.
set -euo pipefail

cache=${1:?usage: rootfs.sh CACHE_DIR}
suite=bookworm
# The machine's own Debian mirror (deb822 sources), else the default.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' \
	/etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

pkgs=(
	# boot and the system
	systemd systemd-sysv udev dbus kmod linux-image-amd64 initramfs-tools
	e2fsprogs iproute2 procps iptables openssh-server ca-certificates curl openssl
	# the agent's libraries: linked, then loaded when needed (libsodium to
	# check the bundle's signature, libarchive for the cidata ISO; hiredict
	# for `firstboot agent`'s job queue comes from backports, below)
	libyaml-0-2 libjson-c5 zlib1g libpcre2-8-0 libsodium23 libarchive13 libcurl4 libsystemd0
	# what the modules install: base (firewall, fail2ban, upgrades), docker,
	# postgres, redis, nginx, backup (age)
	wget jq git gnupg sudo rsync htop vim-tiny less unzip
	ufw fail2ban python3-systemd unattended-upgrades apt-listchanges
	docker.io docker-compose postgresql redis-server nginx age
)

key=$(sha256sum "$0" | cut -c1-16)
tarball=$cache/rootfs-$suite-$key.tar.zst
if [ -s "$tarball" ]; then
	echo "$tarball"
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
root=$work/root
cleanup() {
	mountpoint -q "$root/proc" && umount -l "$root/proc"
	rm -rf "$work"
}
trap cleanup EXIT

start=$SECONDS
echo "rootfs: debootstrap $suite from $mirror" >&2
if ! debootstrap --variant=minbase --components=main "$suite" "$root" "$mirror" \
	>"$work/debootstrap.log" 2>&1; then
	tail -n 30 "$work/debootstrap.log" >&2
	[ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
	echo "rootfs: debootstrap failed" >&2
	exit 1
fi
echo "rootfs: debootstrap took $((SECONDS - start)) s; installing ${#pkgs[@]} packages and their dependencies" >&2

# apt in the chroot: no service started there (policy-rc.d), /proc for
# the maintainer scripts that read it, no fsync per file (the tarball is
# written once at the end). The initramfs is configured before the kernel
# arrives, so each of its generations is quick: the virtio drivers and
# ext4 only, nothing probed from this host.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
printf 'force-unsafe-io\n' >"$root/etc/dpkg/dpkg.cfg.d/vmtest-unsafe-io"
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/initramfs-tools/hooks"
printf 'MODULES=list\nCOMPRESS=gzip\n' >"$root/etc/initramfs-tools/conf.d/vmtest.conf"
cat >"$root/etc/initramfs-tools/hooks/vmtest" <<'EOF'
#!/bin/sh
# The VM test's guest boots from virtio disks with ext4.
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk virtio_net ext4; do force_load "$m"; done
EOF
chmod 0755 "$root/etc/initramfs-tools/hooks/vmtest"
# hiredict (libhiredict1.3.1, with TLS for rediss://) is in Debian 12 only
# in bookworm-backports: only it is installed from there (-t).
cat >"$root/etc/apt/sources.list.d/bookworm-backports.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
mount -t proc proc "$root/proc"
if ! chroot "$root" apt-get update -q >"$work/apt.log" 2>&1 ||
	! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${pkgs[@]}" >>"$work/apt.log" 2>&1 ||
	! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends -t "$suite-backports" libhiredict1.3.1 >>"$work/apt.log" 2>&1; then
	tail -n 40 "$work/apt.log" >&2
	echo "rootfs: apt-get install failed" >&2
	exit 1
fi
umount "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/dpkg/dpkg.cfg.d/vmtest-unsafe-io"
echo "rootfs: $(chroot "$root" dpkg-query -W | wc -l) packages after $((SECONDS - start)) s" >&2

# The network: DHCP on the virtio NIC with systemd-networkd, and "online"
# once it has an address (firstboot.service waits for network-online).
cat >"$root/etc/systemd/network/80-vm.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
systemctl --root="$root" --quiet enable systemd-networkd.service systemd-networkd-wait-online.service
printf 'nameserver 10.0.2.3\n' >"$root/etc/resolv.conf"
printf 'vm\n' >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vm\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
printf 'LABEL=root / ext4 errors=remount-ro 0 1\n' >"$root/etc/fstab"

# Timers that would only compete with the first boot for the CPU.
for t in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer; do
	rm -f "$root/etc/systemd/system/timers.target.wants/$t"
done

chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
	"$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

# Only the newest tarball is kept.
rm -f "$cache"/rootfs-*.tar.zst
tar --numeric-owner --xattrs --acls -C "$root" -cf - . | zstd -q -T0 -3 -o "$work/rootfs.tar.zst"
mv "$work/rootfs.tar.zst" "$tarball"
echo "rootfs: $(du -sh "$root" | cut -f1) unpacked, $(du -h "$tarball" | cut -f1) cached as $tarball, $((SECONDS - start)) s in all" >&2
echo "$tarball"
