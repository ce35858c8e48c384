#!/usr/bin/env bash
# `npm run bench`: every benchmark, each next to its peer in the same run; results merge into
# bench/results.json and docs/BENCHMARKS.md is regenerated from it. Figures on shared machines are noisy:
# compare the ratios measured in one run, not absolute numbers across runs.
#   npm run bench                  everything
#   npm run bench -- files service only those parts (kernel native files service renderer)
set -uo pipefail
cd "$(dirname "$0")/.."
PARTS=(kernel native files service renderer)
[[ $# -gt 0 ]] && PARTS=("$@")
mkdir -p bench
failed=0
run() {
  local name=$1
  shift
  printf '\n=== bench: %s\n' "$name"
  if ! "$@"; then
    echo "--- bench $name FAILED"
    failed=$((failed + 1))
  fi
}
npm run --silent build || exit 1
for part in "${PARTS[@]}"; do
  case $part in
    kernel) run kernel bash -c 'bash scripts/deps.sh kernel kbench && bash kernel/test/bench.sh' ;;
    native) run native bash native/bench/run.sh ;;
    files) run files bash -c 'bash scripts/deps.sh files && npx --no-install tsx electron/core/files/bench.ts' ;;
    service)
      bash scripts/deps.sh service
      run service node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/service-bench.ts
      run service-20m node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/service-bench.ts 20000000
      run service-ring node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/ring-bench.ts
      run service-ring-20m node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/ring-bench.ts 20000000
      run proc-race node --import tsx electron/core/bench/proc-race.ts
      run service-filters node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/filter-bench.ts
      run service-event-loop node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/event-loop-bench.ts
      run service-ingest-load node --max-old-space-size=8192 --initial-old-space-size=512 --v8-pool-size=0 --import tsx electron/core/bench/ingest-load-bench.ts
      ;;
    renderer) run renderer npx --no-install playwright test --config test/bench/playwright.config.ts ;;
    *) echo "unknown part $part (known: ${PARTS[*]})"; exit 2 ;;
  esac
done
node scripts/bench-report.mjs
exit $((failed > 0))
