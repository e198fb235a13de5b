#!/usr/bin/env bash
# Downloads the Go modules the build and the tests import, before they need
# them, retrying with back-off for up to 20 minutes ($RETRY_SECONDS) when
# the module proxy fails. Quick when the module cache has them.
#
# It lists the packages rather than running "go mod download", which would
# also fetch modules go.sum names but nothing here imports: a download
# "go test" itself never makes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/retry.sh
go=${GO:-go}
proxy=$("$go" env GOPROXY)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# fetch fails for another try only when a download failed; an error in the
# code (a bad import) stops at once.
fetch() {
  "$go" list -deps -test ./... >/dev/null 2>"$out" && return 0
  cat "$out" >&2
  if ! grep -Eqi 'https?://|dial tcp|timeout|connection|proxy|EOF|TLS' "$out"; then
    echo "gomod.sh: go list failed, and not on a download" >&2
    exit 1
  fi
  return 1
}
retry "downloading Go modules (GOPROXY=$proxy)" fetch || {
  echo "gomod.sh: the Go module proxy ($proxy) looks down; try again later or set GOPROXY" >&2
  exit 1
}
