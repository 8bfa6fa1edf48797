"""Which of two bundles should ship? Scores both on your own CSV (labelled texts, or sentence pairs with a gold
score) with edgert.evaluate, beside their cost on this machine, and picks the cheaper one whose headline metric
meets your floor on its interval's lower bound.

    python examples/eval_two_bundles.py ./old-bundle ./new-bundle my-pairs.csv --floor 0.80
    python examples/eval_two_bundles.py ./old-bundle ./new-bundle my-tickets.csv --floor 0.90 --no-cost

The CSV is `text,label` for a classifier, or `sentence1,sentence2,score` for an embedding model. `edgert eval`
does the same from the command line, with every metric and slice.
"""

import argparse
import sys

import edgert
from edgert.eval import EvalOptions, decide

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("old")
parser.add_argument("new")
parser.add_argument("csv")
parser.add_argument("--floor", type=float, required=True, help="the headline metric's lower bound must reach this")
parser.add_argument("--variant", default=None, help="the variant to compare in both (default: each bundle's own)")
parser.add_argument("--no-cost", action="store_true", help="skip the latency and memory runs")
args = parser.parse_args()

try:
    variants = (args.variant,) if args.variant else ()
    options = EvalOptions(data=args.csv, variants=variants, cost=not args.no_cost)
    result = edgert.evaluate([args.old, args.new], options, echo=lambda line: print(line, file=sys.stderr))
    verdict = decide.decide(f"{result.headline}>={args.floor}", result.results)
except edgert.EdgertError as exc:
    sys.exit(f"error: {exc}")

print(f"{result.dataset.items} items of {result.dataset.name}, {result.dataset.skipped} rows skipped")
for r in result.results:
    m = r.metric(result.headline)
    assert m is not None
    cost = f", p50 {r.cost.p50:.2f} ms, peak RSS {r.cost.rss:.0f} MiB" if r.cost and r.cost.p50 and r.cost.rss else ""
    print(f"{r.label}: {result.headline} {m.value:.3f} [{m.low:.3f}, {m.high:.3f}]{cost}")
print(f"ship: {verdict.chosen}" if verdict.chosen else f"neither reaches {result.headline} >= {args.floor}")
sys.exit(0 if verdict.chosen else 1)
