"""`edgert monitor report`: a model's recent observations against its baseline; exit 1 on drift."""

from __future__ import annotations

from argparse import Namespace

from ..errors import EdgertError, require


def run_monitor(args: Namespace) -> int:
    require("scipy", "bench")
    from ..history.store import Store
    from ..monitor import drift

    with Store(args.store) as store:
        rows = store.observations(args.model, args.variant, args.device)
    if not rows:
        raise EdgertError(f"the store has no observations of {args.model!r} (edgert.monitor records them)")
    series = {(r["variant"], r["device"]) for r in rows}
    if len(series) > 1:
        shown = ", ".join(f"{v} on {d}" for v, d in sorted(series))
        raise EdgertError(f"{args.model} was watched as {shown}: pick one with --variant and --device")
    try:
        found = drift.report(rows, args.window)
    except ValueError as exc:
        raise EdgertError(f"{args.model}: {exc}") from None
    b, r = found.baseline, found.recent
    print(f"{found.series}: baseline {b[2]} items ({b[0]} to {b[1]}), recent {r[2]} items ({r[0]} to {r[1]})")
    for s in found.shifts:
        print(drift.describe(s))
    for name, p in (("baseline", found.latency[0]), ("recent", found.latency[1])):
        print(f"latency {name}: p50 {drift.interval(p.p50)}, p95 {drift.interval(p.p95)} over {p.calls} calls")
    print("drift: " + ("YES" if found.drift else "none") + f" (PSI >= {drift.PSI_DRIFT} and p < {drift.ALPHA})")
    return 1 if found.drift else 0
