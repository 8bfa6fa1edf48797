"""``edgert``: argument parsing and dispatch. Heavy imports stay inside the command that needs them."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, NoReturn

from .._version import __version__
from ..bench.config import BenchConfig
from ..errors import EdgertError, OptionError
from ..eval.options import EvalOptions
from ..export.options import ExportOptions
from ..import_options import ImportOptions
from ..sustained.options import SustainedOptions
from ..tune.options import TuneOptions
from .options import add_options, flag_for


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default where it has one and the help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, [], argparse.SUPPRESS)
            and "default" not in text
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


#: One example per command, shown at the end of its --help.
EXAMPLES = {
    "export": "edgert export minilm -o ./minilm-bundle --accuracy-budget 0.995",
    "import": "edgert import resnet.onnx -o ./resnet --task image-classification --labels metadata --channel-order BGR",
    "inspect": "edgert inspect ./minilm-bundle --json",
    "check": "edgert check ./minilm-bundle --file my-texts.txt --fail-below 0.99",
    "embed": "printf 'first text\\nsecond text\\n' | edgert embed ./minilm-bundle > vectors.jsonl",
    "classify": "edgert classify ./vit-bundle -i photo.jpg --top-k 3",
    "detect": "edgert detect ./vad-bundle meeting.wav --threshold 0.6",
    "bench": 'edgert bench --budget "p95<=20ms,rss<=200MB" --json run.json',
    "compare": "edgert compare baseline.json run.json --fail-on 5%",
    "eval": 'edgert eval ./minilm-bundle --data ./my-beir-set --budget "ndcg@10>=0.80,p95<=20ms" --json eval.json',
    "device": "edgert device",
    "history": 'edgert history trend --metric "p50 threads=1" --model minilm',
    "monitor": "edgert monitor report minilm --window 1000",
    "tune": 'edgert tune ./minilm-bundle --budget "p95<=20ms" --objective latency',
    "fleet": "edgert fleet bench ./minilm-bundle --cluster tcp://head.local:8786 --devices 'pi*' -- --budget "
    '"p95<=30ms" --quick',
}


def _command(sub: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
    """A subcommand whose --help shows defaults and an example."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, formatter_class=_Help, epilog=f"example:\n  {EXAMPLES[name]}", **kw
    )
    return parser


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit code 2, like every other edgert error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "bundle",
        nargs="?",
        default=None,
        help="bundle directory, or a catalog name (default: minilm, built on first use)",
    )
    p.add_argument("--variant", default=None, help="model variant in the bundle: fp32 or int8 (default: the bundle's)")


def _add_text_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", "-t", action="append", default=[], metavar="TEXT", help="a text (repeatable)")
    p.add_argument("--file", "-f", default=None, help="read texts from FILE, one per line ('-' for stdin)")
    p.add_argument("--batch-size", type=_positive, default=32, help="texts or images per model call (default 32)")


_FILTERS = {
    "device": "runs on this device (EDGERT_DEVICE, else the host name, when they ran)",
    "model": "runs of this bundle (its folder name)",
    "variant": "runs of this model variant (fp32, int8, ...)",
    "kind": "bench, eval, check or tune",
    "version": "runs made by this edgert version",
    "since": "runs on or after this date (ISO, e.g. 2026-12-01)",
    "until": "runs on or before this date",
}


def _add_markdown_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--markdown", nargs="?", const="-", default=None, metavar="PATH",
        help="Markdown report to PATH, or to stdout instead of the tables",
    )  # fmt: skip


def _add_record_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--record", action="store_true", help="remember the result in the results store (or EDGERT_RECORD=1)"
    )
    p.add_argument(
        "--store", default=None, metavar="URL",
        help="the store --record writes: a SQLite file or a postgresql:// URL (default: EDGERT_STORE, else "
        "EDGERT_HOME/history.sqlite)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgert", description="Export, run and measure small ONNX models on edge devices.")
    parser.add_argument("--version", action="version", version=f"edgert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = _command(sub, "export", help="export a Hugging Face model to a verified (quantized) bundle")
    p.add_argument("source", help="a local Hugging Face model directory, a catalog name (minilm), or a hub id")
    p.add_argument("-o", "--output", required=True, help="bundle directory to create")
    add_options(p, ExportOptions)
    p.add_argument(
        "--eval", default=None, metavar="DATA",
        help="with --quantize auto: judge the recipes on this task set (any set edgert eval reads) instead of "
        "agreement with fp32",
    )  # fmt: skip
    p.add_argument(
        "--eval-budget", default=None, metavar="SPEC",
        help='the task budget for --eval, met on the interval\'s lower bound, e.g. "ndcg@10>=0.83"',
    )  # fmt: skip

    p = _command(sub, "import", help="make a bundle from a ready ONNX file, with its pre- and post-processing")
    p.add_argument("model", help="the .onnx file (its external-data files are copied too)")
    p.add_argument("-o", "--output-dir", dest="out", required=True, help="bundle directory to create")
    add_options(p, ImportOptions)
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it is an edgert bundle")
    p.add_argument(
        "--discard-unlisted",
        action="store_true",
        help="with --force: also delete files in OUTPUT that its manifest does not list (refused otherwise)",
    )

    p = _command(sub, "inspect", help="show a bundle's model card and verify its files")
    p.add_argument("bundle", nargs="?", default=None, help="bundle directory or catalog name (default: minilm)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")

    p = _command(
        sub,
        "check",
        help="compare a quantized bundle with its fp32 reference on long-tail inputs; record it in the card",
    )
    p.add_argument("bundle", nargs="?", default=None, help="bundle directory or catalog name (default: minilm)")
    p.add_argument("--variant", default=None, help="the model to check (default: the bundle's default model)")
    p.add_argument(
        "--reference",
        default=None,
        metavar="REF",
        help="reference bundle (default: the fp32 model of the same bundle)",
    )
    p.add_argument("--file", "-f", default=None, help="also check these texts, one per line")
    p.add_argument("--worst", type=int, default=5, help="how many of the worst inputs to list (default 5)")
    p.add_argument(
        "--fail-below",
        type=float,
        default=None,
        metavar="X",
        help="exit 1 when the worst cosine (or top-1 agreement) is below X",
    )
    p.add_argument("--no-card", action="store_true", help="do not write the result into the bundle's card")
    _add_record_args(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = _command(sub, "embed", help="embed texts; writes JSON lines")
    _add_model_args(p)
    _add_text_input_args(p)

    p = _command(sub, "classify", help="classify texts or images; writes JSON lines")
    _add_model_args(p)
    _add_text_input_args(p)
    p.add_argument(
        "--image",
        "-i",
        action="append",
        default=[],
        metavar="PATH",
        help="an image file (repeatable)",
    )
    p.add_argument("--top-k", type=_positive, default=1, help="labels per input, best first (default 1)")

    p = _command(sub, "detect", help="speech segments of WAV files with a streaming audio bundle; writes JSON lines")
    p.add_argument("bundle", help="a streaming audio bundle directory (see edgert import --help)")
    p.add_argument(
        "wav", nargs="+", help="WAV files at the model's sample rate (8/16/24/32-bit PCM or float; channels averaged)"
    )
    p.add_argument("--variant", default=None, help="model variant in the bundle (default: the bundle's)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability at which speech starts")
    p.add_argument(
        "--end-threshold", type=float, default=None, help="probability below which speech ends (threshold - 0.15)"
    )
    p.add_argument("--min-speech-ms", type=float, default=250, help="shorter segments are dropped")
    p.add_argument("--min-silence-ms", type=float, default=100, help="silence that ends a segment")
    p.add_argument("--speech-pad-ms", type=float, default=30, help="added to both ends of each segment")

    p = _command(sub, "bench", help="measure latency, throughput, cold start, memory and energy; check budgets")
    p.add_argument(
        "target",
        nargs="?",
        default=None,
        help="bundle directory, .onnx file or catalog name (default: minilm, built on first use)",
    )
    add_options(p, BenchConfig)
    add_options(p, SustainedOptions)
    p.add_argument("--budget", default=None, help='e.g. "p95<=20ms,rss<=150MB,energy<=5mJ,cold<=500ms" or FILE.toml')
    p.add_argument("--json", default=None, metavar="PATH", help="write the full result (raw samples) as JSON")
    _add_markdown_arg(p)
    p.add_argument("--plot", default=None, metavar="PATH.png",
                   help="latency histogram and CDF, throughput (sustained: the four series against time)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="short runs, for a smoke test (flags given still win)")
    _add_record_args(p)

    p = _command(sub, "compare", help="compare two bench results, or two eval results; flags significant regressions")
    p.add_argument("a", help="baseline result JSON (bench or eval)")
    p.add_argument("b", help="new result JSON")
    p.add_argument(
        "--fail-on", default=None, metavar="PCT", help="exit 1 on a significant regression beyond PCT, e.g. 5%%"
    )
    p.add_argument("--threshold", default="5%", help="changes within this are not flagged (default 5%%)")
    p.add_argument(
        "--strict", action="store_true", help="let a regression fail even when either run was on a busy machine"
    )
    p.add_argument(
        "--force", action="store_true", help="compare runs of different models, inputs or settings (says what differs)"
    )

    p = _command(
        sub, "eval", help="score bundles on your own data beside their cost here; pick the cheapest that meets a budget"
    )
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle directories or catalog names")
    add_options(p, EvalOptions)
    p.add_argument(
        "--budget",
        default=None,
        help="quality floors on the interval's lower bound and bench's cost limits, e.g. \"ndcg@10>=0.80,p95<=20ms\"",
    )
    p.add_argument("--json", default=None, metavar="PATH", help="write the full result as JSON")
    _add_markdown_arg(p)
    p.add_argument(
        "--plot", default=None, metavar="PATH.png", help="quality against p50 and energy, the Pareto front marked"
    )
    _add_record_args(p)

    p = _command(sub, "history", help="the runs a results store remembers: list, show, trend, gate, export, import")
    p.add_argument("--store", default=None, metavar="URL", help="a SQLite file or a postgresql:// URL")
    hist = p.add_subparsers(dest="history", metavar="ACTION", parser_class=_Parser)
    for name, text in (
        ("list", "the runs that match, oldest first"),
        ("show", "one run, every metric"),
        ("trend", "steps in a metric over each series of runs (device, model, variant)"),
        ("gate", "the latest run against the ones before it; exit 1 on a real regression"),
        ("export", "the runs that match as JSON lines"),
        ("import", "runs from a JSON-lines file (a run already stored is skipped)"),
        ("plot", "a metric's series as an image, rounds and steps marked"),
        ("report", "one static HTML file: a figure per device x model x metric, steps marked"),
    ):
        q = hist.add_parser(name, help=text, formatter_class=_Help)
        if name == "show":
            q.add_argument("uid", help="a run's uid, or its first digits")
        if name in ("export", "import"):
            q.add_argument("file", metavar="FILE.jsonl")
        if name in ("plot", "report"):
            q.add_argument("file", metavar="FILE.png" if name == "plot" else "FILE.html")
        if name == "import":
            continue
        for flag in ("device", "model", "variant", "kind", "version", "since", "until"):
            q.add_argument(f"--{flag}", default=None, help=_FILTERS[flag])
        if name in ("trend", "gate", "plot"):
            q.add_argument("--metric", required=True, help='e.g. "p50 threads=1", "ndcg@10" (edgert history show)')
        if name == "report":
            q.add_argument("--metric", action="append", default=None, help="a metric to draw (repeat; default: all)")
        if name in ("trend", "gate", "plot", "report"):
            q.add_argument("--threshold", default="5%", help="changes within this are not steps or regressions")
        elif name in ("list", "export"):
            q.add_argument("--metric", default=None, help="only runs that have this metric")
        if name == "gate":
            q.add_argument("--last", type=int, default=10, help="how many earlier runs make the baseline")
        if name == "list":
            q.add_argument("--json", action="store_true", help="the runs as JSON")

    p = _command(sub, "tune", help="measure a bundle's variants and thread counts here; remember the best one")
    p.add_argument("bundle", nargs="?", default=None, help="bundle directory or catalog name (default: minilm)")
    add_options(p, TuneOptions)
    _add_record_args(p)

    p = _command(sub, "monitor", help="what edgert.monitor saw in the app: a recent window against the baseline")
    mon = p.add_subparsers(dest="monitor", metavar="ACTION", parser_class=_Parser, required=True)
    q = mon.add_parser("report", help="drift of a model's inputs and outputs; exit 1 on drift", formatter_class=_Help)
    q.add_argument("model", help="the bundle's folder name, as the monitor recorded it")
    q.add_argument("--variant", default=None, help="the model variant watched")
    q.add_argument("--device", default=None, help="the device it was watched on")
    q.add_argument("--window", type=int, default=500, help="observations in each window (halves when fewer)")
    q.add_argument("--store", default=None, metavar="URL", help="a SQLite file or a postgresql:// URL")

    _command(sub, "device", help="describe this device: CPU, ISA features, board, energy meters, kernels")
    _add_fleet(sub)
    return parser


def _add_fleet(sub: Any) -> None:
    p = _command(sub, "fleet", help="many devices at once (Dask): head, join, devices, bench, eval, tune, check, embed")
    fleet = p.add_subparsers(dest="fleet", metavar="ACTION", parser_class=_Parser, required=True)

    def cluster_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--cluster", default=None, metavar="ADDRESS",
                       help="the head's address, tcp://HOST:PORT (default: EDGERT_FLEET)")  # fmt: skip
        q.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the head to answer")

    q = fleet.add_parser("head", help="start the fleet's head (a Dask scheduler) here", formatter_class=_Help)
    q.add_argument("--host", default="0.0.0.0", help="the interface to listen on")
    q.add_argument("--port", type=int, default=8786, help="the port devices join")
    q = fleet.add_parser("join", help="make this machine a device of the fleet (until stopped)", formatter_class=_Help)
    q.add_argument("cluster", metavar="ADDRESS", help="the head's address, tcp://HOST:PORT")
    q.add_argument("--name", required=True, help="this device's name in the fleet (e.g. pi5-kitchen)")
    q.add_argument("--death-timeout", type=float, default=60.0,
                   help="seconds without the head before this device gives up")  # fmt: skip
    q = fleet.add_parser("devices", help="the devices in the fleet, as `edgert device` describes each",
                         formatter_class=_Help)  # fmt: skip
    cluster_args(q)
    q.add_argument("--devices", default=None, metavar="PATTERNS", help="only these: pi5,*jetson* (shell patterns)")
    q.add_argument("--json", action="store_true", help="the devices as JSON")
    for name in ("bench", "eval", "tune", "check"):
        q = fleet.add_parser(
            name, formatter_class=_Help,
            help=f"edgert {name} on every selected device; flags after -- are {name}'s own",
            epilog=f"example:\n  edgert fleet {name} ./minilm-bundle --devices 'pi*' -- {_FLEET_EXAMPLE[name]}",
        )  # fmt: skip
        q.add_argument("bundle", nargs="?", default=None, help="bundle directory or catalog name (default: minilm)")
        cluster_args(q)
        q.add_argument("--devices", default=None, metavar="PATTERNS", help="the devices: pi5,*jetson* (default: all)")
        q.add_argument("--out", default=None, metavar="DIR", help="each device's output and JSON result, by name")
        q.add_argument("--grace", type=float, default=60.0,
                       help="seconds a device may be gone before its run is reported as not done")  # fmt: skip
        if name in ("bench", "eval"):
            _add_record_args(q)
        else:
            q.set_defaults(record=False, store=None)
    for name in ("embed", "classify"):
        q = fleet.add_parser(name, formatter_class=_Help,
                             help=f"{name} a large text file on every device; parts written in order")  # fmt: skip
        q.add_argument("bundle", nargs="?", default=None, help="bundle directory or catalog name (default: minilm)")
        cluster_args(q)
        q.add_argument("--devices", default=None, metavar="PATTERNS", help="the devices: pi5,*jetson* (default: all)")
        q.add_argument("--input", "-i", required=True, help="the texts, one per line (UTF-8)")
        q.add_argument("--out", "-o", required=True, metavar="DIR", help="part-NNNNN.npy files and index.json")
        q.add_argument("--variant", default=None, help="model variant (default: the bundle's, or its tuned one)")
        q.add_argument("--batch-size", type=_positive, default=32, help="texts per model call")
        q.add_argument("--batch-from", default=None, metavar="BENCH.json",
                       help="the batch of a bench result's throughput knee (within 5%% of the best)")  # fmt: skip
        q.add_argument("--shard-size", type=_positive, default=2048, help="texts per part (one task on one device)")
        q.add_argument("--grace", type=float, default=60.0,
                       help="seconds with no selected device before the run stops (written parts stay)")  # fmt: skip


_FLEET_EXAMPLE = {
    "bench": '--budget "p95<=30ms" --quick',
    "eval": "--data ./my-beir-set",
    "tune": '--budget "p95<=30ms" --threads 1,2,4',
    "check": "--fail-below 0.99",
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    passthrough: list[str] = []
    if argv[:1] == ["fleet"] and "--" in argv:  # what follows -- is the device command's own
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    args.passthrough = passthrough
    args.parser = parser  # fleet parses the device command's own flags as the device will
    if args.command is None:
        parser.print_help()
        return 2
    from . import commands

    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so work directories are removed on the way out
    previous = (
        signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        return int(getattr(commands, f"cmd_{args.command}")(args) or 0)
    except OptionError as exc:  # the library names the option; the command line says its flag
        print(f"edgert: error: {flag_for(exc)}", file=sys.stderr)
        return 2
    except EdgertError as exc:
        print(f"edgert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgert: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
