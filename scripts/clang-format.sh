#!/usr/bin/env bash
# clang-format over the C and C++ sources of native/ (kernel/ follows kernel style and checkpatch instead).
#   scripts/clang-format.sh check | fix
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}
mapfile -t files < <(git ls-files --cached --others --exclude-standard 'native/*.c' 'native/*.cc' 'native/*.h' 2>/dev/null)
[[ ${#files[@]} -eq 0 ]] && exit 0
if [[ $mode == fix ]]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
fi
