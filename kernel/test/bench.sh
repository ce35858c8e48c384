#!/bin/bash
# Benchmark of icmpcap.ko in one QEMU guest boot (see icmpcap_bench.c):
# ring records/s, netlink-per-record records/s, their ratio, producer and
# consumer cost per record, loss at 1 M/s, and the peers (module, the app's
# AF_PACKET helper, tcpdump) on one flood: zero-loss rate and CPU per packet.
# Bounded: the guest program stops its rounds and trials at its time budget
# (BENCH_BUDGET_S, 200 s) and reports what it has; QEMU is killed at 600 s.
# Merges kernel.* keys into bench/results.json (other keys are kept).
# Usage: kernel/test/bench.sh
set -euo pipefail
# Own build directory: may run while run.sh does.
: "${ICMPCAP_BUILD_DIR:=$(cd "$(dirname "$0")/.." && pwd)/build/bench}"
export ICMPCAP_BUILD_DIR
source "$(dirname "$0")/lib.sh"

start=$(date +%s)
ktest_deps
ktest_pick_kernel
mkdir -p "$KBUILD_DIR"
ktest_build_module
ktest_build_progs
ktest_pack_initramfs bench
log=$KBUILD_DIR/guest-bench.log
ktest_boot "$log" "icmpcap_mode=bench" 600

grep -E '^(PASS|FAIL|BENCH) ' "$log" || true
fail=0
trouble=$(ktest_kernel_trouble "$log")
if [ -n "$trouble" ]; then
	echo "FAIL kernel_log: WARN/BUG/oops in the guest:"
	echo "$trouble"
	fail=1
fi
grep -qE '^FAIL ' "$log" && fail=1
if [ "$(grep -cE '^BENCH ' "$log" || true)" -lt 4 ]; then
	echo "FAIL bench: missing results (log: $log)"
	exit 1
fi

mkdir -p "$REPO_DIR/bench"
grep -E '^BENCH ' "$log" | node -e '
const fs = require("fs");
const file = process.argv[1];
let results = {};
try { results = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) { if (e.code !== "ENOENT") throw e; }
for (const line of fs.readFileSync(0, "utf8").split("\n")) {
	const m = /^BENCH (\S+) (\S+) (.*?) \| (.*)$/.exec(line);
	if (!m) continue;
	results["kernel." + m[1]] = { value: Number(m[2]), unit: m[3], command: "npm run bench -- kernel", note: m[4] };
}
const tmp = file + ".tmp." + process.pid;
fs.writeFileSync(tmp, JSON.stringify(results, null, 2) + "\n");
fs.renameSync(tmp, file);
' "$REPO_DIR/bench/results.json"
echo "kernel bench: results merged into bench/results.json in $(( $(date +%s) - start )) s"
exit $fail
