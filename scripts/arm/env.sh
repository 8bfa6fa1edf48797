# Shared settings of the aarch64 lane; sourced by the scripts beside it.
# Everything it builds is cached under $EDGERT_ARM_CACHE, so a second run only builds edgert and tests.
cache="${EDGERT_ARM_CACHE:-$HOME/.cache/edgert-arm}"
root="$cache/root"              # arm64 Debian 12 root: Python 3.11, gcc
qemu="$cache/qemu/usr/bin/qemu-aarch64"
wheels="$cache/wheels"          # aarch64 wheels of the runtime and test dependencies
# mmdebstrap looks for the F flag under this name, so it uses it instead of copying a qemu into the root
binfmt_name="qemu-aarch64"
# onnxruntime as on the host: the lane compares results across the two architectures at the same version.
ORT_VERSION="${EDGERT_ARM_ORT:-1.32.0}"

log() { echo "arm: $*" >&2; }
die() { echo "arm: error: $*" >&2; exit 1; }

# The host's Debian mirror, read from its own apt sources, so the lane uses whatever this machine is allowed to reach.
debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  echo "$m"
}

# Runs a command inside the root under emulation. QEMU_CPU picks the CPU model (cortex-a72: Pi 4; cortex-a76: Pi 5).
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/opt/deps/bin:/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
    QEMU_CPU="${QEMU_CPU:-cortex-a72}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 EDGERT_HOME=/tmp/edgert-home \
    ${EDGERT_ARM_ENV:-} "$@"
}

mount_root() {
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/sys" || mount --rbind /sys "$root/sys"
  mountpoint -q "$root/dev" || mount --rbind /dev "$root/dev"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
}

umount_root() {
  for m in dev sys proc; do
    if mountpoint -q "$root/$m"; then umount -R "$root/$m" 2>/dev/null || umount -lR "$root/$m" || true; fi
  done
}

# Where the host-exported bundles and the aarch64 wheel of this source version are cached: a hash of the files
# each is built from, so `bundles.sh` and `wheel.sh` can run ahead (beside the x86_64 suite in CI) and the lane
# finds them.
source_key() { (cd "$repo" && git ls-files -co --exclude-standard "$@" | sort | xargs sha256sum | sha256sum | cut -c1-16); }
bundles_dir() { echo "$cache/bundles-$(source_key edgert tests/bundles.py pyproject.toml)"; }
wheel_dir() { echo "$cache/wheel-$(source_key edgert kernels setup.py pyproject.toml MANIFEST.in README.md)"; }
# Succeeds where the host's u8 x s8 kernel does not saturate (VNNI or AMX): which per-token forms the lane
# exports and compares, and how close they must agree. Needs the host venv.
host_u8s8_exact() { "$repo/.venv/bin/python" -c 'import sys, edgert.device as d; sys.exit(0 if d.u8s8_exact() else 1)'; }
