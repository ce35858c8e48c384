#!/bin/sh
# Builds static programs from the native core that kernel/test/run.sh copies into the QEMU
# guest (as /guest/) and runs after loading icmpcap.ko: guest_native, guest_sources (module and
# AF_PACKET side by side), and the icmpcap-helper that guest_sources' AF_PACKET sessions start.
# Usage: build.sh OUTDIR
set -eu
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
core=$here/../../src/core
mkdir -p "$out"
${CC:-gcc} -O2 -std=c11 -Wall -Wextra -Werror -I"$here/../../../kernel/include/uapi" \
	-c "$core/decode.c" -o "$out/decode.o"
${CXX:-g++} -static -O2 -std=c++17 -Wall -Wextra -Werror -pthread \
	-I"$here/../../../kernel/include/uapi" \
	-o "$out/guest_native" "$here/guest_native.cc" \
	"$core/errors.cc" "$core/genl.cc" "$core/interfaces.cc" "$core/link_watch.cc" \
	"$core/module_source.cc" "$core/record.cc" "$core/ring_reader.cc" "$core/ring_source.cc" \
	"$core/rtnl.cc" "$core/source.cc" "$out/decode.o"
${CC:-gcc} -O2 -std=c11 -Wall -Wextra -Werror -I"$here/../../../kernel/include/uapi" \
	-c "$core/bpf_filter.c" -o "$out/bpf_filter.o"
${CC:-gcc} -static -O2 -Wall -Wextra -Werror -I"$here/../../../kernel/include/uapi" \
	-o "$out/icmpcap-helper" "$here/../../helper/icmpcap-helper.c" "$here/../../helper/producer.c" \
	"$core/bpf_filter.c" "$core/decode.c"
${CXX:-g++} -static -O2 -std=c++17 -Wall -Wextra -Werror -pthread \
	-I"$here/../../../kernel/include/uapi" \
	-o "$out/guest_sources" "$here/guest_sources.cc" \
	"$core/afpacket_source.cc" "$core/errors.cc" "$core/genl.cc" "$core/interfaces.cc" \
	"$core/link_watch.cc" "$core/module_source.cc" "$core/probe.cc" "$core/record.cc" \
	"$core/ring_reader.cc" "$core/ring_source.cc" "$core/rtnl.cc" "$core/source.cc" "$out/decode.o" \
	"$out/bpf_filter.o"
echo "built $out/guest_native $out/guest_sources $out/icmpcap-helper"
