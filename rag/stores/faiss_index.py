"""The FAISS store's search structures: the dense index, and BM25 over memory-mapped postings.

Dense: exact inner product (``IndexFlatIP``) below the HNSW threshold. Above it, an HNSW graph
over 8-bit scalar-quantised vectors (``IndexHNSWSQ``: a quarter of float32's memory), whose
``RERANK`` best candidates are scored again exactly against the float vectors, read
memory-mapped from ``vectors-<build>.npy`` (only the rows a query touches are paged in).
Indexes built before with HNSW over float vectors (``hnsw``) still load and search as before.

Sparse: bm25s builds and saves each field's index (every term's BM25 weight in every chunk, rows
sorted). A query sums its terms' postings, with MaxScore pruning: the terms whose postings are
long (stop words, mostly) are scored only for the chunks that can still reach the top k, given
the best score each such term can add; when the bound does not prune, every posting is summed.
The top k is exact either way, ties broken by row as ``top_k`` does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

HNSW_THRESHOLD = 50_000
HNSW_M = 32
EF_CONSTRUCTION = 80
EF_SEARCH = 256  # recall@10 .999 at 100k synthetic chunks with the exact re-ranking (BENCHMARKS.md)
RERANK = 100  # quantised candidates re-scored exactly
SQ_TRAIN = 100_000  # vectors sampled to train the quantiser (a min and max per dimension)
LONG = 1 / 16  # a term's postings are long above this share of the chunks
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
    index: Any, vectors: np.ndarray, qv: np.ndarray, k: int, rerank: bool
) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` nearest; ``rerank``: exact cosines of the index's candidates."""
    q = np.asarray(qv, np.float32)
    n = int(index.ntotal)
    if n == 0 or k <= 0:
        return []
    scores, ids = index.search(q[None, :], min(max(k, RERANK) if rerank else k, n))
    if not rerank:
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
    rows = np.sort(ids[0][ids[0] >= 0])  # in file order: the memory-mapped reads go forward
    exact = np.asarray(vectors[rows], np.float32) @ q
    return [(int(rows[i]), float(exact[i])) for i in top_k(exact, k)]


class Postings:
    """One field's BM25 index, as bm25s saved it (memory-mapped): each term's rows and weights."""

    def __init__(self, bm: Any) -> None:
        sc = bm.scores
        # plain views of the memory maps: slicing an np.memmap costs more than the search itself
        self.data, self.rows = np.asarray(sc["data"]), np.asarray(sc["indices"])
        self.ptr = np.asarray(sc["indptr"])
        self.n = int(sc["num_docs"])
        self.vocab: dict[str, int] = bm.vocab_dict
        extra = getattr(bm, "nonoccurrence_array", None)
        if extra is not None:  # BM25L / BM25+: a score for absent terms; the store builds Lucene's
            raise ValueError("only BM25 variants without a non-occurrence score are supported")
        self._max: dict[int, float] = {}

    def span(self, term: int) -> tuple[int, int]:
        return int(self.ptr[term]), int(self.ptr[term + 1])

    def best(self, term: int) -> float:
        """The largest weight of ``term`` in any chunk (cached: stop words recur in every query)."""
        if term not in self._max:
            s, e = self.span(term)
            self._max[term] = float(self.data[s:e].max()) if e > s else 0.0
        return self._max[term]


_Term = tuple[Postings, int, int, float]  # postings, term id, count in the query, upper bound


def _terms(fields: list[tuple[Postings, list[str]]]) -> tuple[list[_Term], list[_Term]]:
    """The query's terms, short postings then long, each by upper bound (one order for every sum)."""
    short: list[_Term] = []
    long: list[_Term] = []
    for p, toks in fields:
        for t, c in Counter(p.vocab[x] for x in toks if x in p.vocab).items():
            s, e = p.span(t)
            (long if e - s > p.n * LONG else short).append((p, t, c, c * p.best(t)))
    return sorted(short, key=lambda x: -x[3]), sorted(long, key=lambda x: -x[3])


def _add(acc: np.ndarray, term: _Term) -> None:
    p, t, c, _ = term
    s, e = p.span(t)
    np.add.at(acc, p.rows[s:e], p.data[s:e] * np.float32(c) if c != 1 else p.data[s:e])


def _lookup(out: np.ndarray, rows: np.ndarray, term: _Term) -> None:
    p, t, c, _ = term
    s, e = p.span(t)
    post = p.rows[s:e]
    if e == s:
        return
    pos = np.minimum(
        np.searchsorted(post, rows.astype(post.dtype, copy=False)), e - s - 1
    )  # same dtype: no copy
    hit = post[pos] == rows
    w = p.data[s:e][pos[hit]]
    out[hit] += w * np.float32(c) if c != 1 else w


def bm25_top(fields: list[tuple[Postings, list[str]]], k: int) -> list[tuple[int, float]]:
    """(row, BM25 summed over ``fields``) of the ``k`` best chunks with a positive score."""
    if not fields or k <= 0:
        return []
    n = fields[0][0].n
    short, long = _terms(fields)
    acc = np.zeros(n, np.float32)
    for term in short:
        _add(acc, term)
    if long:
        bound = float(sum(x[3] for x in long))  # the most the long terms add to any chunk
        hit = np.flatnonzero(acc)
        kth = float(np.partition(acc[hit], len(hit) - k)[len(hit) - k]) if len(hit) >= k else 0.0
        cand = hit[acc[hit] + bound >= kth] if kth > bound else None
        postings = sum(e - s for s, e in (x[0].span(x[1]) for x in long))
        if cand is not None and len(cand) * len(long) * 20 < postings:  # ~20 steps a binary search
            s = acc[cand]
            for term in long:
                _lookup(s, cand, term)
            return [(int(cand[i]), float(s[i])) for i in top_k(s, k) if s[i] > 0]
        for term in long:  # no pruning: every posting
            _add(acc, term)
    return [(int(i), float(acc[i])) for i in top_k(acc, k) if acc[i] > 0]


def bm25_at(fields: list[tuple[Postings, list[str]]], rows: list[int]) -> np.ndarray:
    """BM25 of given rows, summed in the same order as ``bm25_top`` (the same float32 values)."""
    r = np.asarray(rows, np.int64)
    out = np.zeros(len(r), np.float32)
    short, long = _terms(fields)
    for term in short + long:
        _lookup(out, r, term)
    return out
