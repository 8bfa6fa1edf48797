"""Peak memory of `edgert eval` on a 10,000-document retrieval set, against the same command on a 100-document one,
each in a fresh process (ru_maxrss of a fresh waiter), median of --runs, interleaved.

The set is made on the machine: queries are the first lines of the standard library's function and class
docstrings, each with the rest of its docstring as the relevant document; the corpus is filled up to --docs with
10-line chunks of the standard library's own source as distractors. Embedding 10,000 documents holds 10,000 x 384
floats (15 MB); the exact search works in blocks of 4 M scores (16 MB), never the whole query x document matrix.

    python benchmarks/eval_memory.py [BUNDLE] [--docs 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_bundle, machine_line, median  # noqa: E402
from _results import write_section  # noqa: E402
from long_text_memory import peak_mib  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.evalsets import stdlib_modules  # noqa: E402


def docstring_pairs() -> list[tuple[str, str]]:
    """(first line, rest) of public functions' and classes' docstrings in the standard library, distinct rests."""
    seen: dict[str, str] = {}
    for module in stdlib_modules():
        for attr, obj in list(vars(module).items()):
            if attr.startswith("_"):
                continue
            objs = [obj] + ([v for k, v in vars(obj).items() if not k.startswith("_")] if inspect.isclass(obj) else [])
            for o in objs:
                if not (inspect.isfunction(o) or inspect.isclass(o) or inspect.isbuiltin(o)):
                    continue
                doc = inspect.getdoc(o) or ""
                first, _, rest = doc.partition("\n")
                rest = " ".join(rest.split())
                if len(first.split()) >= 3 and len(rest) >= 40 and rest not in seen:
                    seen[rest] = first.strip()
    return [(first, rest) for rest, first in seen.items()]


def source_chunks(n: int) -> list[str]:
    """N chunks of 10 non-empty lines of the standard library's .py files."""
    out: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError):
            continue
        out += [" ".join(lines[i : i + 10]) for i in range(0, len(lines) - 9, 10)]
        if len(out) >= n:
            return out[:n]
    return out


def write_set(folder: Path, docs: int) -> tuple[int, int]:
    pairs = docstring_pairs()
    queries = pairs[: min(len(pairs), docs // 5)]
    fill = source_chunks(max(0, docs - len(queries)))
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as c, open(folder / "queries.jsonl", "w") as q:
        for i, (first, rest) in enumerate(queries):
            c.write(json.dumps({"_id": f"d{i}", "text": rest}) + "\n")
            q.write(json.dumps({"_id": f"q{i}", "text": first}) + "\n")
        for j, chunk in enumerate(fill):
            c.write(json.dumps({"_id": f"s{j}", "text": chunk}) + "\n")
    with open(folder / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(queries))))
    return len(queries) + len(fill), len(queries)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default=None)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    bundle = Path(args.bundle) if args.bundle else default_bundle()
    variants = json.loads((bundle / "edgert.json").read_text())["models"]
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        n_docs, n_queries = write_set(big, args.docs)
        write_set(small, 100)
        cmd = [sys.executable, "-m", "edgert", "eval", str(bundle), "--no-cost", "--draws", "1000", "--data"]
        rows: dict[str, list[float]] = {"big": [], "small": []}
        seconds: list[float] = []
        for _ in range(args.runs):
            start = time.perf_counter()
            rows["big"].append(peak_mib([*cmd, str(big)]))
            seconds.append(time.perf_counter() - start)
            rows["small"].append(peak_mib([*cmd, str(small)]))
    b, s = median(rows["big"]), median(rows["small"])
    body = (
        f"{machine_line()}\n\n"
        f"`edgert eval` with every variant of {bundle.name} ({', '.join(variants)}), --no-cost, in a fresh process; "
        "peak RSS, median of "
        f"{args.runs}, the two sets interleaved.\n\n"
        f"| set | peak RSS (MiB) | runs |\n|---|---|---|\n"
        f"| {n_docs:,} documents, {n_queries:,} queries | {b:.0f} | {', '.join(f'{x:.0f}' for x in rows['big'])} |\n"
        f"| 100 documents | {s:.0f} | {', '.join(f'{x:.0f}' for x in rows['small'])} |\n\n"
        f"The large set costs {b - s:.0f} MiB more than the small one; the goal is under 400 MB (381 MiB) in all. "
        f"Wall time of the large run, median: {median(seconds):.0f} s."
    )
    print(body)
    write_section("Evaluation memory", body, f"python benchmarks/eval_memory.py --docs {args.docs} --runs {args.runs}")


if __name__ == "__main__":
    main()
