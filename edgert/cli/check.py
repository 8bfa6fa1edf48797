"""``edgert check``: a quantized model against its fp32 reference on the inputs where quantization drifts."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..bundle import Bundle
from ..errors import BundleError, EdgertError, TaskError


def _user_lines(path: str) -> list[tuple[str, str]]:
    from ..tasks.text import read_lines

    return [(f"{Path(path).name}:{n}", line) for n, line in enumerate(read_lines(path), 1)]


def record(bundle: Bundle, result: dict[str, Any]) -> None:
    """Writes the result into the card's ``check`` (edgert.bundle.update_card: hashes untouched)."""
    from ..bundle import update_card

    update_card(bundle.path, "check", result)


def run_check(args: Namespace, resolve_bundle: Callable[[str | None], Path]) -> int:
    from .. import load, quality
    from ..history import recorder

    store = recorder.url_for(args.store) if recorder.wanted(args.record) else None  # a bad URL: before any work
    path = resolve_bundle(args.bundle)
    bundle = Bundle.open(path, verify=True)
    from ..tasks import registry

    if bundle.task not in registry.with_input("text"):
        raise TaskError(f"{path}: edgert check compares text models; this bundle's task is {bundle.task!r}")
    variant = args.variant or bundle.default_model
    model = load(bundle, variant=variant, verify=False)  # every file was just hashed
    if args.reference:
        ref_bundle = Bundle.open(resolve_bundle(args.reference), verify=True)
        ref_variant = "fp32" if "fp32" in ref_bundle.models else ref_bundle.default_model
        reference = load(ref_bundle, variant=ref_variant, verify=False)
        ref_name = f"{ref_bundle.path} ({ref_variant})"
    else:
        if "fp32" not in bundle.models:
            raise BundleError(f"{path}: has no fp32 model to compare with; pass --reference REF")
        if variant == "fp32":
            raise EdgertError(f"{path}: the fp32 model is the reference; check a quantized variant or pass --reference")
        reference = load(bundle, variant="fp32", verify=False)
        ref_name = "fp32 (same bundle)"
    if args.worst < 1:
        raise EdgertError(f"--worst must be >= 1, got {args.worst}")
    max_length = int(bundle.pre.get("max_length", 512))
    inputs = quality.long_tail(max_length, quality.special_tokens(model))
    if args.file:
        inputs += _user_lines(args.file)
    result = quality.check(model, reference, inputs, worst=args.worst)
    result = {
        "variant": variant,
        "reference": ref_name,
        "inputs": len(inputs),
        "user_file": args.file,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **result,
    }
    if not args.no_card:
        record(bundle, result)
    if store is not None:
        from ..history.records import from_check

        recorder.record(from_check(bundle.path, result), store, lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print(result, bundle)
    if args.fail_below is not None:
        figure = result.get("top1_agreement", result["min_cosine"])
        if figure < args.fail_below:
            print(f"edgert: check failed: {figure:.6f} < {args.fail_below}", file=sys.stderr)
            return 1
    return 0


def _print(result: dict[str, Any], bundle: Bundle) -> None:
    inv = result["batch_invariance"]
    print(f"{bundle.path} {result['variant']} vs {result['reference']}, {result['inputs']} inputs, each run alone")
    print(
        f"  worst cosine {result['min_cosine']:.6f}, mean {result['mean_cosine']:.6f}, "
        f"max abs diff {result['max_abs_diff']:.4g}"
        + (f", top-1 agreement {result['top1_agreement']:.4f}" if "top1_agreement" in result else "")
    )
    print(
        f"  batch invariance (alone vs batches of {inv['batch_size']}): worst cosine {inv['min_cosine']:.6f}"
        f" ({'invariant' if inv['invariant'] else 'NOT batch-invariant'})"
    )
    print("  worst inputs:")
    width = max(len(r["input"]) for r in result["worst_inputs"])
    for r in result["worst_inputs"]:
        print(f"    {r['input']:<{width}}  cosine {r['cosine']:.6f}  max abs diff {r['max_abs_diff']:.4g}")
