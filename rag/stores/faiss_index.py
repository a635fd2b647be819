"""The FAISS store's dense index: exact below a threshold, quantised HNSW re-ranked above.

Dense: exact inner product (``IndexFlatIP``) below the HNSW threshold. Above it, an HNSW graph
over 8-bit scalar-quantised vectors (``IndexHNSWSQ``: a quarter of float32's memory), whose
``RERANK`` best candidates are scored again exactly against the float vectors, read
memory-mapped from ``vectors-<build>.npy`` (only the rows a query touches are paged in).
Indexes built before with HNSW over float vectors (``hnsw``) still load and search as before.

"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

HNSW_THRESHOLD = 50_000
HNSW_M = 32
EF_CONSTRUCTION = 80
EF_SEARCH = 256  # recall@10 .999 at 100k synthetic chunks with the exact re-ranking (BENCHMARKS.md)
RERANK = 100  # quantised candidates re-scored exactly
SQ_TRAIN = 100_000  # vectors sampled to train the quantiser (a min and max per dimension)
SQ8 = "hnsw-sq8"


def make_faiss(dim: int, n: int, hnsw_threshold: int = HNSW_THRESHOLD) -> Any:
    import faiss

    if n >= hnsw_threshold:
        sq8: Any = faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexHNSWSQ(dim, sq8, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.hnsw.efSearch = EF_SEARCH
        return index
    return faiss.IndexFlatIP(dim)


def index_type(index: Any) -> str:
    import faiss

    if isinstance(index, faiss.IndexHNSWSQ):
        return SQ8
    return "hnsw" if hasattr(index, "hnsw") else "flat"


def fill(index: Any, vectors: np.ndarray, batch: int = 65536) -> None:
    """Train the quantiser on a sample of ``vectors`` (if it needs it), then add them all."""
    if not index.is_trained:
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(len(vectors), min(SQ_TRAIN, len(vectors)), replace=False))
        index.train(np.ascontiguousarray(vectors[pick], np.float32))
    for i in range(0, len(vectors), batch):
        index.add(np.ascontiguousarray(vectors[i : i + batch], np.float32))


def faiss_vectors(index: Any) -> np.ndarray:
    """The vectors held by a flat or HNSW-flat index, as a view (no copy)."""
    import faiss

    flat: Any = index if isinstance(index, faiss.IndexFlat) else faiss.downcast_index(index.storage)
    if index.ntotal == 0:
        return np.zeros((0, index.d), np.float32)
    return faiss.rev_swig_ptr(flat.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)


def top_k(s: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` largest scores, best first, ties by index (as a stable sort of all).

    A partial selection first: sorting a million scores costs more than the search itself.
    """
    if k >= len(s):
        return np.argsort(-s, kind="stable")
    kth = np.partition(s, len(s) - k)[len(s) - k]  # the k-th largest score
    above = np.flatnonzero(s > kth)
    ties = np.flatnonzero(s == kth)[: k - len(above)]
    pick = np.concatenate([above, ties])
    return pick[np.lexsort((pick, -s[pick]))]


def dense_search(
    index: Any, qv: np.ndarray, k: int, floats: Callable[[np.ndarray], np.ndarray] | None
) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` nearest; with ``floats`` (rows → their float vectors), the
    index's best ``RERANK`` candidates are scored again exactly."""
    q = np.asarray(qv, np.float32)
    n = int(index.ntotal)
    if n == 0 or k <= 0:
        return []
    scores, ids = index.search(q[None, :], min(max(k, RERANK) if floats else k, n))
    if floats is None:
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
    rows = np.sort(ids[0][ids[0] >= 0])  # in file order: the reads go forward
    exact = floats(rows) @ q
    return [(int(rows[i]), float(exact[i])) for i in top_k(exact, k)]
