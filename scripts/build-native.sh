#!/usr/bin/env bash
# Builds native/ with node-gyp against the Node headers on this machine (never downloads headers).
set -euo pipefail
cd "$(dirname "$0")/.."
args=(rebuild --directory native)
for dir in "${npm_config_nodedir:-}" /usr /usr/local; do
  if [[ -n "$dir" && -f "$dir/include/node/node_api.h" ]]; then args+=(--nodedir="$dir"); break; fi
done
if [[ ! -f native/binding.gyp ]]; then
  echo "icmpcap: native/binding.gyp missing; nothing to build" >&2
  exit 1
fi
exec npx --no-install node-gyp "${args[@]}"
