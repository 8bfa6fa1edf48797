"""edgert tune on the MiniLM bundle's two variants: what it prunes and what it chooses follow from the rounds bench
recorded for it (whether the choice holds up when each configuration is benched on its own is measured in
benchmarks/tune_confirm.py, not asserted here: a shared CPU makes any timing test fail), a second load() applies it
and says so, tuned=False does not; a tampered or foreign decision is ignored with a notice, and so is one from
another device fingerprint."""

from __future__ import annotations

import json

import pytest

import edgert
from edgert import integrity, stats, tuned
from edgert.bundle import Bundle
from edgert.cli.main import main

from .helpers import EMULATED

pytestmark = pytest.mark.skipif(EMULATED, reason="bench's timed runs take minutes under qemu and mean nothing there")
pytest.importorskip("scipy")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(integrity, "_cached_key", None)  # this home's own key
    return tmp_path / "home"


def _key(bundle) -> str:
    b = Bundle.open(bundle)
    return tuned.bundle_key({n: e.sha256 for n, e in b.files.items()})


def test_tune_chooses_from_the_rounds_it_recorded_and_load_applies_it(minilm_bundle, home, capsys, monkeypatch):
    from edgert.tune import runner

    measured: list[list] = []  # what each of bench's runs gave tune, in order: the quick pass, then the full one
    real = runner._measure
    monkeypatch.setattr(runner, "_measure", lambda *a, **kw: measured.append(real(*a, **kw)) or measured[-1])
    argv = ["tune", str(minilm_bundle), "--threads", "1,2", "--budget", "p95<=2000ms", "--objective", "latency",
            "--memory", "default"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    quick = [t for run in measured[:2] for t in run]  # two variants, one memory mode: two quick runs
    full = [t for run in measured[2:] for t in run]
    assert {(t.variant, t.threads) for t in quick} == {("fp32", 1), ("fp32", 2), ("int8", 1), ("int8", 2)}
    assert all(len(t.rounds_p50_ms) == runner.QUICK_PASS["rounds"] for t in quick)
    # pruned: only what another quick trial surely beats (its rounds' interval above 1) at no more memory
    for t in quick:
        beaten = any(
            o is not t and (test := stats.ratio_test(o.rounds_p50_ms, t.rounds_p50_ms)) is not None
            and test.low > 1.0 and o.rss <= t.rss
            for o in quick
        )  # fmt: skip
        assert (t.key not in {f.key for f in full}) is beaten, t
    # chosen: the lowest p50 of the full pass (every one meets a 2 s budget), and that is what was remembered
    best = min(full, key=lambda t: t.p50)
    decision = tuned.lookup(_key(minilm_bundle), ("fp32", "int8"))
    assert decision is not None and (decision.variant, decision.threads) == (best.variant, best.threads)
    assert decision.figures["p50"] == best.p50 and decision.figures["rss"] == best.rss
    chosen = next(line for line in out.splitlines() if line.startswith("chosen: "))
    assert f"{decision.variant}, threads={decision.threads}" in chosen
    model = edgert.load(minilm_bundle)
    assert model.variant == decision.variant and model.tuned == decision
    assert "tuned:" in repr(model) and model.session_config.intra_op_threads == decision.threads
    assert main(["inspect", str(minilm_bundle)]) == 0
    assert "tuned here" in capsys.readouterr().out
    plain = edgert.load(minilm_bundle, tuned=False)
    assert plain.tuned is None and "tuned" not in repr(plain)
    assert edgert.load(minilm_bundle, variant="fp32").tuned is None  # an explicit choice wins


def test_tune_over_memory_modes_remembers_the_mode_and_load_applies_it(minilm_bundle, home):
    from edgert.tune.options import TuneOptions
    from edgert.tune.runner import tune

    said: list[str] = []
    options = TuneOptions(variants=("int8",), threads=(1,), memory=("default", "lean"), objective="memory", seq_len=32)
    result = tune(minilm_bundle, options, said.append)
    assert "x memory default, lean" in said[0]
    assert {t.memory for t in result.trials} == {"default", "lean"}
    assert "int8, threads=1, memory=lean" in {t.label for t in result.trials}
    full = [t for t in result.trials if t.full]
    assert result.chosen is not None and result.chosen.rss == min(t.rss for t in full)  # the smaller peak
    decision = tuned.lookup(_key(minilm_bundle), ("fp32", "int8"))
    assert decision is not None and decision.memory == result.chosen.memory
    model = edgert.load(minilm_bundle)
    assert model.tuned == decision and model.session_config.memory == decision.memory
    assert model.session_config.arena is (decision.memory == "default")
    assert ("memory lean" in repr(model)) is (decision.memory == "lean")


def _decision(bundle, **kw) -> tuned.Decision:
    fields = {
        "bundle": _key(bundle), "fingerprint": tuned.fingerprint(), "variant": "int8", "threads": 1,
        "objective": "latency", "budget": None, "created": "2026-12-04T00:00:00+00:00", "figures": {"p50": 1.0},
    }  # fmt: skip
    return tuned.Decision(**{**fields, **kw})


def test_a_tampered_foreign_or_stale_decision_is_ignored_with_a_notice(minilm_bundle, home, monkeypatch):
    key = _key(minilm_bundle)
    path = tuned.save(_decision(minilm_bundle))
    assert path is not None and edgert.load(minilm_bundle).tuned is not None
    mac, body = path.read_text().split("\n", 1)
    path.write_text(mac + "\n" + body.replace('"threads": 1', '"threads": 2'))  # edited
    with pytest.warns(RuntimeWarning, match="not signed by this user's key"):
        assert tuned.lookup(key, ("fp32", "int8")) is None
    with pytest.warns(RuntimeWarning, match="not signed"):
        assert edgert.load(minilm_bundle, tuned=True).tuned is None
    tuned.save(_decision(minilm_bundle, fingerprint="0" * 16))  # measured on another device
    with pytest.warns(RuntimeWarning, match="this device or its software changed"):
        assert edgert.load(minilm_bundle).tuned is None
    tuned.save(_decision(minilm_bundle, variant="int4"))
    with pytest.warns(RuntimeWarning, match="no variant 'int4'"):
        assert edgert.load(minilm_bundle).tuned is None
    tuned.save(_decision(minilm_bundle, memory="huge"))  # from a later edgert with modes this one lacks
    with pytest.warns(RuntimeWarning, match="memory mode 'huge' is not one this edgert has"):
        assert edgert.load(minilm_bundle).tuned is None
    tuned.save(_decision(minilm_bundle))
    (home / "secret").unlink()  # from here on another key: the file was signed by someone else's
    monkeypatch.setattr(integrity, "_cached_key", None)
    with pytest.warns(RuntimeWarning, match="not signed by this user's key"):
        assert tuned.lookup(key, ("fp32", "int8")) is None
    copied = json.loads(path.read_text().split("\n", 1)[1])
    assert copied["bundle"] == key  # the file is whole: only its signature is foreign


def test_bad_tune_input_is_one_line_before_measuring(minilm_bundle, home, capsys):
    assert main(["tune", str(minilm_bundle), "--budget", "p95<=fast"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["tune", str(minilm_bundle), "--variants", "int4"]) == 2
    assert "has no variant 'int4'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error
        main(["tune", str(minilm_bundle), "--objective", "speed"])
    assert exc.value.code == 2 and "invalid choice: 'speed'" in capsys.readouterr().err


def test_only_a_configuration_surely_beaten_in_speed_and_memory_is_pruned():
    from edgert.tune.runner import Trial, dominated

    def trial(variant, threads, rounds, rss):
        return Trial(variant, threads, stats.median(rounds), None, None, rss, None, tuple(rounds))

    fast = trial("int8", 1, [4.0, 4.1, 4.05], 100.0)
    noisy = trial("int8", 2, [3.9, 5.5, 4.6], 100.0)  # slower on the median, within the noise
    slow = trial("fp32", 1, [8.0, 8.2, 8.1], 120.0)  # slower and larger: cannot win
    lean = trial("fp32", 2, [9.0, 9.1, 9.2], 60.0)  # slower, but smaller: a memory budget may want it
    trials = [fast, noisy, slow, lean]
    assert [dominated(t, trials, "latency") for t in trials] == [False, False, True, False]


def test_tune_runs_are_recorded_one_per_configuration_measured_in_full(minilm_bundle, tmp_path):
    from edgert.history.records import from_tune
    from edgert.history.store import Filter, Store
    from edgert.tune.runner import Trial, TuneResult

    full = Trial("int8", 2, 4.0, 5.0, 240.0, 100.0, None, (3.9, 4.0, 4.2), full=True, passed=True)
    other = Trial("fp32", 2, 6.0, 7.0, 160.0, 130.0, None, (6.0, 6.1, 5.9), full=True, passed=False)
    pruned = Trial("fp32", 1, 9.0, 9.5, 100.0, 130.0, None, (9.0, 9.1, 8.9))
    result = TuneResult(str(minilm_bundle), "latency", "p95<=6ms", (full, other, pruned), full, "best p50")
    with Store(str(tmp_path / "h.sqlite")) as s:
        s.add(from_tune(result))
        runs = s.runs(Filter(kind="tune"))
    assert [(r.variant, r.measure("p50 threads=2").rounds) for r in runs] == [("int8", (3.9, 4.0, 4.2)),
                                                                              ("fp32", (6.0, 6.1, 5.9))]  # fmt: skip
    assert runs[0].workload.endswith("(chosen)") and not runs[1].workload.endswith("(chosen)")
    assert runs[0].measure("rss").value == 100.0 and runs[0].card["quantization"] not in (None, "none")


def test_hold_takes_the_best_configuration_that_keeps_the_budget_under_load():
    from edgert.bench import budget
    from edgert.bench.records import Summary
    from edgert.tune.hold import hold
    from edgert.tune.runner import Trial

    ranked = [Trial("int8", t, 4.0 + t, 5.0, None, 100.0, None, full=True, passed=True) for t in (1, 2, 4)]
    end = {1: 25.0, 2: 15.0, 4: 12.0}  # threads=1 wins the rounds and throttles; threads=2 keeps the budget
    said: list[str] = []
    done, chosen = hold(ranked, budget.parse("p95@sustained<=20ms"),
                        lambda t: Summary(p95_sustained=end[t.threads]), said.append)  # fmt: skip
    assert chosen is not None and chosen.threads == 2 and chosen.p95_sustained == 15.0
    assert [(t.threads, t.passed, t.p95_sustained) for t in done] == [
        (1, False, 25.0),
        (2, True, 15.0),
        (4, True, None),
    ]
    assert done[0].failed == ("p95@sustained<=20ms",) and "misses p95@sustained<=20ms" in said[0]
    _, none = hold(ranked, budget.parse("p95@sustained<=10ms"), lambda t: Summary(p95_sustained=end[t.threads]),
                   said.append)  # fmt: skip
    assert none is None


def test_tune_sustained_holds_the_choice_and_a_sustained_budget_needs_it(minilm_bundle, home, capsys):
    from edgert.tune.options import TuneOptions
    from edgert.tune.runner import tune

    assert main(["tune", str(minilm_bundle), "--budget", "p95@sustained<=30ms"]) == 2
    assert "give --sustained DURATION" in capsys.readouterr().err  # before anything is measured
    options = TuneOptions(variants=("int8",), threads=(1,), memory=("default",), seq_len=16, sustained=10,
                          budget="p95<=10s,p95@sustained<=10s")  # fmt: skip
    said: list[str] = []
    result = tune(minilm_bundle, options, said.append)
    assert result.chosen is not None and result.chosen.p95_sustained is not None
    assert 0 < result.chosen.p95_sustained < 10_000 and result.chosen.passed is True
    assert any(line.startswith("  held   int8, threads=1: p95 ") for line in said)
    assert "keeps it after 10 s of load" in result.why
    decision = tuned.lookup(_key(minilm_bundle), ("fp32", "int8"))
    assert decision is not None and decision.figures["p95@sustained"] == result.chosen.p95_sustained
