"""Keeps benchmarks/RESULTS.md: one section per benchmark, replaced in place on each run."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nWritten by the scripts in this folder; each section says the command that made it.\n"


def write_section(title: str, body: str, command: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    section = f"## {title}\n\n`{command}`\n\n{body}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda m: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
