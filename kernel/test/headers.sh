#!/bin/bash
# Builds icmpcap.ko (normal and test build, warnings are errors) against the
# oldest installed and the newest Debian amd64 kernel headers apt offers.
# The newest are fetched with apt-get download and unpacked under
# kernel/build/headers, not installed (installing would also pull that
# kernel's image into /boot, which run.sh would then boot).
# Usage: kernel/test/headers.sh    (network needed for the newest headers)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

work=$KBUILD_DIR/headers
mkdir -p "$work"

# $1 = KDIR, $2 = label; builds both flavours in a scratch copy.
build_against() {
	local kdir=$1 label=$2 mod flavour log
	for flavour in normal test; do
		mod=$work/mod-$label-$flavour
		rm -rf "$mod"
		mkdir -p "$mod/include/uapi/linux"
		cp "$KSRC_DIR"/*.c "$KSRC_DIR"/*.h "$KSRC_DIR/Kbuild" "$mod/"
		cp "$KSRC_DIR/include/uapi/linux/icmpcap.h" "$mod/include/uapi/linux/"
		log=$mod/build.log
		# No pahole here: skip the BTF step, which does not look at the source.
		if ! make -C "$kdir" M="$mod" CONFIG_DEBUG_INFO_BTF_MODULES= \
			$([ $flavour = test ] && echo ICMPCAP_TEST=y) modules >"$log" 2>&1; then
			cat "$log" >&2
			echo "FAIL headers_$label: $flavour build"
			return 1
		fi
		if grep -q "warning:" "$log"; then
			grep -A3 "warning:" "$log" >&2
			echo "FAIL headers_$label: $flavour build has warnings"
			return 1
		fi
	done
	echo "PASS headers_$label: $(basename "$kdir")"
}

fail=0
oldest=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | head -1)
if [ -n "$oldest" ]; then
	build_against "$oldest" oldest || fail=1
else
	echo "FAIL headers_oldest: no /usr/src/linux-headers-*-amd64 (apt-get install linux-headers-amd64)"
	fail=1
fi

newest=$(apt-cache search --names-only '^linux-headers-[0-9.]+[^ ]*-amd64$' | awk '{print $1}' |
	grep -vE -- '-(rt|cloud)-amd64$' | sed 's/^linux-headers-//' | sort -V | tail -1)
if [ -z "$newest" ]; then
	echo "FAIL headers_newest: apt offers no linux-headers-*-amd64"
	exit 1
fi
root=$work/$newest
if [ ! -d "$root/usr/src/linux-headers-$newest" ]; then
	rm -rf "$root" && mkdir -p "$root/debs"
	common=$(apt-cache depends "linux-headers-$newest" | awk '/Depends: linux-headers-.*-common/ {print $2}')
	kbuild=$(apt-cache depends "linux-headers-$newest" | awk '/Depends: linux-kbuild-/ {print $2}')
	(cd "$root/debs" && apt-get download "linux-headers-$newest" "$common" "$kbuild" >/dev/null 2>&1)
	for d in "$root"/debs/*.deb; do dpkg -x "$d" "$root"; done
	# The arch Makefile includes the common tree by its absolute path.
	sed -i "s|include /usr/src/|include $root/usr/src/|" "$root/usr/src/linux-headers-$newest/Makefile"
fi
build_against "$root/usr/src/linux-headers-$newest" newest || fail=1
exit $fail
