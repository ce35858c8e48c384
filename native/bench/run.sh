#!/usr/bin/env bash
# Native benchmarks; merges into bench/results.json (read-modify-write, other keys kept):
#   native.drain_records_per_s                  core RingReader draining memfd rings (module ABI)
#   native.to_js_records_per_s                  binding: batches as ArrayBuffers via ThreadSafeFunction
#   native.to_js_object_per_record_records_per_s  same records, one JS object per record
# Usage: bash native/bench/run.sh   (needs the addon built: npm run build:native)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
make -s -C "$here" build/drain_bench
if [[ ! -f "$here/../build/Release/icmpcap.node" ]]; then
  echo "native/bench: addon not built (npm run build:native)" >&2
  exit 1
fi
rings=2
cap=64
drain=$("$here/build/drain_bench" "$rings" "$cap" 2)
echo "drain: $drain"
tojs=$(node "$here/to_js.cjs" "$cap" 20000000 1000000)
echo "to_js: $tojs"
mkdir -p "$repo/bench"
DRAIN="$drain" TOJS="$tojs" RESULTS="$repo/bench/results.json" CPUS="$(nproc)" node -e '
const fs = require("node:fs");
const file = process.env.RESULTS;
let results = {};
try { results = JSON.parse(fs.readFileSync(file, "utf8")); } catch {}
const d = JSON.parse(process.env.DRAIN);
const t = JSON.parse(process.env.TOJS);
const cmd = "npm run bench";
const host = `host, ${process.env.CPUS} CPUs, node ${process.version}`;
results["native.drain_records_per_s"] = {
  value: Math.round(d.records_per_s), unit: "records/s", command: cmd,
  note: `RingReader::poll_records draining ${d.rings} memfd rings (8 MiB each, module ring ABI) into 4096-record / 1 MiB batches with the timestamp merge, ${d.record_bytes}-byte records, ${d.records} records in ${d.seconds.toFixed(2)} s of drain time (filling excluded); target 20 M/s; ${host}`,
};
results["native.to_js_records_per_s"] = {
  value: Math.round(t.batch.recordsPerS), unit: "records/s", command: cmd,
  note: `synthetic records (${t.recordBytes} bytes) through the binding path of a capture: Batcher, bounded queue (64 batches), ThreadSafeFunction, one V8-owned ArrayBuffer copy per batch; ${t.batch.records} records in ${t.batch.seconds.toFixed(2)} s; target 5 M/s; ${host}`,
};
results["native.to_js_object_per_record_records_per_s"] = {
  value: Math.round(t.objects.recordsPerS), unit: "records/s", command: cmd,
  note: `same path and run, but each batch becomes an array of one JS object per record (10 properties + an ArrayBuffer of the bytes): ${(t.batch.recordsPerS / t.objects.recordsPerS).toFixed(1)}x slower than ArrayBuffer batches; ${t.objects.records} records in ${t.objects.seconds.toFixed(2)} s`,
};
fs.writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
for (const k of ["native.drain_records_per_s", "native.to_js_records_per_s", "native.to_js_object_per_record_records_per_s"])
  console.log(`${k}: ${results[k].value} ${results[k].unit}`);
'
