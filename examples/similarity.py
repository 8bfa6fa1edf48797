"""Reads `edgert embed` JSON lines on stdin and prints the cosine similarity of every pair (the CLI in a pipe; see
semantic_search.py for the same with the Python API).

printf 'a cat\\na dog\\n' | edgert embed minilm | python examples/similarity.py
"""

import json
import sys

import numpy as np

rows = [json.loads(line) for line in sys.stdin if line.strip()]
if len(rows) < 2:
    sys.exit(f"need at least two texts to compare, got {len(rows)}")
texts = [r["text"] for r in rows]
vecs = np.array([r["embedding"] for r in rows], dtype=np.float32)
vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
sims = vecs @ vecs.T
print(f"{len(rows)} texts, {vecs.shape[1]}-d embeddings; cosine similarity:")
for i in range(len(rows)):
    for j in range(i + 1, len(rows)):
        print(f"  {sims[i, j]:+.3f}  {texts[i]!r} ~ {texts[j]!r}")
