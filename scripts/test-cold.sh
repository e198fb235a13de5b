#!/usr/bin/env bash
# make test as on a fresh machine: nixbook's caches start empty. The
# real-ZFS guest image ($NIXBOOK_ZFSVM_CACHE), the simulated fleet's payload
# and helper ($NIXBOOK_SIM_CACHE) and any other user cache ($XDG_CACHE_HOME)
# go to a new directory, removed afterwards whatever happens; the machine's
# caches (/var/cache/nixbook, ~/.cache/nixbook-sim) are left alone, so tests
# others run meanwhile keep theirs. Go's caches stay warm unless COLD_GO=1
# (which downloads every module again). The build logs are kept in
# .nixbook/test-cold/.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
cold=$(mktemp -d "${COLD_DIR:-/var/tmp}/nixbook-cold.XXXXXX")
logs=.nixbook/test-cold
if [ "${COLD_GO:-}" = 1 ]; then
  export GOCACHE=$cold/go-build GOMODCACHE=$cold/go-mod GOFLAGS="${GOFLAGS:--buildvcs=false} -modcacherw"
else
  # Before XDG_CACHE_HOME moves, which Go's build cache follows.
  GOCACHE=$("$go" env GOCACHE)
  export GOCACHE
fi
export NIXBOOK_ZFSVM_CACHE=$cold/zfsvm NIXBOOK_SIM_CACHE=$cold/nixbook-sim XDG_CACHE_HOME=$cold/xdg
cleanup() {
  rc=$?
  mkdir -p "$logs"
  find "$cold" -maxdepth 2 -name build.log -exec sh -c 'cp "$1" "$2/$(basename "$(dirname "$1")").build.log"' sh {} "$logs" \; 2>/dev/null || true
  rm -rf --one-file-system "$cold"
  echo "make test-cold: $([ "$rc" = 0 ] && echo passed || echo "FAILED ($rc)") in $((SECONDS / 60))m$((SECONDS % 60))s; build logs in $logs/"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "make test-cold: caches in $cold (empty)"
"${MAKE:-make}" test
