#!/bin/sh
# Builds OUTDIR/guest_native: a static program from the native core that kernel/test/run.sh
# copies into the QEMU guest and runs after loading icmpcap.ko.  Usage: build.sh OUTDIR
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
	"$core/source.cc" "$out/decode.o"
echo "built $out/guest_native"
