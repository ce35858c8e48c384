# Throwaway Debian roots for the packaging tests. Sourced by test/packaging/run.sh; bash, set -euo pipefail.
#
# The slow part (debootstrap, apt-get update, the packages our debs depend on, the kernel headers) is built
# once into a base root under $PKGTEST_CACHE and reused: each test run mounts an overlay on top of the base,
# so the run starts from the same clean system every time and throws its changes away at the end.
#   PKGTEST_CACHE   cache folder (default: .cache/packaging in the repository; .cache/ is git-ignored)
#   PKGTEST_MIRROR  Debian mirror (default: http://deb.debian.org/debian)
#   PKGTEST_SECURITY_MIRROR  (default: http://deb.debian.org/debian-security)

PKGTEST_CACHE=${PKGTEST_CACHE:-${ICMPCAP_CACHE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cache/packaging}}
PKGTEST_MIRROR=${PKGTEST_MIRROR:-http://deb.debian.org/debian}
PKGTEST_SECURITY_MIRROR=${PKGTEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PKGTEST_SUITE=bookworm

# What the base root holds besides minbase: what icmpcap-dkms and icmpcap depend on (so installing our debs
# needs no network), the headers of the guest kernel, and the tools the checks use.
# Keep in step with the Depends: fields that scripts/package-deb.sh writes.
pkgtest_base_packages() {
	local kver=$1
	echo "dkms linux-headers-$kver kmod udev libcap2-bin adduser passwd" \
		"libgtk-3-0 libnotify4 libnss3 libxss1 libxtst6 xdg-utils libatspi2.0-0 libuuid1 libsecret-1-0 libasound2 libgbm1 libdrm2" \
		"iproute2 iputils-ping"
}

# Mounts what apt, dkms and udevadm need inside root $1 (undone by pkgtest_umount_all).
pkgtest_mount_api() {
	local root=$1
	mount -t proc proc "$root/proc"
	mount -t sysfs sys "$root/sys"
	mount --bind /dev "$root/dev"
	mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
	mount -t tmpfs tmpfs "$root/run"
	mount -t tmpfs tmpfs "$root/tmp"
}

# Unmounts everything below $1 (deepest first), then $1 itself when it is a mount point.
pkgtest_umount_all() {
	local root=$1 m
	[ -d "$root" ] || return 0
	for m in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
}

pkgtest_chroot() {
	local root=$1
	shift
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# Builds (once) the base root for kernel $1 and sets PKGTEST_BASE to it.
pkgtest_base() {
	local kver=$1 pkgs key dir tmp
	pkgs=$(pkgtest_base_packages "$kver")
	key=$(echo "$PKGTEST_SUITE $PKGTEST_MIRROR $pkgs" | sha256sum | cut -c1-12)
	dir=$PKGTEST_CACHE/base-$PKGTEST_SUITE-$key
	PKGTEST_BASE=$dir
	if [ -f "$dir/.icmpcap-base-complete" ]; then
		echo "# base root: cached ($dir)"
		return 0
	fi
	echo "# base root: building $dir (debootstrap $PKGTEST_SUITE + $(echo "$pkgs" | wc -w) packages; a few minutes)"
	mkdir -p "$PKGTEST_CACHE/debootstrap-debs" "$PKGTEST_CACHE/apt-archives/partial"
	tmp=$dir.tmp
	pkgtest_umount_all "$tmp"
	rm -rf "$tmp"
	if ! debootstrap --variant=minbase --cache-dir="$PKGTEST_CACHE/debootstrap-debs" \
		"$PKGTEST_SUITE" "$tmp" "$PKGTEST_MIRROR" >"$PKGTEST_CACHE/debootstrap.log" 2>&1; then
		tail -20 "$PKGTEST_CACHE/debootstrap.log" >&2
		echo "debootstrap failed (log: $PKGTEST_CACHE/debootstrap.log)" >&2
		return 1
	fi
	# No daemons may start inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 0755 "$tmp/usr/sbin/policy-rc.d"
	echo "deb $PKGTEST_MIRROR $PKGTEST_SUITE main" >"$tmp/etc/apt/sources.list"
	echo "deb $PKGTEST_SECURITY_MIRROR $PKGTEST_SUITE-security main" >>"$tmp/etc/apt/sources.list"
	echo "deb $PKGTEST_MIRROR $PKGTEST_SUITE-updates main" >>"$tmp/etc/apt/sources.list"
	pkgtest_mount_api "$tmp"
	mount --bind "$PKGTEST_CACHE/apt-archives" "$tmp/var/cache/apt/archives"
	local rc=0
	{
		pkgtest_chroot "$tmp" apt-get update -qq &&
			pkgtest_chroot "$tmp" apt-get install -y -qq --no-install-recommends $pkgs
	} >"$PKGTEST_CACHE/base-apt.log" 2>&1 || rc=$?
	pkgtest_umount_all "$tmp"
	if [ $rc != 0 ]; then
		tail -20 "$PKGTEST_CACHE/base-apt.log" >&2
		echo "apt-get in the base root failed (log: $PKGTEST_CACHE/base-apt.log)" >&2
		return 1
	fi
	rm -f "$tmp/var/cache/apt/archives/"*.deb
	touch "$tmp/.icmpcap-base-complete"
	rm -rf "$dir"
	mv "$tmp" "$dir"
}

# Mounts a throwaway root at $1 (an overlay on the base root; changes go to $1.upper) and sets PKGTEST_ROOT.
pkgtest_root_up() {
	local root=$1
	pkgtest_root_down "$root"
	mkdir -p "$root" "$root.upper" "$root.work"
	mount -t overlay overlay -o "lowerdir=$PKGTEST_BASE,upperdir=$root.upper,workdir=$root.work" "$root"
	pkgtest_mount_api "$root"
	PKGTEST_ROOT=$root
}

pkgtest_root_down() {
	local root=$1
	pkgtest_umount_all "$root"
	rm -rf "$root" "$root.upper" "$root.work"
}
