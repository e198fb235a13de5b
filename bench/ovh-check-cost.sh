#!/usr/bin/env bash
# What a --check of the rescue task costs in OVH API calls and time on N hosts
# of one account, against the OVH API emulator as it is by default (a bad day:
# 20-120 ms answers, 5xx bursts, 429 above 60 requests a minute) with nixbook's
# default rate (60 a minute, bursts of 5). Every host is in flight at once,
# the preflight of all hosts comes first, then the check, as `nixbook run
# --check` does them. The hosts are fakes: only the API is measured.
# Usage: bench/ovh-check-cost.sh [N]     (default 100 hosts)
# Measured (2 shared cores): hosts=100 calls=112 per_host=1.12 max_host=6
# elapsed=1m47s rate=60/m burst 5; another run 113 calls, 1m48s (before the netboot lists shared per
# commercial range and OVH's fair-use rate: 212 calls, 4m2s).
set -euo pipefail
N=${1:-100}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
NIXBOOK_BENCH_HOSTS=$N go test -count=1 -timeout 30m -run '^TestCheckCostBench$' ./internal/modules/rescue/ -v |
  sed -n 's/^BENCH //p'
