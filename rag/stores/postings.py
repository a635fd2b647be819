"""BM25 search over memory-mapped postings: exact top k with MaxScore pruning.

A field's index (``compact.CompactPostings``, or ``Postings`` for builds saved by bm25s) gives
every term's rows (sorted) and BM25 weights. A query sums its terms' postings. The terms whose postings are long (more than ``LONG`` of the chunks: stop words
and common pairs) are not read whole when they cannot change the top k: after the short ones,
only the chunks whose partial score plus the most the long terms can add still reach the k-th
best are scored on them, by merging with their postings, and that set shrinks term by term.
When the bound does not prune, every posting is summed. The top k is exact either way, ties
broken by row as ``top_k`` does, and ``bm25_at`` gives the same float32 sums for any rows.

With numba installed (the ``fast`` extra) the loops are compiled; without it numpy does the same
work, several times slower at a million chunks.
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .faiss_index import top_k

try:
    from numba import njit

    NUMBA = True
except ImportError:  # the numpy path below
    NUMBA = False

LONG = 1 / 16  # a term's postings are long above this share of the chunks


def jit(f: Any) -> Any:
    return njit(cache=True, nogil=True)(f) if NUMBA else f


@jit
def _add_all(acc, touched, nt, rows, data, starts, ends, weights):  # type: ignore[no-untyped-def]
    """Add terms' postings into ``acc``; rows touched for the first time go to ``touched``."""
    for t in range(starts.shape[0]):
        w = weights[t]
        for j in range(starts[t], ends[t]):
            r = rows[j]
            if acc[r] == 0:
                touched[nt] = r
                nt += 1
            acc[r] += data[j] * w
    return nt


@jit
def gallop(keys, j, end, x):  # type: ignore[no-untyped-def]
    """The first position from ``j`` (below ``end``) whose key is not below ``x``: doubling steps,
    then a binary search, so a merge with few candidates skips most of a long sorted list."""
    if keys[j] >= x:
        return j
    step = 1
    while j + step < end and keys[j + step] < x:
        j += step
        step *= 2
    lo, hi = j + 1, min(j + step, end)
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def _merge_add(s, cand, rows, data, start, end, w):  # type: ignore[no-untyped-def]
    """``s[i] += weight of cand[i]`` in one term's postings (both sorted): a galloping merge."""
    j = start
    for i in range(cand.shape[0]):
        c = cand[i]
        if j >= end:
            break
        j = gallop(rows, j, end, c)
        if j < end and rows[j] == c:
            s[i] += data[j] * w


MAXIMA = "maxima.npy"  # beside bm25s' files: each term's largest weight (the pruning bounds)


class Postings:
    """One field's BM25 index as bm25s saved it (builds before ``compact``), memory-mapped."""

    def __init__(self, bm: Any, folder: Path | None = None) -> None:
        sc = bm.scores
        # plain views of the memory maps: slicing an np.memmap costs more than the search itself
        self.data, self.rows = np.asarray(sc["data"]), np.asarray(sc["indices"])
        self.ptr = np.asarray(sc["indptr"])
        self.n = int(sc["num_docs"])
        self.vocab: dict[str, int] = bm.vocab_dict
        if getattr(bm, "nonoccurrence_array", None) is not None:  # BM25L / BM25+; the store builds Lucene's
            raise ValueError("only BM25 variants without a non-occurrence score are supported")
        self._max: dict[int, float] = {}
        path = folder / MAXIMA if folder is not None else None
        self.maxima = np.load(path) if path is not None and path.exists() else None  # older builds: none

    def span(self, term: int) -> tuple[int, int]:
        return int(self.ptr[term]), int(self.ptr[term + 1])

    def length(self, term: int) -> int:
        return int(self.ptr[term + 1] - self.ptr[term])

    def best(self, term: int) -> float:
        """The largest weight of ``term`` in any chunk (cached: stop words recur in every query)."""
        if self.maxima is not None:
            return float(self.maxima[term])
        if term not in self._max:
            s, e = self.span(term)
            self._max[term] = float(self.data[s:e].max()) if e > s else 0.0
        return self._max[term]

    def add(
        self, acc: np.ndarray, touched: np.ndarray, nt: int, terms: list[tuple[int, int]], fast: bool
    ) -> int:
        """Add whole postings in order; compiled, also list the rows touched first (no scan of ``acc``)."""
        if fast:
            spans = np.array([self.span(t) for t, _ in terms], np.int64).reshape(-1, 2)
            w = np.array([c for _, c in terms], np.float32)
            return int(_add_all(acc, touched, nt, self.rows, self.data, spans[:, 0], spans[:, 1], w))
        for t, c in terms:
            s, e = self.span(t)
            np.add.at(acc, self.rows[s:e], self.data[s:e] * np.float32(c) if c != 1 else self.data[s:e])
        return nt

    def lookup(self, s: np.ndarray, cand: np.ndarray, term: int, c: int, fast: bool) -> None:
        """``s += term's weight`` for the sorted rows ``cand``."""
        start, end = self.span(term)
        if fast:
            _merge_add(s, cand, self.rows, self.data, start, end, np.float32(c))
            return
        post = self.rows[start:end]
        if end == start:
            return
        pos = np.minimum(np.searchsorted(post, cand.astype(post.dtype, copy=False)), end - start - 1)
        hit = post[pos] == cand
        w = self.data[start:end][pos[hit]]
        s[hit] += w * np.float32(c) if c != 1 else w


class Field(Protocol):
    """What the search needs of one field's index."""

    n: int
    vocab: dict[str, int]

    def length(self, term: int) -> int: ...
    def best(self, term: int) -> float: ...
    def add(
        self, acc: np.ndarray, touched: np.ndarray, nt: int, terms: list[tuple[int, int]], fast: bool
    ) -> int: ...
    def lookup(self, s: np.ndarray, cand: np.ndarray, term: int, c: int, fast: bool) -> None: ...


_Term = tuple[Field, int, int, float]  # postings, term id, count in the query, upper bound
Fields = list[tuple[Field, list[str]]]


def _terms(fields: Fields) -> tuple[list[_Term], list[_Term]]:
    """Short terms by field, then by bound; long terms by bound. Every sum adds in this order."""
    short: list[_Term] = []
    long: list[_Term] = []
    for p, toks in fields:
        part: list[_Term] = []
        for t, c in Counter(p.vocab[x] for x in toks if x in p.vocab).items():
            (long if p.length(t) > p.n * LONG else part).append((p, t, c, c * p.best(t)))
        short += sorted(part, key=lambda x: -x[3])
    return short, sorted(long, key=lambda x: -x[3])


def _add(acc: np.ndarray, touched: np.ndarray, nt: int, terms: list[_Term]) -> int:
    for _, run in groupby(terms, key=lambda x: id(x[0])):  # runs of one field's terms, in order
        mine = list(run)
        nt = mine[0][0].add(acc, touched, nt, [(x[1], x[2]) for x in mine], NUMBA)
    return nt


def _lookup(s: np.ndarray, cand: np.ndarray, term: _Term) -> None:
    term[0].lookup(s, cand, term[1], term[2], NUMBA)


def bm25_top(fields: Fields, k: int) -> list[tuple[int, float]]:
    """(row, BM25 summed over ``fields``) of the ``k`` best chunks with a positive score."""
    if not fields or k <= 0:
        return []
    n = fields[0][0].n
    short, long = _terms(fields)
    acc = np.zeros(n, np.float32)
    touched = np.empty(min(n, sum(x[0].length(x[1]) for x in short)) if NUMBA else 0, np.int32)
    nt = _add(acc, touched, 0, short)
    if long:
        bound = float(sum(x[3] for x in long))  # the most the long terms add to any chunk
        hit = touched[:nt] if NUMBA else np.flatnonzero(acc)
        kth = float(np.partition(acc[hit], len(hit) - k)[len(hit) - k]) if len(hit) >= k else 0.0
        slack = 1e-4 * kth  # float32 sums: a bound a little looser than exact
        cand = np.sort(hit[acc[hit] + bound >= kth - slack]) if kth > bound + slack else None
        postings = sum(x[0].length(x[1]) for x in long)
        # numpy's binary searches cost ~50 postings read each; the compiled merge, fewer than one
        if cand is not None and (NUMBA or len(cand) * len(long) * 50 < postings):
            s = acc[cand]
            rest = np.cumsum([x[3] for x in long][::-1])[::-1][1:].tolist() + [0.0]  # bound after each
            for term, after in zip(long, rest):
                _lookup(s, cand, term)
                if len(cand) > 4 * k:  # drop the chunks that the terms left can no longer lift
                    kth = float(np.partition(s, len(s) - k)[len(s) - k])
                    keep = s + after >= kth - slack
                    cand, s = cand[keep], s[keep]
            return [(int(cand[i]), float(s[i])) for i in top_k(s, k) if s[i] > 0]
        if NUMBA:
            touched = np.empty(n, np.int32)  # the rows are not needed any more: a full-size scratch
        _add(acc, touched, 0, long)  # no pruning: every posting
    return [(int(i), float(acc[i])) for i in top_k(acc, k) if acc[i] > 0]


def bm25_at(fields: Fields, rows: list[int]) -> np.ndarray:
    """BM25 of given rows, summed in the same order as ``bm25_top`` (the same float32 values)."""
    r = np.asarray(rows, np.int64)
    order = np.argsort(r, kind="stable")
    srt = r[order].astype(np.int32)
    out = np.zeros(len(r), np.float32)
    short, long = _terms(fields)
    for term in short + long:
        _lookup(out, srt, term)
    res = np.empty_like(out)
    res[order] = out
    return res
