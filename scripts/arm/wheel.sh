#!/usr/bin/env bash
# edgert's aarch64 wheel, built inside the emulated arm64 root from the tracked sources and repaired to manylinux
# by auditwheel. Compiling under emulation takes minutes, so the wheel is cached per version of the packaged
# sources; it needs the root (scripts/arm/setup.sh), not the host venv. Prints the folder holding the wheel.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/scripts/arm"
. "$here/env.sh"
[ -x "$root/opt/deps/bin/python" ] || die "no arm64 root: run scripts/arm/setup.sh first"
wcache="$(wheel_dir)"
if [ ! -f "$wcache/.done" ]; then
  log "building the aarch64 wheel (compiles the Cython kernels under emulation)"
  t0=$(date +%s)
  build="$root/wheel-build"
  rm -rf "$build" && mkdir -p "$build/src"
  mount_root
  trap umount_root EXIT
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - ) | tar -xf - -C "$build/src"
  in_root sh -c 'cd /wheel-build/src && EDGERT_EXTENSIONS=1 /opt/deps/bin/python -m build --wheel --no-isolation --outdir /wheel-build/dist > /wheel-build/build.log 2>&1' \
    || { tail -40 "$build/build.log" >&2; die "the aarch64 wheel did not build"; }
  in_root sh -c 'cd /wheel-build && /opt/deps/bin/python -m auditwheel repair --wheel-dir /wheel-build/wheelhouse dist/*.whl > /wheel-build/auditwheel.log 2>&1' \
    || { tail -20 "$build/auditwheel.log" >&2; die "auditwheel repair failed"; }
  rm -rf "$cache"/wheel-* && mkdir -p "$wcache" && cp "$build"/wheelhouse/*.whl "$wcache/" && touch "$wcache/.done"
  rm -rf "$build"
  log "aarch64 wheel built in $(( $(date +%s) - t0 )) s"
fi
echo "$wcache"
