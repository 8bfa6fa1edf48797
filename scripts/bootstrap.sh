#!/usr/bin/env bash
# Sets up .venv from nothing: Python venv, build tools, torch (CPU) for export, edgert itself in editable mode
# with its Cython kernels compiled in place. Usage: scripts/bootstrap.sh EXTRAS   (e.g. "export,minilm,bench")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
venv="${EDGERT_VENV:-.venv}"
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv with $($py --version)" >&2
  "$py" -m venv "$venv"
fi
log="$venv/.edgert-bootstrap.log"
: > "$log"
# pip's chatter goes to the log; it is shown only when a step fails.
pip_install() {
  if ! "$venv/bin/python" -m pip --disable-pip-version-check -q install "$@" >> "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "bootstrap: pip install $* failed (full log: $log)" >&2
    exit 1
  fi
}
pip_install -U pip setuptools wheel "Cython>=3.0"

# torch for export: the CPU build, pinned. An unpinned torch can pull a CUDA build of several GB.
if [[ "$extras" == *export* || "$extras" == *dev* ]]; then
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "bootstrap: installing ${EDGERT_TORCH_SPEC:-torch==2.13.0}" >&2
    pip_install "${EDGERT_TORCH_SPEC:-torch==2.13.0}"
  fi
fi

# The audio tests speak with espeak-ng (Debian's package). Installed where this runs as root with apt-get (CI,
# containers); elsewhere those tests skip and say why.
if [[ "$extras" == *dev* ]] && ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing espeak-ng (apt-get)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng; } >> "$log" 2>&1 \
      || echo "bootstrap: could not install espeak-ng; the speech tests will skip (log: $log)" >&2
  else
    echo "bootstrap: espeak-ng is missing; the speech tests will skip (apt-get install espeak-ng)" >&2
  fi
fi

# Reinstall only when the package metadata changed; the kernels are rebuilt below either way.
stamp="$venv/.edgert-installed"
want="$(cat pyproject.toml setup.py | sha256sum | cut -c1-16)-$extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing edgert[${extras}] (editable)" >&2
  pip_install --no-build-isolation -e ".${extras:+[$extras]}"
  echo "$want" > "$stamp"
fi
# Compile the Cython kernels in place (a no-op when they are up to date); a failed build stops here.
if ! "$venv/bin/python" setup.py build_ext --inplace >> "$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "bootstrap: compiling the kernels failed (full log: $log)" >&2
  exit 1
fi
"$venv/bin/python" -c "import edgert, sys; sys.stderr.write(f'bootstrap: edgert {edgert.__version__}, kernels: {edgert.KERNELS}\n')"
