"""BM25 postings in the project's own compact form: 3 bytes a posting where bm25s saves 8.

A field's index holds, for every term, the chunks it occurs in (rows, ascending) and how often.
Rows are cut into segments of 65,536: ``bounds[t * S + s]`` is where term ``t``'s postings in
segment ``s`` start, ``low`` the row's low 16 bits (uint16) and ``tf`` the count (uint8, or uint16
when a count passes 255). A weight is computed when it is read, with the formula and the float
arithmetic of bm25s (Lucene's BM25, in float64, kept as float32), so the weights are bit for bit
those of a bm25s index of the same tokens, which the tests check::

    idf(t)   = float32(ln(1 + (N - df + .5) / (df + .5)))
    w(t, d)  = float32(idf(t) * tf / (k1 * (1 - b + b * len(d) / mean len) + tf))

Why: at a million chunks bm25s' postings (an int32 row and a float32 weight each) take 4 GB,
and a day of queries touches nearly all of them, which a process then holds as resident pages.
Here they take 1.5 GB, and a lookup still gallops over a sorted array (the low bits within the
row's segment), so searching costs the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from itertools import chain, islice
from pathlib import Path

import numpy as np

from . import K1, B
from .postings import gallop, jit

META = "compact.json"
SEG = 16  # rows per segment: 1 << SEG
TABLE_TF = 8  # counts below this are read from a table of tf / (norm + tf)
_FILES = ("bounds", "low", "tf", "idf", "dl", "maxima")


def is_compact(folder: Path) -> bool:
    return (folder / META).exists()


def _weights(idf: np.ndarray, tf: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """bm25s' arithmetic: ``tf / (norm + tf)`` in float64, times the float32 idf, kept as float32."""
    f = tf.astype(np.float64)
    return (idf.astype(np.float64) * (f / (norm + f))).astype(np.float32)


def _norm(dl: np.ndarray, k1: float, b: float, avgdl: float) -> np.ndarray:
    return k1 * ((1 - b) + b * dl.astype(np.float64) / avgdl)


def write(folder: Path, docs: Iterable[list[str]], k1: float = K1, b: float = B, batch: int = 20_000) -> None:
    """Index ``docs`` (each chunk's tokens, in row order) into ``folder``: at the peak about 20 bytes
    a posting (5 GB for a million chunks of 250 distinct tokens), plus one batch of token lists."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    terms: list[np.ndarray] = []
    rowss: list[np.ndarray] = []
    cnts: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    it, n = iter(docs), 0
    while chunk := list(islice(it, batch)):
        ids = [[vocab.setdefault(t, len(vocab)) for t in d] for d in chunk]
        ln = np.fromiter(map(len, ids), np.int64, len(ids))
        flat = np.fromiter(chain.from_iterable(ids), np.int64, int(ln.sum()))
        rows = np.repeat(np.arange(n, n + len(ids), dtype=np.int64), ln)
        key, cnt = np.unique((flat << 32) | rows, return_counts=True)  # by term, then row
        if cnt.max(initial=0) > 0xFFFF:
            raise ValueError("a token occurs more than 65,535 times in one chunk: chunk the text smaller")
        terms.append((key >> 32).astype(np.int32))
        rowss.append((key & 0xFFFFFFFF).astype(np.int32))
        cnts.append(cnt.astype(np.uint16))
        lens.append(ln)
        n += len(ids)
    if not n:
        raise ValueError("no chunks to index")
    dl = np.concatenate(lens)
    term = np.concatenate(terms)
    del terms
    order = np.argsort(term, kind="stable")  # batches are in row order: rows stay ascending per term
    term = term[order]
    rows = _gather(rowss, order)
    cnt = _gather(cnts, order)
    del order
    v, segs = len(vocab), max(1, -(-n >> SEG))
    df = np.bincount(term, minlength=v)
    idf = np.array([math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df.tolist()], np.float32)
    bounds = np.searchsorted(term.astype(np.int64) * segs + (rows >> SEG), np.arange(v * segs + 1))
    tf = cnt.astype(np.uint8) if cnt.max(initial=0) < 256 else cnt
    avgdl = float(dl.mean())  # as bm25s: the mean of an int64 array
    maxima = _maxima(term, rows, tf, idf, _norm(dl, k1, b, avgdl))
    arrays: dict[str, np.ndarray] = {"bounds": bounds.astype(np.int64), "low": (rows & 0xFFFF).astype(np.uint16),
              "tf": tf, "idf": idf, "dl": dl.astype(np.int32), "maxima": maxima}  # fmt: skip
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    meta = {"format": 1, "n": n, "segments": segs, "k1": k1, "b": b, "avgdl": avgdl}
    (folder / META).write_text(json.dumps(meta), encoding="utf-8")


def _maxima(
    term: np.ndarray, rows: np.ndarray, tf: np.ndarray, idf: np.ndarray, norm: np.ndarray
) -> np.ndarray:
    """Each term's largest weight (the search's bounds), computed a slice of postings at a time."""
    v = len(idf)
    out = np.zeros(v, np.float32)
    step = 1 << 24
    for lo in range(0, len(rows), step):
        sl = slice(lo, lo + step)
        w = _weights(idf[term[sl]], tf[sl], norm[rows[sl]])
        first = np.searchsorted(term[sl], np.arange(v))
        has = np.flatnonzero(np.bincount(term[sl], minlength=v))
        np.maximum.at(out, has, np.maximum.reduceat(w, first[has]))
    return out


def _available() -> int:
    """Memory the kernel can give without swapping (MemAvailable: free + reclaimable cache)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:  # not Linux: no read-in
        pass
    return 0


def _map_in(*arrays: np.ndarray) -> None:
    """Read memory-mapped postings in now, one byte a page: the first queries of a server then
    do not wait on page faults (at a million chunks they ran 20 ms slower until then). Only when
    they fit in a quarter of the available memory; the kernel can still drop the pages under pressure."""
    for a in arrays:
        step = max(1, 4096 // a.itemsize)
        int(np.add.reduce(a[::step], dtype=np.int64))


def _gather(parts: list[np.ndarray], order: np.ndarray) -> np.ndarray:
    """``concatenate(parts)[order]``, the parts freed as soon as they are joined."""
    whole = np.concatenate(parts)
    parts.clear()
    return whole[order]


class CompactPostings:
    """One field's compact BM25 index, memory-mapped: the interface ``postings.bm25_top`` searches."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        self.n, self.segs = int(meta["n"]), int(meta["segments"])
        self.vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        a = {f: np.asarray(np.load(folder / f"{f}.npy", mmap_mode="r")) for f in _FILES}
        self.bounds, self.low, self.tf = a["bounds"], a["low"], a["tf"]
        self.idf, self.maxima = np.array(a["idf"]), a["maxima"]
        if self.low.nbytes + self.tf.nbytes < _available() // 4:
            _map_in(self.low, self.tf)
        self.dl = np.array(a["dl"], np.uint16 if a["dl"].max(initial=0) < 1 << 16 else np.int32)  # in memory
        self.k1, self.b, self.avgdl = float(meta["k1"]), float(meta["b"]), float(meta["avgdl"])
        # tf / (norm + tf) for every length and the common counts: the same float64 values as
        # bm25s' division, read from a table that stays in the CPU's cache
        lens = np.arange(min(int(self.dl.max(initial=0)) + 1, 1 << 16))
        f = np.arange(TABLE_TF, dtype=np.float64)
        self.tfc = f[None, :] / (_norm(lens, self.k1, self.b, self.avgdl)[:, None] + f[None, :])
        self.params = (
            self.bounds,
            self.low,
            self.tf,
            self.idf,
            self.dl,
            self.tfc,
            self.k1,
            self.b,
            self.avgdl,
        )

    def length(self, term: int) -> int:
        return int(self.bounds[(term + 1) * self.segs] - self.bounds[term * self.segs])

    def best(self, term: int) -> float:
        return float(self.maxima[term])

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """A term's rows (int32, ascending) and weights (float32), decoded whole."""
        b = np.asarray(self.bounds[term * self.segs : (term + 1) * self.segs + 1])
        seg = np.repeat(np.arange(self.segs, dtype=np.int32), np.diff(b))
        rows = (seg << SEG) | self.low[b[0] : b[-1]].astype(np.int32)
        norm = _norm(self.dl[rows], self.k1, self.b, self.avgdl)
        return rows, _weights(self.idf[term : term + 1], self.tf[b[0] : b[-1]], norm)

    def add(
        self, acc: np.ndarray, touched: np.ndarray, nt: int, terms: list[tuple[int, int]], fast: bool
    ) -> int:
        if fast:
            ts = np.array([x[0] for x in terms], np.int64)
            cs = np.array([x[1] for x in terms], np.float32)
            return int(_add_all(acc, touched, nt, *self.params, self.segs, ts, cs))
        for t, c in terms:
            rows, w = self.postings(t)
            np.add.at(acc, rows, w * np.float32(c) if c != 1 else w)
        return nt

    def lookup(self, s: np.ndarray, cand: np.ndarray, term: int, c: int, fast: bool) -> None:
        if fast:
            _merge_add(s, cand, *self.params, self.segs, term, np.float32(c))
            return
        rows, w = self.postings(term)
        if not len(rows):
            return
        pos = np.minimum(np.searchsorted(rows, cand.astype(np.int32, copy=False)), len(rows) - 1)
        hit = rows[pos] == cand
        s[hit] += w[pos[hit]] * np.float32(c) if c != 1 else w[pos[hit]]


@jit
def _weight(w0, tf, d, tfc, k1, b, avgdl):  # type: ignore[no-untyped-def]
    """bm25s' weight of a count ``tf`` in a chunk of length ``d``: from the table when it has them."""
    if tf < tfc.shape[1] and d < tfc.shape[0]:
        return np.float32(w0 * tfc[d, tf])
    f = np.float64(tf)
    return np.float32(w0 * (f / (k1 * ((1 - b) + b * d / avgdl) + f)))


@jit
def _add_all(acc, touched, nt, bounds, low, tf, idf, dl, tfc, k1, b, avgdl, segs, terms, counts):  # type: ignore[no-untyped-def]
    """Add the terms' whole postings into ``acc``; rows touched for the first time go to ``touched``."""
    for i in range(terms.shape[0]):
        t, c, w0 = terms[i], counts[i], np.float64(idf[terms[i]])
        for s in range(segs):
            base = s << SEG
            for j in range(bounds[t * segs + s], bounds[t * segs + s + 1]):
                r = base | np.int64(low[j])
                if acc[r] == 0:
                    touched[nt] = r
                    nt += 1
                acc[r] += _weight(w0, tf[j], dl[r], tfc, k1, b, avgdl) * c
    return nt


@jit
def _merge_add(out, cand, bounds, low, tf, idf, dl, tfc, k1, b, avgdl, segs, t, c):  # type: ignore[no-untyped-def]
    """``out[i] += weight of cand[i]``: a galloping merge within each segment's low bits."""
    w0, seg, j, end = np.float64(idf[t]), -1, 0, 0
    for i in range(cand.shape[0]):
        r = np.int64(cand[i])
        if r >> SEG != seg:
            seg = r >> SEG
            j, end = bounds[t * segs + seg], bounds[t * segs + seg + 1]
        x = r & 0xFFFF
        if j >= end:
            continue
        j = gallop(low, j, end, x)
        if j < end and low[j] == x:
            out[i] += _weight(w0, tf[j], dl[r], tfc, k1, b, avgdl) * c
