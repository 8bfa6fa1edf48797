"""Exact nearest-neighbour search by cosine, in NumPy, in blocks: a score block never holds more than ``BLOCK``
cells (4 MB of float32, 8 MB of partition indices), and only the best k per query are kept between blocks, so
10,000 documents by 10,000 queries cost a few tens of MB, never the whole query x document matrix."""

from __future__ import annotations

import numpy as np

#: cells of one queries x documents score block
BLOCK = 1_000_000


def unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def top_k(queries: np.ndarray, documents: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the K documents with the highest cosine for each query, best first, equal scores by
    lower document index. Among documents tied at exactly the K-th score, which ones make the cut is not
    specified (argpartition's choice); K is capped at the number of documents."""
    q, d = unit(queries), unit(documents)
    k = min(k, len(d))
    if k < 1 or len(q) == 0:
        return np.empty((len(q), 0), dtype=np.int64), np.empty((len(q), 0), dtype=np.float32)
    doc_block = max(k, min(len(d), BLOCK // max(1, min(len(q), 1024))))
    query_block = max(1, BLOCK // doc_block)
    out_i = np.empty((len(q), k), dtype=np.int64)
    out_s = np.empty((len(q), k), dtype=np.float32)
    for qs in range(0, len(q), query_block):
        block = q[qs : qs + query_block]
        best_i = np.empty((len(block), 0), dtype=np.int64)
        best_s = np.empty((len(block), 0), dtype=np.float32)
        for ds in range(0, len(d), doc_block):
            scores = block @ d[ds : ds + doc_block].T
            if scores.shape[1] > k:  # the block's own best k first: only those are merged
                keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
                part_s, part_i = np.take_along_axis(scores, keep, 1), keep + ds
            else:
                part_s, part_i = scores, np.broadcast_to(np.arange(ds, ds + scores.shape[1]), scores.shape)
            cand_s, cand_i = np.concatenate([best_s, part_s], 1), np.concatenate([best_i, part_i], 1)
            if cand_s.shape[1] > k:
                keep = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
                cand_s, cand_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
            best_s, best_i = cand_s, cand_i
        order = np.lexsort((best_i, -best_s), axis=1)  # score descending, then index ascending
        out_i[qs : qs + len(block)] = np.take_along_axis(best_i, order, 1)
        out_s[qs : qs + len(block)] = np.take_along_axis(best_s, order, 1)
    return out_i, out_s
