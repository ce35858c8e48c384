# Shared by run.sh and bench.sh: dependencies, module build, initramfs, QEMU.
# Sourced; expects bash with set -euo pipefail.

KTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KSRC_DIR=$(dirname "$KTEST_DIR")
KBUILD_DIR=${ICMPCAP_BUILD_DIR:-$KSRC_DIR/build}
REPO_DIR=$(dirname "$KSRC_DIR")

ktest_log() { echo "[$(basename "$0")] $*" >&2; }

# Installs the Debian packages the guest harness needs, when missing.
ktest_deps() {
	local pkgs="linux-image-amd64 linux-headers-amd64 qemu-system-x86 busybox-static cpio kmod gcc make libc6-dev iproute2 nftables tshark"
	local missing="" p
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "[$(basename "$0")] installing from apt:$missing"
		if [ "$(id -u)" != 0 ]; then
			ktest_log "not root: cannot install; run: sudo apt-get install$missing"
			return 1
		fi
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $missing >/dev/null
	fi
}

# Sets KVER, VMLINUZ, KHDR: newest installed Debian amd64 kernel with headers.
ktest_pick_kernel() {
	local v
	KVER=""
	for v in $(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
		if [ -d "/usr/src/linux-headers-$v" ]; then KHDR=/usr/src/linux-headers-$v; KVER=$v; break; fi
		if [ -d "/lib/modules/$v/build" ]; then KHDR=/lib/modules/$v/build; KVER=$v; break; fi
	done
	if [ -z "$KVER" ]; then
		ktest_log "no /boot/vmlinuz-*-amd64 with headers (apt-get install linux-image-amd64 linux-headers-amd64)"
		return 1
	fi
	VMLINUZ=/boot/vmlinuz-$KVER
	if [ ! -r "$VMLINUZ" ]; then
		ktest_log "$VMLINUZ is not readable"
		return 1
	fi
}

# Test build of the module (ICMPCAP_TEST) in $KBUILD_DIR/mod; fails on warnings.
ktest_build_module() {
	local mod=$KBUILD_DIR/mod
	mkdir -p "$mod/include/uapi/linux"
	rm -f "$mod"/*.c "$mod"/*.h
	cp "$KSRC_DIR"/*.c "$KSRC_DIR"/*.h "$KSRC_DIR/Kbuild" "$mod/"
	cp "$KSRC_DIR/include/uapi/linux/icmpcap.h" "$mod/include/uapi/linux/"
	if ! make -s -C "$KHDR" M="$mod" ICMPCAP_TEST=y modules >"$KBUILD_DIR/module-build.log" 2>&1; then
		cat "$KBUILD_DIR/module-build.log" >&2
		ktest_log "module build failed"
		return 1
	fi
	if grep -q "warning:" "$KBUILD_DIR/module-build.log"; then
		grep -A3 "warning:" "$KBUILD_DIR/module-build.log" >&2
		ktest_log "module build has warnings"
		return 1
	fi
}

# The benchmark links the application's ring consumer (native/src/core).
ktest_build_progs() {
	local bin=$KBUILD_DIR/bin core=$REPO_DIR/native/src/core
	mkdir -p "$bin"
	gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$bin/icmpcap_test" "$KTEST_DIR/icmpcap_test.c"
	gcc -c -O2 -Wall -Wextra -Werror -pthread -o "$bin/icmpcap_bench.o" "$KTEST_DIR/icmpcap_bench.c"
	g++ -static -O2 -std=c++17 -Wall -Wextra -Werror -pthread \
		-I"$KSRC_DIR/include/uapi" -I"$core" -I"$KTEST_DIR" \
		-o "$bin/icmpcap_bench" "$bin/icmpcap_bench.o" "$KTEST_DIR/icmpcap_bench_reader.cc" \
		"$core/ring_reader.cc" "$core/source.cc" "$core/errors.cc"
}

# Copies a dynamic binary and its libraries into root $1.
ktest_copy_with_libs() {
	local root=$1 bin=$2 lib
	mkdir -p "$root$(dirname "$bin")"
	cp -L "$bin" "$root$bin"
	for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
		[ -f "$lib" ] || continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# Copies the installed kernel's module $2 (decompressed) to root $1 as /lib/$2.ko.
ktest_copy_module() {
	local root=$1 name=$2 ko
	ko=$(find "/lib/modules/$KVER/kernel" -name "$name.ko*" | head -1)
	[ -n "$ko" ] || { ktest_log "module $name not found in /lib/modules/$KVER"; return 1; }
	case "$ko" in
	*.xz) xz -dc "$ko" >"$root/lib/$name.ko" ;;
	*.zst) zstd -dc "$ko" >"$root/lib/$name.ko" ;;
	*.gz) gzip -dc "$ko" >"$root/lib/$name.ko" ;;
	*) cp "$ko" "$root/lib/$name.ko" ;;
	esac
}

# Packs $KBUILD_DIR/initramfs.cpio.gz; $1 = "native" adds native/'s guest tests.
ktest_pack_initramfs() {
	local root=$KBUILD_DIR/root a with=${1:-}
	rm -rf "$root"
	rm -f "$KBUILD_DIR/native-guest-failed"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,proc,sys,dev,run,tmp,guest,etc}
	cp /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		case "$a" in ip | busybox) continue ;; esac
		ln -sf busybox "$root/bin/$a"
	done
	# busybox ip has no netns/veth: use iproute2's.
	ktest_copy_with_libs "$root" "$(command -v ip)"
	ln -sf "$(command -v ip)" "$root/bin/ip"
	# llc .. 8021q: VLAN devices (guest_sources sends tagged frames).
	for a in veth crc32c_generic libcrc32c nfnetlink nf_tables llc stp garp mrp 8021q; do
		ktest_copy_module "$root" "$a"
	done
	# nftables, to prove that a thousand captures leave it its hook slots.
	ktest_copy_with_libs "$root" "$(command -v nft)"
	cp "$KBUILD_DIR/mod/icmpcap.ko" "$root/lib/icmpcap.ko"
	cp "$KBUILD_DIR/bin/icmpcap_test" "$KBUILD_DIR/bin/icmpcap_bench" "$root/bin/"
	cp "$KTEST_DIR/guest-init" "$root/init"
	chmod +x "$root/init"
	echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
	# Guest tests supplied by native/ (optional).
	local gb=${ICMPCAP_NATIVE_GUEST_BUILD:-$REPO_DIR/native/test/guest/build.sh}
	if [ "$with" = native ] && [ -x "$gb" ]; then
		local out=$KBUILD_DIR/native-guest
		rm -rf "$out"
		mkdir -p "$out"
		if "$gb" "$out" >"$KBUILD_DIR/native-guest-build.log" 2>&1; then
			# guest_* run in the guest; icmpcap-helper serves their AF_PACKET sessions.
			for a in "$out"/guest_* "$out"/icmpcap-helper; do
				[ -f "$a" ] && [ -x "$a" ] && cp "$a" "$root/guest/"
			done
			ktest_log "native guest tests: $(ls "$root/guest" | tr '\n' ' ')"
		else
			ktest_log "native/test/guest/build.sh failed (log: $KBUILD_DIR/native-guest-build.log)"
			echo "native_guest_build" >"$KBUILD_DIR/native-guest-failed"
		fi
	fi
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$KBUILD_DIR/initramfs.cpio.gz"
}

# Boots the guest; $1 = log file, $2 = extra kernel command line, $3 = timeout (s).
# TCG runs single-threaded: with thread=multi a vCPU can go on executing code that the other vCPU has just
# patched (static keys flip when the first netfilter hook of a point is registered), and the guest
# died with "int3" in ip_local_deliver under load. One thread was no slower here (121 s for the suite).
ktest_boot() {
	local log=$1 extra=$2 tmo=$3 accel="tcg,thread=single"
	if [ -e /dev/kvm ] && grep -qE '^kvm_(intel|amd) ' /proc/modules 2>/dev/null; then
		accel=kvm
	fi
	ktest_log "booting $VMLINUZ (accel=$accel)"
	timeout --kill-after=5 "$tmo" qemu-system-x86_64 -accel "$accel" -smp 2 -m 1G \
		-nographic -no-reboot -nodefaults -serial stdio -display none \
		-kernel "$VMLINUZ" -initrd "$KBUILD_DIR/initramfs.cpio.gz" \
		-append "console=ttyS0 oops=panic panic_on_warn=1 panic=-1 loglevel=5 clocksource=tsc tsc=reliable $extra" \
		</dev/null >"$log" 2>&1 || true
	tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
}

# Prints the kernel trouble found in log $1, if any.
ktest_kernel_trouble() {
	grep -nE 'WARNING:|BUG:|BUG [A-Za-z0-9_-]+ \(|Poison overwritten|Redzone|Object already free|Oops|Kernel panic|Call Trace|general protection|KASAN|UBSAN|list_add corruption|refcount_t:' "$1" | head -20 || true
}
