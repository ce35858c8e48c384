#!/usr/bin/env bash
# Packaging tests (issue 8): builds icmpcap-dkms and icmpcap debs with scripts/package.sh, checks them with
# dpkg-deb and lintian, installs them into a throwaway Debian bookworm root (debootstrap, cached) that has the
# headers of the guest kernel, checks what the maintainer scripts did (DKMS build, group, udev rule, the
# helper's capability, a capture by a group member), boots the module DKMS built there in QEMU and captures
# pings with it, then purges both packages and checks that nothing is left behind.
# Prints PASS/FAIL per check and "N passed, N failed"; exits non-zero when a check failed.
# Usage: test/packaging/run.sh          (root: debootstrap, chroot, mounts, apt)
#   PKGTEST_CACHE   cache folder for the base root (default .cache/packaging; first run builds it)
#   PKGTEST_WORK    work folder (default .cache/packaging/work; logs stay there)
#   PKGTEST_KEEP=1  keep the staging folders (packages/.work, packages/linux-unpacked) as well
#   ICMPCAP_ELECTRON_DIST / ELECTRON_OVERRIDE_DIST_PATH  an unpacked Electron: the app deb is built with it
#
# Where no unpacked Electron is given (this machine cannot download one), the app deb is built around a
# stand-in "Electron": the Node binary of this machine, which runs the CLI the way Electron does with ELECTRON_RUN_AS_NODE=1. That tests
# the packaging (layout, maintainer scripts, capability, CLI entry) but not the Electron window; the package
# script refuses such a stand-in unless ICMPCAP_ALLOW_STANDIN_ELECTRON=1, which only this test sets.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO"
start=$(date +%s)

if [ "$(id -u)" != 0 ]; then
	echo "test/packaging/run.sh: needs root (debootstrap, chroot, mounts): sudo npm run test:packaging" >&2
	exit 1
fi

source "$HERE/chroot.sh"
WORK=${PKGTEST_WORK:-$PKGTEST_CACHE/work}
export ICMPCAP_BUILD_DIR=$WORK/guest
source "$REPO/kernel/test/lib.sh"

npass=0
nfail=0
pass() {
	echo "PASS $1${2:+: $2}"
	npass=$((npass + 1))
}
fail() {
	echo "FAIL $1${2:+: $2}"
	nfail=$((nfail + 1))
}
# check NAME DETAIL-ON-FAILURE COMMAND...: PASS when the command succeeds.
check() {
	local name=$1 why=$2
	shift 2
	if "$@" >>"$WORK/checks.log" 2>&1; then pass "$name"; else fail "$name" "$why"; fi
}
finish() {
	echo "packaging tests: $npass passed, $nfail failed, $(($(date +%s) - start)) s (work: $WORK)"
	[ "$nfail" = 0 ]
	exit $?
}
cleanup() {
	[ -n "${PKGTEST_ROOT:-}" ] && pkgtest_root_down "$PKGTEST_ROOT"
	if [ "${PKGTEST_KEEP:-}" != 1 ]; then rm -rf "$WORK/packages/.work" "$WORK/packages/linux-unpacked"; fi
}
trap cleanup EXIT

# --- dependencies -------------------------------------------------------------------------------------------
deps="debootstrap lintian fakeroot dpkg-dev librsvg2-bin libcap2-bin file xz-utils"
missing=""
for p in $deps; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "# installing from apt:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
		$missing >/dev/null
fi
ktest_deps
ktest_pick_kernel
mkdir -p "$WORK"
: >"$WORK/checks.log"
echo "# guest kernel $KVER; work folder $WORK"

# --- build ---------------------------------------------------------------------------------------------------
# The packages are made from the built tree; build it once when a fresh clone has not been built yet.
if [ ! -f dist/electron/core/cli.js ] || [ ! -f dist/renderer/index.html ] || [ ! -f native/build/Release/icmpcap-helper ]; then
	echo "# not built yet: npm run build"
	npm run --silent build >"$WORK/npm-build.log" 2>&1 || { fail build "npm run build failed (log: $WORK/npm-build.log)"; finish; }
fi
VERSION=$(node -p "require('./package.json').version")
OUT=$WORK/packages
rm -rf "$OUT"
ELECTRON=${ICMPCAP_ELECTRON_DIST:-${ELECTRON_OVERRIDE_DIST_PATH:-}}
if [ -n "$ELECTRON" ]; then
	echo "# app deb with the Electron in $ELECTRON"
	STANDIN_OK=
else
	ELECTRON=$WORK/electron-standin
	echo "# no unpacked Electron (ICMPCAP_ELECTRON_DIST): the app deb gets a stand-in, this machine's node"
	rm -rf "$ELECTRON"
	mkdir -p "$ELECTRON"
	cp -L "$(command -v node)" "$ELECTRON/electron"
	STANDIN_OK=1
fi
t0=$(date +%s)
if ICMPCAP_PACKAGE_OUT=$OUT ICMPCAP_ELECTRON_DIST=$ELECTRON ICMPCAP_ALLOW_STANDIN_ELECTRON=$STANDIN_OK \
	bash scripts/package.sh dkms deb >"$WORK/package.log" 2>&1; then
	pass build_debs "$(($(date +%s) - t0)) s"
else
	fail build_debs "scripts/package.sh dkms deb failed: $(tail -5 "$WORK/package.log")"
	finish
fi
DKMS_DEB=$OUT/icmpcap-dkms_${VERSION}_all.deb
APP_DEB=$OUT/icmpcap_${VERSION}_amd64.deb

# Without an Electron the app deb is refused with a message naming what to provide; dkms still builds.
out=$(env -u ICMPCAP_ELECTRON_DIST -u ELECTRON_OVERRIDE_DIST_PATH ICMPCAP_PACKAGE_OUT=$WORK/no-electron \
	bash scripts/package.sh dkms deb 2>&1) && rc=0 || rc=$?
if [ $rc = 3 ] && grep -q ICMPCAP_ELECTRON_DIST <<<"$out" && [ -f "$WORK/no-electron/icmpcap-dkms_${VERSION}_all.deb" ] &&
	[ ! -e "$WORK/no-electron/icmpcap_${VERSION}_amd64.deb" ]; then
	pass app_deb_needs_electron "exit 3: $(grep -m1 'needs an unpacked Electron' <<<"$out" | sed 's/^package: //')"
else
	fail app_deb_needs_electron "exit $rc, output: $out"
fi
rm -rf "$WORK/no-electron"

# The AppImage target checks the unpacked app directory, then stops and says what is missing.
out=$(ICMPCAP_PACKAGE_OUT=$OUT ICMPCAP_ELECTRON_DIST=$ELECTRON ICMPCAP_ALLOW_STANDIN_ELECTRON=$STANDIN_OK \
	ICMPCAP_OFFLINE=${ICMPCAP_OFFLINE:-1} bash scripts/package.sh appimage 2>&1) && rc=0 || rc=$?
if [ $rc = 3 ] && grep -q 'linux-unpacked checked' <<<"$out" && grep -q 'AppImage: not built' <<<"$out"; then
	pass appimage_stops_clearly "$(grep -m1 'AppImage: not built' <<<"$out" | sed 's/^package: //')"
elif [ $rc = 0 ] && ls "$OUT"/*.AppImage >/dev/null 2>&1; then
	pass appimage_built "$(ls "$OUT"/*.AppImage)"
else
	fail appimage_stops_clearly "exit $rc, output: $out"
fi

# build/electron-builder.cjs against electron-builder's own schema, where electron-builder is installed
# (or PKGTEST_EB_SCHEMA names its scheme.json).
out=$(node scripts/package-config-check.mjs ${PKGTEST_EB_SCHEMA:-} 2>&1) && rc=0 || rc=$?
case $rc in
0) pass electron_builder_config "$out" ;;
3) echo "SKIP electron_builder_config: $out" ;;
*) fail electron_builder_config "$out" ;;
esac

# --- dpkg-deb: control fields, maintainer scripts, files ----------------------------------------------------
field() { dpkg-deb -f "$1" "$2"; }
contents() { dpkg-deb -c "$1" | awk '{ print $6 }' | sed 's|^\./|/|'; }
check dkms_control "Package/Architecture/Depends/Section" bash -c "
	[ '$(field "$DKMS_DEB" Package)' = icmpcap-dkms ] && [ '$(field "$DKMS_DEB" Version)' = '$VERSION' ] &&
	[ '$(field "$DKMS_DEB" Architecture)' = all ] && [ '$(field "$DKMS_DEB" Section)' = kernel ] &&
	grep -q '^dkms' <<<'$(field "$DKMS_DEB" Depends)'"
check dkms_scripts "postinst, prerm and postrm" bash -c "dpkg-deb -I '$DKMS_DEB' | grep -q ' postinst ' &&
	dpkg-deb -I '$DKMS_DEB' | grep -q ' prerm ' && dpkg-deb -I '$DKMS_DEB' | grep -q ' postrm '"
dkms_files=$(contents "$DKMS_DEB")
check dkms_files "module source, dkms.conf, udev rule under the expected paths" bash -c '
	for f in /usr/src/icmpcap-'"$VERSION"'/dkms.conf /usr/src/icmpcap-'"$VERSION"'/Makefile \
		/usr/src/icmpcap-'"$VERSION"'/Kbuild /usr/src/icmpcap-'"$VERSION"'/main.c \
		/usr/src/icmpcap-'"$VERSION"'/include/uapi/linux/icmpcap.h /usr/lib/udev/rules.d/60-icmpcap.rules \
		/usr/lib/modules-load.d/icmpcap.conf /usr/share/doc/icmpcap-dkms/copyright; do
		grep -qx "$f" <<<"$1" || { echo "missing $f"; exit 1; }
	done' _ "$dkms_files"
check dkms_conf_version "dkms.conf PACKAGE_VERSION is the package version" bash -c \
	"dpkg-deb --fsys-tarfile '$DKMS_DEB' | tar -xO ./usr/src/icmpcap-$VERSION/dkms.conf | grep -qx 'PACKAGE_VERSION=\"$VERSION\"'"
check app_control "Depends on icmpcap-dkms (= $VERSION), libcap2-bin, libc6" bash -c "
	d='$(field "$APP_DEB" Depends)'
	[ '$(field "$APP_DEB" Package)' = icmpcap ] && [ '$(field "$APP_DEB" Architecture)' = amd64 ] &&
	grep -q 'icmpcap-dkms (= $VERSION)' <<<\"\$d\" && grep -q 'libcap2-bin' <<<\"\$d\" && grep -q 'libc6' <<<\"\$d\""
check app_scripts "postinst and postrm" bash -c "dpkg-deb -I '$APP_DEB' | grep -q ' postinst ' &&
	dpkg-deb -I '$APP_DEB' | grep -q ' postrm '"
# The list goes through a file: as one argument it outgrows the kernel's 128 KiB limit per argument.
contents "$APP_DEB" >"$WORK/app-files.txt"
check app_files "app, addon, helper, renderer, CLI, desktop entry, MIME, icons 16..512" bash -c '
	for f in /usr/bin/icmpcap /usr/lib/icmpcap/icmpcap /usr/lib/icmpcap/icmpcap-cli \
		/usr/lib/icmpcap/resources/app/package.json /usr/lib/icmpcap/resources/app/dist/electron/main/main.js \
		/usr/lib/icmpcap/resources/app/dist/renderer/index.html \
		/usr/lib/icmpcap/resources/app/native/build/Release/icmpcap.node \
		/usr/lib/icmpcap/resources/app/native/build/Release/icmpcap-helper \
		/usr/share/applications/icmpcap.desktop /usr/share/mime/packages/icmpcap.xml \
		/usr/share/icons/hicolor/scalable/apps/icmpcap.svg /usr/share/man/man1/icmpcap.1.gz; do
		grep -qxF "$f" "$1" || { echo "missing $f"; exit 1; }
	done
	for s in 16 24 32 48 64 128 256 512; do
		grep -qxF "/usr/share/icons/hicolor/${s}x${s}/apps/icmpcap.png" "$1" || { echo "missing icon $s"; exit 1; }
	done' _ "$WORK/app-files.txt"
desktop=$(dpkg-deb --fsys-tarfile "$APP_DEB" | tar -xO ./usr/share/applications/icmpcap.desktop)
check desktop_entry "Categories Network, MimeType pcapng + pcap, Exec, Icon" bash -c '
	grep -qx "Categories=Network;Monitor;" <<<"$1" &&
	grep -qx "MimeType=application/x-pcapng;application/vnd.tcpdump.pcap;" <<<"$1" &&
	grep -qx "Exec=/usr/lib/icmpcap/icmpcap --js-flags=--initial-old-space-size=512 %U" <<<"$1" && grep -qx "Icon=icmpcap" <<<"$1"' _ "$desktop"
t0=$(date +%s)
lintian --tag-display-limit 0 "$DKMS_DEB" "$APP_DEB" >"$WORK/lintian.log" 2>&1 || true
if grep -q '^E: ' "$WORK/lintian.log"; then
	fail lintian "$(grep -c '^E: ' "$WORK/lintian.log") errors: $(grep '^E: ' "$WORK/lintian.log" | head -5 | tr '\n' ';')"
else
	pass lintian "no errors, $(grep -c '^W: ' "$WORK/lintian.log" || true) warnings, $(($(date +%s) - t0)) s (log: $WORK/lintian.log)"
fi
grep -E '^[EW]: ' "$WORK/lintian.log" | sed 's/^/#   lintian /' || true

# --- install into a throwaway Debian root --------------------------------------------------------------------
t0=$(date +%s)
if ! pkgtest_base "$KVER"; then
	fail base_root "debootstrap/apt in $PKGTEST_CACHE failed"
	finish
fi
pkgtest_root_up "$WORK/root"
R=$PKGTEST_ROOT
in_root() { pkgtest_chroot "$R" "$@"; }
in_root useradd --create-home --shell /bin/sh tester
in_root useradd --create-home --shell /bin/sh outsider
echo "# throwaway root ready in $(($(date +%s) - t0)) s"

# What the root holds before: every path except the pseudo file systems, apt's and dpkg's own records and logs,
# and /home (the test users' own files, such as the capture spool, are theirs: purge never touches them).
snapshot() {
	(cd "$R" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \
		-o -path ./var/log -o -path ./var/cache/apt -o -path ./var/cache/debconf -o -path ./var/lib/apt \
		-o -path ./var/lib/dpkg -o -path ./home \) -prune -o -printf '%p %M %U:%G\n' | LC_ALL=C sort)
}
# depmod's indexes, as the kernel image package would have left them (the root has only the headers): DKMS
# runs depmod on install and remove, which must not count as something the packages left behind.
in_root depmod -a "$KVER" 2>/dev/null
# The overlay is one mount: -xdev stays inside it. /etc/group and friends are compared by content too.
snapshot >"$WORK/files-before.txt"
cat "$R/etc/group" "$R/etc/gshadow" >"$WORK/groups-before.txt"

mkdir -p "$R/tmp/debs"
cp "$DKMS_DEB" "$APP_DEB" "$R/tmp/debs/"
t0=$(date +%s)
if in_root env SUDO_USER=tester apt-get install -y --no-install-recommends \
	"/tmp/debs/$(basename "$DKMS_DEB")" "/tmp/debs/$(basename "$APP_DEB")" >"$WORK/install.log" 2>&1; then
	pass install "apt-get install of both debs, $(($(date +%s) - t0)) s (log: $WORK/install.log)"
else
	fail install "$(tail -15 "$WORK/install.log")"
	finish
fi
# Everything else the debs need is in the base root: apt installs just the two (no network needed).
check install_needs_nothing_else "apt installed only icmpcap and icmpcap-dkms" \
	grep -q '^0 upgraded, 2 newly installed, 0 to remove' "$WORK/install.log"
grep -E '^icmpcap(-dkms)?: ' "$WORK/install.log" | sed 's/^/#   postinst says: /' || true
check postinst_tells_user "the installing user is told how to join the group" \
	grep -q 'sudo usermod -aG icmpcap tester' "$WORK/install.log"
check postinst_no_load_in_chroot "postinst must not load a module from a chroot" \
	grep -q 'inside a chroot: not loading the module' "$WORK/install.log"

check group_created "getent group icmpcap" in_root getent group icmpcap
check udev_rule "/usr/lib/udev/rules.d/60-icmpcap.rules gives icmpcap GROUP icmpcap, MODE 0660" \
	grep -qE '^KERNEL=="icmpcap", SUBSYSTEM=="misc", GROUP="icmpcap", MODE="0660"$' "$R/usr/lib/udev/rules.d/60-icmpcap.rules"
dkms_status=$(in_root dkms status 2>&1 || true)
echo "#   dkms status: $dkms_status"
check dkms_installed "dkms status: icmpcap/$VERSION, $KVER: installed" \
	grep -q "icmpcap/$VERSION, $KVER, x86_64: installed" <<<"$dkms_status"
KO=$(ls "$R/lib/modules/$KVER/updates/dkms/"icmpcap.ko* 2>/dev/null | head -1 || true)
check dkms_module_file "/lib/modules/$KVER/updates/dkms/icmpcap.ko* with vermagic $KVER" \
	bash -c "[ -n '$KO' ] && modinfo -F vermagic '$KO' | grep -q '^$KVER '"
HELPER=/usr/lib/icmpcap/resources/app/native/build/Release/icmpcap-helper
caps=$(in_root getcap "$HELPER" 2>&1 || true)
check helper_cap_net_raw "getcap says: ${caps:-nothing}" grep -q 'cap_net_raw[=+]ep' <<<"$caps"
check helper_group_only "helper root:icmpcap 0750" \
	bash -c "[ \"\$(chroot '$R' stat -c '%U:%G %a' '$HELPER')\" = 'root:icmpcap 750' ]"
check cli_runs "/usr/bin/icmpcap sources (the CLI through the bundled runtime)" \
	bash -c "chroot '$R' /usr/bin/env -i PATH=/usr/bin:/bin /usr/bin/icmpcap sources | grep -q afpacket"

# A member of the icmpcap group captures a ping without root: the CLI spawns the setcap'd helper. A user
# outside the group cannot run the helper. Own network namespace so that only the test's pings show.
in_root usermod -aG icmpcap tester
member_capture() {
	unshare --net chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c '
		ip link set lo up
		(sleep 2; ping -c 3 -i 0.3 127.0.0.1 >/dev/null) &
		timeout 20 setpriv --reuid=$1 --regid=$1 --init-groups env HOME=/home/$1 \
			/usr/bin/icmpcap capture -i lo -c 4 --source afpacket 2>/tmp/capture.err
		rc=$?; cat /tmp/capture.err >&2; exit $rc' _ "$1"
}
if out=$(member_capture tester 2>&1) && [ "$(grep -ci 'echo' <<<"$out")" -ge 4 ]; then
	pass member_captures_without_root "$(grep -m1 -i echo <<<"$out" | cut -d' ' -f2-)"
else
	fail member_captures_without_root "$out"
fi
if out=$(member_capture outsider 2>&1); then
	fail outsider_cannot_capture "a user outside the icmpcap group captured: $out"
else
	pass outsider_cannot_capture "$(tail -1 <<<"$out" | cut -c1-160)"
fi

# Secure Boot: where the kernel refuses the unsigned module, postinst says so and explains signing. Run the
# configured postinst again as if on a booted system (own PID namespace: ischroot says "not a chroot"), with
# a modprobe that fails the way a Secure Boot kernel makes it fail.
mkdir -p "$R/usr/local/sbin"
printf '#!/bin/sh\n[ "$1" = -r ] && exit 0\necho "modprobe: ERROR: could not insert '"'"'icmpcap'"'"': Key was rejected by service" >&2\nexit 1\n' \
	>"$R/usr/local/sbin/modprobe"
chmod 0755 "$R/usr/local/sbin/modprobe"
out=$(unshare --mount --pid --fork chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
	sh -c 'mount -t proc proc /proc && /var/lib/dpkg/info/icmpcap-dkms.postinst configure 0.1.0' 2>&1) || true
rm -f "$R/usr/local/sbin/modprobe"
if grep -q 'mokutil --import /var/lib/dkms/mok.pub' <<<"$out" && grep -q 'Secure Boot' <<<"$out" &&
	! grep -qE 'chroot|WARNING' <<<"$out"; then
	pass postinst_secure_boot_advice "$(grep -m1 'Secure Boot' <<<"$out" | sed 's/^icmpcap-dkms: //')"
else
	fail postinst_secure_boot_advice "$out"
fi

# A kernel upgrade: the kernel's postinst hook runs DKMS's, which builds the module again.
in_root dkms remove -m icmpcap -v "$VERSION" -k "$KVER" >/dev/null 2>&1 || true
in_root dkms add -m icmpcap -v "$VERSION" >/dev/null 2>&1 || true
t0=$(date +%s)
in_root /etc/kernel/postinst.d/dkms "$KVER" >"$WORK/kernel-hook.log" 2>&1 || true
check dkms_rebuilds_on_kernel_install "after /etc/kernel/postinst.d/dkms $KVER ($(($(date +%s) - t0)) s; log: $WORK/kernel-hook.log)" \
	bash -c "chroot '$R' dkms status | grep -q 'icmpcap/$VERSION, $KVER, x86_64: installed'"

# Keep the module DKMS built for the guest before purging.
mkdir -p "$KBUILD_DIR/mod"
KO=$(ls "$R/lib/modules/$KVER/updates/dkms/"icmpcap.ko* 2>/dev/null | head -1 || true)
case "$KO" in
*.xz) xz -dc "$KO" >"$KBUILD_DIR/mod/icmpcap.ko" ;;
*.zst) zstd -dc "$KO" >"$KBUILD_DIR/mod/icmpcap.ko" ;;
*.gz) gzip -dc "$KO" >"$KBUILD_DIR/mod/icmpcap.ko" ;;
"") rm -f "$KBUILD_DIR/mod/icmpcap.ko" ;;
*) cp "$KO" "$KBUILD_DIR/mod/icmpcap.ko" ;;
esac

# --- purge ---------------------------------------------------------------------------------------------------
in_root gpasswd -d tester icmpcap >/dev/null 2>&1 || true
# What the app keeps for an account with no usable home (a spool a crash left), and the folder earlier versions
# used: purge takes both (files-after is compared with files-before below).
mkdir -p "$R/var/lib/icmpcap/home/nobody/cache/icmpcap/spool" "$R/var/cache/icmpcap/spool"
echo left >"$R/var/lib/icmpcap/home/nobody/cache/icmpcap/spool/left.pcapng"
echo left >"$R/var/cache/icmpcap/spool/left.pcapng"
if in_root apt-get purge -y icmpcap icmpcap-dkms >"$WORK/purge.log" 2>&1; then
	pass purge "apt-get purge icmpcap icmpcap-dkms"
else
	fail purge "$(tail -10 "$WORK/purge.log")"
fi
check group_removed "getent group icmpcap after purge" bash -c "! chroot '$R' getent group icmpcap"
check dkms_removed "dkms status is empty, /var/lib/dkms/icmpcap gone" \
	bash -c "[ -z \"\$(chroot '$R' dkms status 2>/dev/null)\" ] && [ ! -e '$R/var/lib/dkms/icmpcap' ]"
check udev_rule_removed "60-icmpcap.rules gone" test ! -e "$R/usr/lib/udev/rules.d/60-icmpcap.rules"
snapshot >"$WORK/files-after.txt"
cat "$R/etc/group" "$R/etc/gshadow" >"$WORK/groups-after.txt"
# Our own test users are in both lists; group files differ only by the test's usermod/gpasswd.
if diff -u "$WORK/files-before.txt" "$WORK/files-after.txt" >"$WORK/files.diff"; then
	pass purge_leaves_nothing "$(wc -l <"$WORK/files-before.txt") paths compared"
else
	fail purge_leaves_nothing "$(grep -E '^[-+][^-+]' "$WORK/files.diff" | head -10 | tr '\n' ';')"
fi
check purge_restores_groups "/etc/group and /etc/gshadow as before" \
	diff -u "$WORK/groups-before.txt" "$WORK/groups-after.txt"

# Upgrade of icmpcap-dkms: the old prerm takes the old version out of DKMS, the new postinst builds the new
# one; the group stays. Then purge, and again nothing may be left.
NEXT=$VERSION+pkgtest1
if ICMPCAP_PACKAGE_OUT=$WORK/next ICMPCAP_PACKAGE_VERSION=$NEXT bash scripts/package.sh dkms >>"$WORK/package.log" 2>&1; then
	cp "$WORK/next/icmpcap-dkms_${NEXT}_all.deb" "$R/tmp/debs/"
	t0=$(date +%s)
	if in_root apt-get install -y --no-install-recommends "/tmp/debs/$(basename "$DKMS_DEB")" >"$WORK/upgrade.log" 2>&1 &&
		in_root apt-get install -y --no-install-recommends "/tmp/debs/icmpcap-dkms_${NEXT}_all.deb" >>"$WORK/upgrade.log" 2>&1; then
		st=$(in_root dkms status 2>&1 || true)
		if grep -q "icmpcap/$NEXT, $KVER, x86_64: installed" <<<"$st" && ! grep -q "icmpcap/$VERSION," <<<"$st" &&
			[ ! -e "$R/usr/src/icmpcap-$VERSION" ] && in_root getent group icmpcap >/dev/null; then
			pass dkms_upgrade "$VERSION -> $NEXT in $(($(date +%s) - t0)) s: $st"
		else
			fail dkms_upgrade "dkms status after the upgrade: $st"
		fi
	else
		fail dkms_upgrade "$(tail -10 "$WORK/upgrade.log")"
	fi
	in_root apt-get purge -y icmpcap-dkms >>"$WORK/upgrade.log" 2>&1 || fail upgrade_purge "$(tail -5 "$WORK/upgrade.log")"
	rm -f "$R/tmp/debs/icmpcap-dkms_${NEXT}_all.deb"
	snapshot >"$WORK/files-after-upgrade.txt"
	cat "$R/etc/group" "$R/etc/gshadow" >"$WORK/groups-after-upgrade.txt"
	if diff -u "$WORK/files-before.txt" "$WORK/files-after-upgrade.txt" >"$WORK/files-upgrade.diff" &&
		diff -q "$WORK/groups-before.txt" "$WORK/groups-after-upgrade.txt" >/dev/null; then
		pass upgrade_purge_leaves_nothing "files, group and DKMS tree as before"
	else
		fail upgrade_purge_leaves_nothing "$(grep -E '^[-+][^-+]' "$WORK/files-upgrade.diff" | head -10 | tr '\n' ';')"
	fi
else
	fail dkms_upgrade "scripts/package.sh dkms with ICMPCAP_PACKAGE_VERSION=$NEXT failed (log: $WORK/package.log)"
fi
pkgtest_root_down "$R"
PKGTEST_ROOT=

# --- the DKMS-built module in the guest kernel ---------------------------------------------------------------
if [ ! -s "$KBUILD_DIR/mod/icmpcap.ko" ]; then
	fail guest "no DKMS-built icmpcap.ko to boot with"
	finish
fi
# Own initramfs (busybox, iproute2, veth, the DKMS-built module, icmpcap_test, member_capture): only
# ktest_copy_with_libs and ktest_boot come from the kernel suite, so its test programs can change freely.
bin=$KBUILD_DIR/bin
mkdir -p "$bin"
gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$bin/icmpcap_test" "$REPO/kernel/test/icmpcap_test.c"
gcc -static -O2 -Wall -Wextra -Werror -o "$bin/member_capture" "$HERE/member_capture.c"
groot=$KBUILD_DIR/root
rm -rf "$groot"
mkdir -p "$groot"/{bin,sbin,usr/bin,usr/sbin,lib,proc,sys,dev,run,tmp,etc}
cp /bin/busybox "$groot/bin/busybox"
for a in $(/bin/busybox --list); do
	case "$a" in ip | busybox) continue ;; esac
	ln -sf busybox "$groot/bin/$a"
done
ktest_copy_with_libs "$groot" "$(command -v ip)"
ln -sf "$(command -v ip)" "$groot/bin/ip"
veth=$(find "/lib/modules/$KVER/kernel/drivers/net" -name 'veth.ko*' | head -1)
case "$veth" in
*.xz) xz -dc "$veth" >"$groot/lib/veth.ko" ;;
*.zst) zstd -dc "$veth" >"$groot/lib/veth.ko" ;;
*) cp "$veth" "$groot/lib/veth.ko" ;;
esac
cp "$KBUILD_DIR/mod/icmpcap.ko" "$groot/lib/icmpcap.ko"
cp "$bin/icmpcap_test" "$bin/member_capture" "$groot/bin/"
install -m 0755 "$HERE/guest-init" "$groot/init"
echo "root:x:0:0:root:/:/bin/sh" >"$groot/etc/passwd"
echo "root:x:0:" >"$groot/etc/group"
(cd "$groot" && find . | cpio -o -H newc --quiet | gzip -1) >"$KBUILD_DIR/initramfs.cpio.gz"
log=$KBUILD_DIR/guest.log
t0=$(date +%s)
ktest_boot "$log" "" 340
expected="guest_dkms_module_load guest_device_node echo4_out echo4_in echo6_out echo6_in guest_member_captures guest_non_member_refused guest_module_unload"
for t in $expected; do
	line=$(grep -m1 -E "^(PASS|FAIL) $t(:|$)" "$log" || true)
	case "$line" in
	PASS*) pass "$t" "$(sed -E 's/^PASS [^:]*:? ?//' <<<"$line")" ;;
	FAIL*) fail "$t" "$(sed -E 's/^FAIL [^:]*:? ?//' <<<"$line")" ;;
	*) fail "$t" "no result in the guest log ($log)" ;;
	esac
done
trouble=$(ktest_kernel_trouble "$log")
if [ -n "$trouble" ] || ! grep -q '^ICMPCAP-GUEST: done' "$log"; then
	fail guest_kernel_log "guest did not finish cleanly: ${trouble:-no done line} (log: $log)"
else
	pass guest_kernel_log "no WARN/BUG/oops, booted and tested in $(($(date +%s) - t0)) s"
fi
finish
