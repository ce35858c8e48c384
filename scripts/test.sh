#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, then runs every check and test suite, and ends
# with one line counting the suites that passed and failed. Run as root (namespaces, AF_PACKET, apt).
#   npm test                 everything
#   npm test -- unit e2e     only the named suites
set -uo pipefail
cd "$(dirname "$0")/.."

SUITES=(static unit native-core kernel e2e electron packaging)
[[ $# -gt 0 ]] && SUITES=("$@")

log() { printf '\n=== %s\n' "$*"; }
passed=0
failed=0
failures=()
failure_logs=()
mkdir -p artifacts/logs && rm -f artifacts/logs/suite-*.log
# Each suite's output also goes to artifacts/logs/suite-<n>.log; a failed suite's failures are printed again at the
# end of the run, so that they are in the last lines a CI system shows, not thousands of lines above.
run_suite() {
  local name=$1
  shift
  log "$name"
  local start=$SECONDS
  local logfile="artifacts/logs/suite-$((passed + failed + 1)).log"
  "$@" 2>&1 | tee "$logfile"
  if [[ ${PIPESTATUS[0]} -eq 0 ]]; then
    passed=$((passed + 1))
    echo "--- $name: passed in $((SECONDS - start)) s"
  else
    failed=$((failed + 1))
    failures+=("$name")
    failure_logs+=("$logfile")
    echo "--- $name: FAILED in $((SECONDS - start)) s"
  fi
}

# The failures of one suite's log: vitest's "Failed Tests" section, else the lines that name a failure.
failure_digest() {
  local logfile=$1
  if grep -q 'Failed Tests' "$logfile"; then
    sed -e 's/\x1b\[[0-9;]*m//g' "$logfile" | sed -n '/Failed Tests/,$p' | grep -v '^ *$' | head -120
  else
    sed -e 's/\x1b\[[0-9;]*m//g' "$logfile" | grep -E -i '(^|[^a-z])(FAIL|failed|error|✘|not ok)' | head -60
    echo "[last lines]"
    tail -n 15 "$logfile"
  fi
}

if [[ $(id -u) -ne 0 ]]; then
  echo "icmpcap: the tests create network namespaces and capture packets: run them as root (sudo npm test)" >&2
  exit 1
fi

log "setup"
bash scripts/deps.sh build test e2e files odd native metrics paths || exit 1
if [[ ! -d node_modules ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install || exit 1
fi
npm run --silent build || { echo "icmpcap: build failed"; exit 1; }

static_checks() {
  npx --no-install eslint . --max-warnings=0 &&
    npx --no-install prettier --check . &&
    bash scripts/clang-format.sh check &&
    npx --no-install tsc -b electron/tsconfig.build.json electron/preload/tsconfig.json && npx --no-install tsc -p tsconfig.json && npx --no-install tsc -p electron/tsconfig.json &&
    npx --no-install vue-tsc --noEmit -p renderer/tsconfig.json
}

native_core() {
  if [[ -f native/test/Makefile ]]; then
    make -s -C native/test test test-asan
  else
    echo "native/test/Makefile missing"
    return 1
  fi
}

kernel_tests() {
  bash scripts/deps.sh kernel && bash kernel/test/run.sh
}

e2e() {
  mkdir -p artifacts/screenshots
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npx --no-install playwright test
}

electron_specs() {
  npx --no-install playwright test --config test/electron/playwright.config.ts
}

for suite in "${SUITES[@]}"; do
  case $suite in
    static) run_suite "lint, format and typecheck" static_checks ;;
    unit) run_suite "unit and host tests (vitest)" npx --no-install vitest run --reporter=verbose ;;
    native-core) run_suite "native core tests (plain and ASan+UBSan)" native_core ;;
    kernel) run_suite "kernel module in a QEMU guest" kernel_tests ;;
    e2e) run_suite "end to end in chromium" e2e ;;
    electron) run_suite "electron app" electron_specs ;;
    packaging) run_suite "packaging: debs, DKMS in a Debian root, module in QEMU" bash test/packaging/run.sh ;;
    *) echo "unknown suite $suite (known: static unit native-core kernel e2e electron packaging)"; exit 2 ;;
  esac
done

echo
# Tests that passed only on their second try (vitest.config.ts: retry): not failures, but named here to be fixed.
flaky=$(sed -e 's/\x1b\[[0-9;]*m//g' artifacts/logs/suite-*.log 2>/dev/null | grep -F '(retry x' | head -20)
[[ -n $flaky ]] && printf '=== passed on a second try (flaky, to be fixed):\n%s\n' "$flaky"
for k in "${!failure_logs[@]}"; do
  echo "=== what failed in: ${failures[$k]} (whole log: ${failure_logs[$k]})"
  failure_digest "${failure_logs[$k]}"
done
[[ $failed -gt 0 ]] && echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
