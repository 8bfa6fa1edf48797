#!/usr/bin/env bash
# The aarch64 lane's bundles, exported on the host (torch has no usable aarch64 wheel), once per source version:
# the test suite's, and for the cross-architecture comparison an fp32 bundle and int8 recipes exported for arm64
# (weight-only int8, dynamic int8, and per-token int8: integer arithmetic that is exact on every CPU) and for
# arm64_dotprod: where the host's u8 x s8 kernel is exact (VNNI, AMX), the per-token VNNI form, which such a host
# makes its default and which must then give the same vectors on a Pi; elsewhere the portable per-token form again.
# Needs the host venv (scripts/bootstrap.sh dev). Prints the folder.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/scripts/arm"
. "$here/env.sh"
host_py="$repo/.venv/bin/python"
[ -x "$host_py" ] || die "no host venv: run scripts/test.sh (or scripts/bootstrap.sh dev) first"
bundles="$(bundles_dir)"
if [ ! -f "$bundles/.done" ]; then
  log "exporting the test bundles on the host into $bundles"
  rm -rf "$cache"/bundles-* && mkdir -p "$bundles"
  (cd "$repo" && HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 EDGERT_HOME="$bundles/.home" "$host_py" -m tests.bundles "$bundles") >&2
  specs=("w8 int8-weights arm64" "dyn dynamic arm64" "pt int8-pertoken arm64")
  if host_u8s8_exact; then
    specs+=("ptv int8-pertoken-vnni arm64_dotprod")
  else
    log "the host's u8 x s8 kernel saturates (no VNNI or AMX): the VNNI per-token form is not compared"
    specs+=("ptd int8-pertoken arm64_dotprod")
  fi
  for spec in "${specs[@]}"; do
    set -- $spec
    log "exporting MiniLM --quantize $2 --target $3"
    HF_HUB_OFFLINE=1 EDGERT_HOME="$bundles/.home" "$repo/.venv/bin/edgert" export minilm -o "$bundles/arm-$1" \
      --quantize "$2" --target "$3" > "$bundles/arm-$1.log" 2>&1 || { cat "$bundles/arm-$1.log" >&2; die "export for $3 failed"; }
  done
  rm -rf "$bundles/.home" && touch "$bundles/.done"
fi
echo "$bundles"
