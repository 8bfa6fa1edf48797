#!/usr/bin/env bash
# README command 2: set up everything from nothing (venv, build and test dependencies, compiled kernels) and
# run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/bootstrap.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 EDGERT_EXTENSIONS=1
.venv/bin/ruff check edgert tests benchmarks examples setup.py
.venv/bin/ruff format --check -q edgert tests benchmarks examples setup.py
.venv/bin/mypy  # strict on edgert/ ([tool.mypy] in pyproject.toml)
.venv/bin/python -m pytest -q "$@"
echo "test.sh: wall time $(( $(date +%s) - start )) s" >&2
