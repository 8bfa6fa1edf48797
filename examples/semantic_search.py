"""Semantic search over a folder of text files, with edgert's Python API.

    python examples/semantic_search.py NOTES_FOLDER "how do I reset the router" [--top 5] [--bundle minilm]

Every non-blank line of every *.txt and *.md file under the folder is one passage. The passages are embedded once,
the query is embedded, and the closest passages are printed with their file and line. The default bundle is the
packaged all-MiniLM-L6-v2 (built on first use); its vectors are L2-normalised, so a dot product is the cosine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import edgert


def passages(folder: Path) -> list[tuple[str, str]]:
    """(where, text) for every non-blank line; files that are not UTF-8 are skipped with a note."""
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".txt", ".md") and p.is_file()):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            print(f"skipped {path}: not UTF-8", file=sys.stderr)
            continue
        out += [(f"{path.relative_to(folder)}:{n}", line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("query")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--bundle", default="minilm", help="a bundle directory or a catalog name")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder}: not a folder", file=sys.stderr)
        return 2
    found = passages(args.folder)
    if not found:
        print(f"{args.folder}: no .txt or .md file with any text", file=sys.stderr)
        return 2
    model = edgert.load(args.bundle)
    index = model.embed([text for _, text in found])  # (n, dim), L2-normalised
    query = model.embed(args.query)[0]
    scores = index @ query
    for i in np.argsort(-scores, kind="stable")[: args.top]:
        where, text = found[i]
        print(f"{scores[i]:.3f}  {where}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
