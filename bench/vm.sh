#!/bin/sh
# Measures the simulated fleet's vm hosts (QEMU machines with real ZFS):
# the image and its tools built cold (an empty cache, COLD=1 only: about
# 5 to 15 minutes, mostly the DKMS build of ZFS) and warm, `nixbook-sim up`
# of one vm host until it answers SSH in its rescue, and each case of
# make test-vm. Needs root.
#
#   bench/vm.sh          # warm figures and the cases
#   COLD=1 bench/vm.sh   # the cold build first, in a temporary cache
set -eu

cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "vm.sh: needs root" >&2; exit 1; }
work=$(mktemp -d /tmp/nixbook-vm-bench.XXXXXX)
trap '[ -d "$work/fleet" ] && "$work/nixbook-sim" down --dir "$work/fleet" >/dev/null 2>&1; rm -rf "$work"' EXIT INT TERM
export NIXBOOK_HEAVY_TESTS=1

now() { date +%s.%N; }
elapsed() { echo "$1 $(now)" | awk '{ printf "%.1f", $2 - $1 }'; }

if [ "${COLD:-}" = 1 ]; then
  t=$(now)
  NIXBOOK_ZFSVM_CACHE=$work/cache go test -count=1 -timeout 60m -run TestVMToolsOverlay ./sim/vm/ >"$work/cold.log" 2>&1 ||
    { cat "$work/cold.log"; exit 1; }
  echo "image and tools, cold: $(elapsed "$t") s"
  rm -rf "$work/cache"
fi
t=$(now)
go test -count=1 -run TestVMToolsOverlay ./sim/vm/ >/dev/null
echo "image and tools, warm (cached; includes go test's start): $(elapsed "$t") s"

go build -o "$work/nixbook-sim" ./cmd/nixbook-sim
printf 'hosts:\n  ks1:\n    kind: vm\n' >"$work/hosts.yml"
t=$(now)
"$work/nixbook-sim" up 1 --hosts "$work/hosts.yml" --dir "$work/fleet" >/dev/null
echo "nixbook-sim up 1 vm host (payload, kexec tarball, rescue boot): $(elapsed "$t") s"
"$work/nixbook-sim" down --dir "$work/fleet" >/dev/null

for case in TestVMHostRescueAndReboots:./sim/ TestVMInstallBIOSSingleDisk:./e2e/ TestVMInstallBIOSMirror:./e2e/ TestVMStageOneRefusesAPoolInUseElsewhere:./e2e/; do
  name=${case%%:*} pkg=${case#*:}
  t=$(now)
  go test -count=1 -timeout 30m -run "^$name\$" "$pkg" >"$work/$name.log" 2>&1 || { cat "$work/$name.log"; exit 1; }
  echo "$name: $(elapsed "$t") s"
done
