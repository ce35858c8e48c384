#!/usr/bin/env bash
# Installs from Debian's apt archive what a part of the project needs, only when it is missing, and says
# what it installs. Usage: scripts/deps.sh GROUP...   (groups: build test e2e files odd native metrics paths kernel kbench service)
set -euo pipefail

declare -A GROUP=(
  [build]="g++ make python3"
  [test]="iproute2 iputils-ping clang-format nftables"
  [e2e]="chromium xvfb"
  [files]="tshark tcpdump"
  [odd]="tshark python3-scapy iproute2 iputils-ping"
  [native]="libcap2-bin util-linux"
  [metrics]="prometheus curl"
  [paths]="traceroute mtr-tiny iputils-tracepath iproute2 nftables"
  [kbench]="tcpdump"
  [service]="tshark time"
  [kernel]="linux-image-amd64 linux-headers-amd64 qemu-system-x86 busybox-static cpio kmod gcc make libc6-dev iproute2 nftables tshark"
)

want=()
for g in "$@"; do
  [[ -n "${GROUP[$g]:-}" ]] || { echo "deps.sh: unknown group $g (known: ${!GROUP[*]})" >&2; exit 2; }
  for pkg in ${GROUP[$g]}; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || want+=("$pkg")
  done
done
[[ ${#want[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "icmpcap: missing Debian packages: ${want[*]}; install them with: sudo apt-get install ${want[*]}" >&2
  exit 1
fi
echo "icmpcap: installing from apt (needed by: $*): ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/icmpcap-update-stamp
if [[ ! -e $stamp ]] || [[ -z $(find "$stamp" -mmin -600 2>/dev/null) ]]; then
  apt-get update -q -o DPkg::Lock::Timeout=600 >/dev/null
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
apt-get install -y -q -o DPkg::Lock::Timeout=600 "${want[@]}" >/dev/null
echo "icmpcap: installed ${want[*]}"
