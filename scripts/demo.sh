#!/usr/bin/env bash
# make demo: until the router runs end to end, the demo runs what exists:
# the micro benchmarks of the foundation packages, each next to its baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "fwdd demo: the router pipeline is not wired up yet (see the open issues)."
echo "Running the benchmarks of what exists, each against its baseline:"
echo
go test -run '^$' -bench . -benchmem -benchtime 1s ./ring/ ./mbuf/
