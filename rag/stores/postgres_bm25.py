"""BM25 for the PostgreSQL store, computed in Python from two compact structures the database keeps.

- **A bag per chunk** (``rag_bags_<id>``): the ids of the chunk's distinct terms and how often each
  occurs, as big-endian int4 and int2 arrays in two ``bytea`` values, with the chunk's length in
  each field. One primary-key read gives any chunk's exact BM25.
- **A head per term** (a row of ``rag_terms_<id>``): the term's document frequency and its ``HEAD``
  postings of highest impact (row ids int8, impacts float4, best first). The impact is the term's
  BM25 weight without its idf, with the average chunk lengths of the collection's first batch (kept
  in ``rag_collections.head_avgdl``): the same counts and length always give the same impact, so a
  posting enters a full head only when it weighs more than the head's last one. Adds write bags;
  ``commit`` merges their postings into the heads (``rag_collections.heads_upto`` marks how far),
  so a chunk is found by BM25 search once its build is committed.

A search sums ``idf × impact`` over the heads of the query's terms, keeps the best candidates and
scores them exactly from their bags. A term in fewer than ``HEAD`` chunks has its every posting in
its head, so only a chunk that is outside the head of every common term it has, and holds none of
the rare ones, can be missed. One row a chunk and one a term: a million chunks are a million bags,
where one row per posting would be hundreds of millions.

The formula is bm25s' (Lucene's, k1=1.5, b=0.75) on the project's own tokens, so scores match the
FAISS store's. Deleting a chunk takes it out of the heads it was in; a head then holds fewer than
``HEAD`` postings until new chunks fill it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from . import K1, B

HEAD = 1000  # postings kept per term, by impact
TID, TF, ROW, IMP = ">i4", ">i2", ">i8", ">f4"  # how the bytea arrays are laid out (as int4send &c.)


def impact(tf: np.ndarray, dl: np.ndarray, avgdl: np.ndarray | float) -> np.ndarray:
    """A posting's BM25 weight without the idf."""
    tf = np.asarray(tf, np.float64)
    return tf / (tf + K1 * (1 - B + B * np.asarray(dl, np.float64) / avgdl))


def idf(n: float, df: np.ndarray) -> np.ndarray:
    df = np.asarray(df, np.float64)
    return np.log(1 + (n - df + 0.5) / (df + 0.5))


def merge(
    tid: np.ndarray, row: np.ndarray, imp: np.ndarray, keep: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Postings grouped by term, best impact first (ties: lower row first), at most ``keep`` a term."""
    keep = HEAD if keep is None else keep
    order = np.lexsort((row, -imp, tid))
    tid, row, imp = tid[order], row[order], imp[order]
    if len(tid):
        start = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
        rank = np.arange(len(tid)) - np.repeat(start, np.diff(np.r_[start, len(tid)]))
        ok = rank < keep
        tid, row, imp = tid[ok], row[ok], imp[ok]
    return tid, row, imp


def heads(tid: np.ndarray, row: np.ndarray, imp: np.ndarray) -> Iterable[tuple[int, bytes, bytes, float]]:
    """(term id, rows, impacts, smallest impact kept or -1 while not full) of merged postings."""
    if not len(tid):
        return
    cut = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1], True])
    for a, b in zip(cut[:-1], cut[1:]):
        full = b - a >= HEAD
        yield (
            int(tid[a]),
            row[a:b].astype(ROW).tobytes(),
            imp[a:b].astype(IMP).tobytes(),
            float(imp[b - 1]) if full else -1.0,
        )


def unpack_heads(found: Sequence[tuple[int, bytes, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored heads back into (term id, row, impact) arrays."""
    rows = [np.frombuffer(r, ROW) for _, r, _ in found]
    tid = np.repeat(np.array([t for t, _, _ in found], np.int64), [len(r) for r in rows])
    row = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    imp = np.concatenate([np.frombuffer(i, IMP) for _, _, i in found]) if found else np.zeros(0)
    return tid, row, imp.astype(np.float64)


class Query:
    """A query's terms as the store found them: ids, fields, idf (counted as often as they occur)."""

    def __init__(self, n: int, len_norm: int, len_fold: int, terms: Sequence[tuple[int, int, int, int]]):
        # terms: (field, term id, df, occurrences in the query)
        self.avgdl = np.array([len_norm / max(n, 1), len_fold / max(n, 1)], np.float64)
        f = np.array([t[0] for t in terms], np.int64)
        tid = np.array([t[1] for t in terms], np.int64)
        w = idf(n, np.array([t[2] for t in terms])) * np.array([t[3] for t in terms], np.float64)
        order = np.argsort(tid)
        self.tid, self.field, self.idf = tid[order], f[order], w[order]

    def candidates(self, heads: Sequence[tuple[int, bytes, bytes]], n: int) -> list[int]:
        """The ``n`` rows with the highest sum of ``idf × impact`` over the query terms' heads."""
        tid, row, imp = unpack_heads(heads)
        if not len(row):
            return []
        w = self.idf[np.searchsorted(self.tid, tid)] * imp
        if row.max() < 8 * len(row) + 2_000_000:  # sum by row id in a dense array: no sort
            total = np.bincount(row, weights=w)
            rows = np.flatnonzero(total)
            total = total[rows]
        else:  # sparse row ids (many rows deleted and added again)
            rows, inv = np.unique(row, return_inverse=True)
            total = np.bincount(inv, weights=w)
        if len(rows) > n:
            rows = rows[np.argpartition(-total, n - 1)[:n]]
        return [int(r) for r in rows]

    def score(self, bags: Sequence[tuple[int, int, int, bytes, bytes]]) -> dict[int, float]:
        """Exact BM25 of chunks from their bags: (row, dl norm, dl fold, term ids, counts)."""
        return self.score_decoded(Bags(bags))

    def score_decoded(self, bags: Bags) -> dict[int, float]:
        if not len(bags.rows) or not len(self.tid):
            return {int(r): 0.0 for r in bags.rows}
        pos = np.minimum(np.searchsorted(self.tid, bags.tid), len(self.tid) - 1)
        hit = self.tid[pos] == bags.tid
        j, who = pos[hit], bags.owner[hit]
        dl = bags.dl[who, self.field[j]]
        w = self.idf[j] * impact(bags.tf[hit], dl, self.avgdl[self.field[j]])
        total = np.bincount(who, weights=w, minlength=len(bags.rows))
        return {int(r): float(s) for r, s in zip(bags.rows, total)}


class Bags:
    """Bags as rows from the database, decoded once into flat arrays (one entry a posting)."""

    def __init__(self, bags: Sequence[tuple[int, int, int, bytes, bytes]]):
        tids = [np.frombuffer(b[3], TID) for b in bags]
        self.rows = np.array([b[0] for b in bags], np.int64)
        self.dl = np.array([[b[1], b[2]] for b in bags], np.float64).reshape(-1, 2)
        self.owner = np.repeat(np.arange(len(bags)), [len(t) for t in tids])
        self.tid = np.concatenate(tids).astype(np.int64) if bags else np.zeros(0, np.int64)
        tfs = [np.frombuffer(b[4], TF) for b in bags]
        self.tf = np.concatenate(tfs).astype(np.float64) if bags else np.zeros(0)


def best(scores: dict[int, float], k: int | None) -> list[tuple[int, float]]:
    """The ``k`` best positive scores, best first, ties by row."""
    found = sorted(((r, s) for r, s in scores.items() if s > 0), key=lambda x: (-x[1], x[0]))
    return found if k is None else found[:k]


def postings(
    bags: Sequence[tuple[int, int, int, bytes, bytes]], field_of: np.ndarray, avgdl: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term id, row, impact) of every posting in ``bags``; ``field_of[term id]`` is the term's field."""
    d = Bags(bags)
    f = field_of[d.tid]
    imp = impact(d.tf, d.dl[d.owner, f], avgdl[f])
    return d.tid, d.rows[d.owner], imp.astype(np.float32).astype(np.float64)  # as heads store them
