#!/usr/bin/env bash
# The aarch64 lane (`make test-arm`): builds edgert's aarch64 wheel inside an emulated arm64 Debian root, installs
# it in a fresh venv outside the source tree, runs the runtime's tests there as a Raspberry Pi 4 (cortex-a72),
# compares embeddings with x86_64, and runs `edgert device` and `edgert bench` as a Pi 4 and as a Pi 5
# (cortex-a76, with dot-product instructions). Bundles are exported on the host: torch has no usable aarch64 wheel.
# Timings under emulation mean nothing; the lane checks results, never speed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/scripts/arm"
. "$here/env.sh"
t0=$(date +%s)
step() { log "[$(( $(date +%s) - t0 )) s] $*"; }

bash "$here/setup.sh"
host_py="$repo/.venv/bin/python"
[ -x "$host_py" ] || die "no host venv: run scripts/test.sh (or scripts/bootstrap.sh dev) first"
# 1 where the host's u8 x s8 kernel does not saturate (VNNI or AMX): which per-token forms are compared, and how close
u8s8_exact=0
host_u8s8_exact && u8s8_exact=1

work="$root/work"
mount_root
trap umount_root EXIT
rm -rf "$work" && mkdir -p "$work"
out="${EDGERT_ARM_OUT:-$repo/.edgert/arm}"
rm -rf "$out" && mkdir -p "$out"

# 1. Bundles, exported on the host once per source version (scripts/arm/bundles.sh says which), and 2. the
#    aarch64 wheel, built in the root once per version of the packaged sources. CI runs both ahead, beside the
#    x86_64 suite; here they are then found in the cache.
step "the host-exported bundles"
bundles="$(bash "$here/bundles.sh")"
cp -r "$bundles" "$work/bundles"
step "the aarch64 wheel"
wcache="$(bash "$here/wheel.sh")"
mount_root   # wheel.sh, when it builds, unmounts the root as it leaves
mkdir -p "$work/wheelhouse" && cp "$wcache"/*.whl "$work/wheelhouse/"
wheel="$(cd "$work/wheelhouse" && ls edgert-*manylinux*_aarch64.whl)"
cp "$work/wheelhouse/$wheel" "$out/"
step "wheel: $wheel ($(du -k "$work/wheelhouse/$wheel" | cut -f1) KiB)"

# 3. A fresh venv outside the source tree: the dependencies come from the cached venv through a .pth file,
#    edgert only from the wheel. The compiled kernels must be the ones in use.
in_root /usr/bin/python3 -m venv --without-pip /work/venv   # pip is the deps venv's, run with --python
site=$(in_root /opt/deps/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
venv_site=$(in_root /work/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$site" > "$root$venv_site/edgert-lane-deps.pth"
in_root /opt/deps/bin/python -m pip --python /work/venv/bin/python install -q --disable-pip-version-check --no-index --no-deps \
  "/work/wheelhouse/$wheel"
in_root sh -c 'cd / && /work/venv/bin/python -c "
import edgert, edgert.kernels as k, sys
assert edgert.__file__.startswith(\"/work/venv/\"), edgert.__file__
assert edgert.KERNELS == \"cython\", edgert.KERNELS
print(\"arm: installed\", edgert.__version__, \"from the wheel, kernels\", edgert.KERNELS, file=sys.stderr)
"'

# 4. The runtime's tests as a Raspberry Pi 4 (no dot-product instructions), on the host-exported bundles.
step "running the test suite under QEMU_CPU=cortex-a72 (tests that need torch are skipped, with the reason)"
mkdir -p "$work/t" && cp -r "$repo/tests" "$repo/examples" "$work/t/" && cp "$repo/pyproject.toml" "$work/t/"
# test_wheel.py is left out: it builds x86_64 wheels from a checkout; this lane is the aarch64 wheel test.
# test_bench.py too (6.5 min under qemu, timings that mean nothing there): step 6 runs edgert bench itself.
# Two pytest workers (xdist): the emulated suite is CPU-bound and one qemu process keeps about one core busy, so two
# use both cores once the Python 3.10 lane beside it is done (each worker has its own EDGERT_HOME and tmp folders).
if ! QEMU_CPU=cortex-a72 EDGERT_ARM_ENV="EDGERT_TEST_BUNDLES=/work/bundles EDGERT_EXTENSIONS=1 EDGERT_EMULATED=1" \
  in_root sh -c 'cd /work/t && /work/venv/bin/python -m pytest -q -p no:cacheprovider -n 2 -rfEs --durations=25 tests --ignore=tests/test_wheel.py --ignore=tests/test_bench.py' > "$out/pytest.log" 2>&1; then
  tail -60 "$out/pytest.log" >&2
  die "the test suite failed on aarch64 (full log: $out/pytest.log)"
fi
grep -E "passed|failed" "$out/pytest.log" | tail -1 | sed 's/^/arm: cortex-a72: /' >&2

# 5. The same texts embedded on both architectures: fp32 must agree to a cosine of 0.99999; int8 is reported.
step "comparing embeddings with x86_64"
cp "$here/parity.py" "$work/parity.py"
"$host_py" "$here/parity.py" embed "$out/x86_64-w8.npz" fp32="$bundles/arm-w8" int8="$bundles/arm-w8"
"$host_py" "$here/parity.py" embed "$out/x86_64-dyn.npz" int8="$bundles/arm-dyn"
int8_names="dyn"
for name in pt ptv ptd; do
  [ -d "$bundles/arm-$name" ] || continue
  int8_names="$int8_names $name"
  "$host_py" "$here/parity.py" embed "$out/x86_64-$name.npz" int8="$bundles/arm-$name"
done
# every int8 save is judged against fp32 vectors of the same machine, which the w8 bundle's fp32 graph gives: the
# bundles must then hold the same fp32 graph
"$host_py" - "$bundles" w8 $int8_names <<'PY' || die "the lane's bundles hold different fp32 graphs"
import json, sys
root, names = sys.argv[1], sys.argv[2:]
def fp32(name):
    m = json.load(open(f"{root}/arm-{name}/edgert.json"))
    return {f: m["files"][f]["sha256"] for f in m["files"] if f.startswith("model.onnx")}
first = fp32(names[0])
sys.exit(0 if all(fp32(n) == first for n in names[1:]) else 1)
PY
for cpu in cortex-a72 cortex-a76; do
  QEMU_CPU=$cpu in_root /work/venv/bin/python /work/parity.py embed "/work/$cpu-w8.npz" fp32=/work/bundles/arm-w8 int8=/work/bundles/arm-w8
  cp "$work/$cpu-w8.npz" "$out/"
  for name in $int8_names; do
    QEMU_CPU=$cpu in_root /work/venv/bin/python /work/parity.py embed "/work/$cpu-$name.npz" "int8=/work/bundles/arm-$name"
    cp "$work/$cpu-$name.npz" "$out/"
  done
done
"$host_py" "$here/parity.py" compare "$out/x86_64-w8.npz" "$out/cortex-a72-w8.npz" "$out/cortex-a76-w8.npz" > "$out/parity-w8.json" \
  || { cat "$out/parity-w8.json" >&2; die "fp32 embeddings differ between x86_64 and aarch64"; }
# Per-token int8 computes its products in integers, but LayerNorm, GELU and softmax stay float, and their kernels
# differ by CPU: a last-bit difference there can move an activation across a rounding step of the next quantizer.
# It must agree with fp32 on each CPU to 0.99, and with x86_64 to 0.999 where the host has VNNI or AMX (its
# AVX-512 float kernels); on an AVX2-only host to 0.998: on an AMD EPYC (AVX2) the pt bundle agreed at 0.99838 with
# both Cortex-A72 and A76, which agree with each other bit for bit, and the graph as it was before
# MatMulIntegerToFloat gave the same vectors bit for bit on both sides (2026-12-07). The other int8 recipes are
# reported (their kernels differ by CPU; dynamic int8 depends on the batch).
int8_floor=0.998
[ "$u8s8_exact" = 1 ] && int8_floor=0.999
for name in $int8_names; do
  case $name in pt*) gates="--int8-min $int8_floor --vs-fp32-min 0.99" ;; *) gates="" ;; esac
  "$host_py" "$here/parity.py" compare "$out/x86_64-$name.npz" "$out/cortex-a72-$name.npz" "$out/cortex-a76-$name.npz" \
    --fp32 "$out/x86_64-w8.npz" "$out/cortex-a72-w8.npz" "$out/cortex-a76-w8.npz" $gates > "$out/parity-$name.json" \
    || { cat "$out/parity-$name.json" >&2; die "per-token int8 ($name) is under its agreement floor"; }
done
"$host_py" - "$out" w8 $int8_names <<'PY' >&2
import json, sys
out = sys.argv[1]
for name in sys.argv[2:]:
    for key, r in json.load(open(f"{out}/parity-{name}.json"))["results"].items():
        head = f"arm: parity {name} {key.rsplit('/', 1)[-1]}: "
        parts = [f"min cosine vs x86_64 {r['min_cosine']:.8f}, bitwise equal {r['bitwise_equal']}"] if "min_cosine" in r else []
        if "vs_fp32_min_cosine_here" in r:
            parts.append(f"vs fp32 there {r['vs_fp32_min_cosine_here']:.6f}")
        print(head + ", ".join(parts))
PY

# 6. Device detection and bench as a Pi 4 and as a Pi 5: the preset must follow the dot-product instructions.
for cpu in cortex-a72 cortex-a76; do
  step "edgert device and edgert bench --quick under QEMU_CPU=$cpu"
  QEMU_CPU=$cpu in_root /work/venv/bin/edgert device > "$out/device-$cpu.txt"
  # every phase, cut short: under emulation the figures mean nothing; the lane checks that bench runs end to end
  QEMU_CPU=$cpu in_root /work/venv/bin/edgert bench /work/bundles/arm-w8 --quick --seq-len 16 --batch-sizes 1,2 \
    --rounds 2 --min-time 0.5 --min-count 5 --throughput-time 0.2 --warmup 1 --cold-runs 1 --energy-time 0.2 \
    --json "/work/bench-$cpu.json" > "$out/bench-$cpu.txt" 2>&1 || { cat "$out/bench-$cpu.txt" >&2; die "bench failed under $cpu"; }
  cp "$work/bench-$cpu.json" "$out/"
done
grep -q "quantization target *arm64$" "$out/device-cortex-a72.txt" || { cat "$out/device-cortex-a72.txt" >&2; die "cortex-a72 should give the arm64 preset"; }
grep -q "quantization target *arm64_dotprod$" "$out/device-cortex-a76.txt" || { cat "$out/device-cortex-a76.txt" >&2; die "cortex-a76 should give the arm64_dotprod preset"; }
diff <(grep -E "^(features|quantization target)" "$out/device-cortex-a72.txt") \
     <(grep -E "^(features|quantization target)" "$out/device-cortex-a76.txt") | sed 's/^/arm: a72 vs a76: /' >&2 || true
step "done; results in $out"
