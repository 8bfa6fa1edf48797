#!/usr/bin/env bash
# A latency and memory budget as a CI step: fails the job when the model is too slow or too big for the device.
#
#   bash examples/budget_check.sh [BUNDLE]
#
# Exit codes: 0 within budget, 1 budget violated or not measured, 2 a usage error. The JSON result is kept for
# `edgert compare` against the last release's (`edgert compare baseline.json bench.json --fail-on 10%`).
set -euo pipefail
bundle="${1:-minilm}"
budget="${EDGERT_BUDGET:-p95<=250ms,rss<=600MB}"
edgert bench "$bundle" --quick --threads 1 --batch-sizes 1 --seq-len 32 --energy-meter off \
  --budget "$budget" --json bench.json --markdown bench.md
echo "within budget: $budget (report: bench.md, samples: bench.json)"
