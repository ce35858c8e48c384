#!/bin/bash
# Guest tests of icmpcap.ko: builds the module against the installed Debian
# amd64 kernel headers, boots that kernel in QEMU with a busybox initramfs,
# runs the tests and prints PASS/FAIL per test. Exit status 0 only when every
# expected test passed and the kernel logged no WARN/BUG/oops.
# Usage: kernel/test/run.sh   (root needed only to install missing packages)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# guest_sources printed the module's records of the odd set (base64) and each case's range:
# writes them to $KBUILD_DIR/xsrc and runs the host half on them, electron/core/odd-module.test.ts
# (the capture service, every export format, tshark).
ktest_xsrc_host() {
	local log=$1 out=$KBUILD_DIR/xsrc
	rm -rf "$out"
	grep -q '^ICMPCAP-GUEST: run guest_sources' "$log" || return 0
	if ! grep -q '^ICMPCAP-XSRC end ' "$log"; then
		echo "FAIL xsrc_host: guest_sources printed no records (guest log: $log)"
		return 1
	fi
	mkdir -p "$out"
	grep '^ICMPCAP-XSRC records ' "$log" | cut -d' ' -f3 | tr -d '\n' | base64 -d >"$out/module-records.bin"
	grep -E '^ICMPCAP-XSRC (case|end) ' "$log" | cut -d' ' -f2- >"$out/cases.txt"
	if (cd "$REPO_DIR" && ICMPCAP_XSRC_DIR="$out" npx --no-install vitest run electron/core/odd-module.test.ts) \
		>"$out/host.log" 2>&1; then
		echo "PASS xsrc_host: the module's odd-set records through the capture service, exports and tshark"
	else
		tail -60 "$out/host.log"
		echo "FAIL xsrc_host: the module's odd-set records on the host (log: $out/host.log)"
		return 1
	fi
}

start=$(date +%s)
ktest_deps
ktest_pick_kernel
mkdir -p "$KBUILD_DIR"
ktest_build_module
ktest_build_progs
ktest_pack_initramfs native
log=$KBUILD_DIR/guest-test.log
# ICMPCAP_TESTS="a b": run only these module tests (no native guest tests; "none": no module
# test). ICMPCAP_GUESTS="guest_x ...": run only these native guest tests.
only=${ICMPCAP_TESTS:-all}
guests=${ICMPCAP_GUESTS:-all}
# Use-after-free shows: freed objects poisoned and checked (slub_debug, page
# poisoning; not U: its stack traces triple TCG time), freed memory zeroed, a
# warning panics. debug_pagealloc is not
# built into Debian's kernel.
ktest_boot "$log" "icmpcap_mode=test icmpcap_only=$(echo $only | tr ' ' ,) icmpcap_guests=$(echo $guests | tr ' ' ,) slub_debug=FZP init_on_free=1 page_poison=1" 600

fail=0
if [ "$only" = all ]; then
	only=$("$KBUILD_DIR/bin/icmpcap_test" --list | tr '\n' ' ')
elif [ "$only" = none ]; then
	only=""
fi
expected="module_load device_node $only module_unload"
grep -E '^(PASS|FAIL) ' "$log" || true
grep -E '^# ' "$log" || true
for t in $expected; do
	if ! grep -qE "^(PASS|FAIL) $t(:|$)" "$log"; then
		echo "FAIL $t: no result (guest log: $log)"
		fail=1
	fi
done
grep -qE '^FAIL ' "$log" && fail=1
if [ -f "$KBUILD_DIR/native-guest-failed" ]; then
	echo "FAIL native_guest_build: native/test/guest/build.sh failed"
	fail=1
fi
for g in $(grep -oE '^ICMPCAP-GUEST: run guest_[^ ]+' "$log" | awk '{print $3}'); do
	grep -qE "^ICMPCAP-GUEST: exit $g " "$log" || { echo "FAIL $g: did not finish"; fail=1; }
done
# guest_sources' module records: out of the serial log, then through the capture service.
ktest_xsrc_host "$log" || fail=1
trouble=$(ktest_kernel_trouble "$log")
if [ -n "$trouble" ]; then
	echo "FAIL kernel_log: WARN/BUG/oops in the guest:"
	echo "$trouble"
	fail=1
fi
grep -q '^ICMPCAP-GUEST: done' "$log" || { echo "FAIL guest: did not finish (timeout or panic; log: $log)"; fail=1; }
npass=$(grep -cE '^PASS ' "$log" || true)
nfail=$(grep -cE '^FAIL ' "$log" || true)
echo "kernel guest tests: $npass passed, $nfail failed, $(( $(date +%s) - start )) s (log: $log)"
exit $fail
