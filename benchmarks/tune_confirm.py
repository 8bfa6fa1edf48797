"""Does `edgert tune` pick what bench confirms? A MiniLM bundle that keeps two recipes beside fp32 is tuned here,
then every configuration is benched on its own, interleaved by round, and the choice's rounds are compared with
each one's by the ratio test (Welch's t on the logs of round medians).

    python benchmarks/tune_confirm.py [--threads 1,2] [--repeats 3] [--seq-len 128]

Needs the export extra (the bundle is exported with --keep-candidates 2 into a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line  # noqa: E402
from _results import write_section  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=3, help="bench passes over every configuration, interleaved")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--bundle", default=None, help="a bundle to tune instead of exporting one")
    args = p.parse_args()
    os.environ.setdefault("EDGERT_HOME", tempfile.mkdtemp(prefix="edgert-tune-home-"))  # no decision left behind

    from edgert import stats
    from edgert.bench import runner
    from edgert.bench.config import BenchConfig, thread_counts
    from edgert.bundle import Bundle
    from edgert.tune.options import TuneOptions
    from edgert.tune.runner import tune

    threads = thread_counts(args.threads)
    if args.bundle:
        bundle = Path(args.bundle)
    else:
        from edgert.export import ExportOptions, export_bundle

        out = Path(tempfile.mkdtemp(prefix="edgert-kept-")) / "minilm"
        t = time.perf_counter()
        export_bundle("minilm", out, ExportOptions(keep_candidates=2), echo=lambda s: None)
        print(f"exported {out} with two kept recipes in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        bundle = out
    b = Bundle.open(bundle)
    variants = tuple(b.models)
    t = time.perf_counter()
    options = TuneOptions(threads=threads, memory=("default",), seq_len=args.seq_len, budget="p95<=1s", save=False)
    result = tune(bundle, options, lambda line: print(line, file=sys.stderr))
    tune_s = time.perf_counter() - t
    assert result.chosen is not None, result.why
    chosen = (result.chosen.variant, result.chosen.threads)
    rounds: dict[tuple[str, int], list[float]] = {}
    for r in range(args.repeats):
        for v in variants:
            for th in threads:
                config = BenchConfig(target=bundle, variant=v, threads=(th,), batch_sizes=(1,), seq_len=args.seq_len,
                                     min_time=1.0, min_count=50, cold_runs=0, energy_meter="off", rounds=3,
                                     throughput_time=0.1)  # fmt: skip
                (c,) = runner.run(config).configs
                assert c.latency is not None
                rounds.setdefault((v, th), []).extend(c.latency.rounds_p50_ms)
        print(f"bench pass {r + 1}/{args.repeats} done", file=sys.stderr)
    mine = rounds[chosen]
    rows = []
    surely_faster = []
    for (v, th), theirs in sorted(rounds.items(), key=lambda kv: stats.median(kv[1])):
        test = stats.ratio_test(mine, theirs)
        assert test is not None
        verdict = "chosen" if (v, th) == chosen else (
            "surely faster" if test.high < 1.0 else ("surely slower" if test.low > 1.0 else "within noise")
        )  # fmt: skip
        if verdict == "surely faster":
            surely_faster.append(f"{v}, threads={th}")
        recipe = (b.card.get("candidates", {}).get(v) or {}).get("name") or (
            b.card.get("quantization", {}).get("name") if v != "fp32" else "fp32"
        )  # fmt: skip
        ratio = "-" if verdict == "chosen" else f"{test.ratio:.3f} [{test.low:.3f}, {test.high:.3f}]"
        rows.append(f"| {v} ({recipe}) | {th} | {stats.median(theirs):.2f} | {len(theirs)} | {ratio} | {verdict} |")
    body = "\n".join([
        f"Machine: {machine_line()}. The bundle keeps fp32 and two recipes (`--keep-candidates 2`); tune ran over "
        f"{len(variants)} variants x threads {','.join(map(str, threads))} at {args.seq_len} tokens, batch 1, in "
        f"{tune_s:.0f} s, and chose **{result.chosen.label}**. Then each configuration was benched on its own, "
        f"{args.repeats} interleaved passes of 3 rounds; p50 is the median of its round medians; the ratio is its "
        "rounds against the choice's (below 1: faster than the choice), with the 95% interval.",
        "",
        "| variant (recipe) | threads | p50 ms | rounds | vs the choice | verdict |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        ("Confirmed: no configuration is surely faster than the choice." if not surely_faster else
         f"NOT confirmed: surely faster than the choice: {', '.join(surely_faster)}."),  # fmt: skip
    ])  # fmt: skip
    print(body)
    write_section("Tune confirmed by bench", body, "python benchmarks/tune_confirm.py")


if __name__ == "__main__":
    main()
