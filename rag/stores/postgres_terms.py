"""Keeping the PostgreSQL store's BM25 rows current: bags and heads as chunks come and go.

Each function runs inside the caller's transaction on the primary (see ``postgres_bm25.py`` for what
the rows hold). The caller holds the collection's advisory lock, so heads are never merged by two
writers at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import FIELDS, Tokens, unique_terms
from . import postgres_bm25 as bm25
from .postgres_sql import MIGRATE, SET_HEADS, UPSERT_TERMS

Postings = tuple[np.ndarray, np.ndarray, np.ndarray]  # term id, row, impact


def stats(conn: Any, cid: int) -> tuple[int, int, int]:
    """Chunks, and total lengths of the two fields."""
    n, ln, lf = conn.execute(
        "SELECT n_chunks, len_norm, len_fold FROM rag_collections WHERE id = %s", (cid,)
    ).fetchone()
    return int(n), int(ln), int(lf)


def _head_avgdl(conn: Any, cid: int, dl0: list[int], dl1: list[int]) -> np.ndarray:
    """The average lengths impacts are computed with: those of the first batch, kept from then on."""
    (kept,) = conn.execute("SELECT head_avgdl FROM rag_collections WHERE id = %s", (cid,)).fetchone()
    if kept is None:
        kept = [max(float(np.mean(dl0)), 1.0), max(float(np.mean(dl1)), 1.0)]
        conn.execute("UPDATE rag_collections SET head_avgdl = %s WHERE id = %s", (kept, cid))
    return np.asarray(kept, np.float64)


def _joined(a: Postings, b: Postings) -> Postings:
    return bm25.merge(
        np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), np.concatenate([a[2], b[2]])
    )


def _write_heads(conn: Any, cid: int, tids: np.ndarray, merged: Postings) -> None:
    """Store the heads of terms ``tids`` (a term left without postings gets an empty head)."""
    got = {h[0]: h for h in bm25.heads(*merged)}
    out = [got.get(int(t), (int(t), b"", b"", -1.0)) for t in tids]
    if out:
        conn.execute(SET_HEADS.format(id=cid), [list(c) for c in zip(*out)])


def _heads(conn: Any, cid: int, tids: np.ndarray) -> Postings:
    found = conn.execute(
        f"SELECT tid, head_rows, head_imp FROM rag_terms_{cid} WHERE tid = ANY(%s)", (tids.tolist(),)
    ).fetchall()
    return bm25.unpack_heads(found)


def add(conn: Any, cid: int, ids: list[int], toks: list[Tokens]) -> None:
    """The chunks' bags, their terms' document frequencies, and the heads their postings enter
    (before the collection's statistics count them)."""
    if not toks:
        return
    keys: dict[tuple[int, str], int] = {}
    df: list[int] = []
    per_chunk = []
    for t in toks:
        ks, tfs = [], []
        for fi, name in enumerate(FIELDS):
            for term, tf in unique_terms(t[name]).items():
                j = keys.setdefault((fi, term), len(keys))
                if j == len(df):
                    df.append(0)
                df[j] += 1
                ks.append(j)
                tfs.append(tf)
        per_chunk.append((ks, tfs))
    kl = list(keys)
    got = conn.execute(UPSERT_TERMS.format(id=cid), ([k[0] for k in kl], [k[1] for k in kl], df)).fetchall()
    tid_of = np.zeros(len(kl), np.int64)
    top = max(int(r[2]) for r in got) + 1
    field_of, floor = np.zeros(top, np.int64), np.full(top, -np.inf)
    for f, term, tid, n, low in got:
        tid_of[keys[(f, term)]], field_of[tid] = tid, f
        if n >= bm25.HEAD:
            floor[tid] = low  # a full head: only a posting above its last one enters it
    bags = [
        (i, len(t["norm"]), len(t["fold"]), tid_of[ks].astype(bm25.TID).tobytes(),
         np.asarray(tfs).astype(bm25.TF).tobytes())
        for i, t, (ks, tfs) in zip(ids, toks, per_chunk)
    ]  # fmt: skip
    with conn.cursor().copy(f"COPY rag_bags_{cid} (chunk, dl0, dl1, tids, tfs) FROM STDIN") as cp:
        for bag in bags:
            cp.write_row(bag)
    avgdl = _head_avgdl(conn, cid, [b[1] for b in bags], [b[2] for b in bags])
    tid, row, imp = bm25.postings(bags, field_of, avgdl)
    enter = imp > floor[tid]
    changed = np.unique(tid[enter])
    _write_heads(
        conn, cid, changed, _joined(_heads(conn, cid, changed), (tid[enter], row[enter], imp[enter]))
    )


def remove(conn: Any, cid: int, ids: list[int]) -> None:
    """Chunks ``ids`` leave the bags, the document frequencies and every head they were in."""
    gone = conn.execute(f"DELETE FROM rag_bags_{cid} WHERE chunk = ANY(%s) RETURNING tids", (ids,)).fetchall()
    tids, counts = np.unique(
        np.concatenate([np.frombuffer(g[0], bm25.TID) for g in gone] or [np.zeros(0, np.int64)]),
        return_counts=True,
    )
    conn.execute(
        f"UPDATE rag_terms_{cid} t SET df = t.df - u.n FROM unnest(%s::int4[], %s::int4[]) u(tid, n) "
        "WHERE t.tid = u.tid",
        (tids.tolist(), counts.tolist()),
    )
    conn.execute(f"DELETE FROM rag_terms_{cid} WHERE df <= 0")
    tid, row, imp = _heads(conn, cid, tids)
    out = np.isin(row, ids)
    _write_heads(conn, cid, np.unique(tid[out]), (tid[~out], row[~out], imp[~out]))


def migrate(conn: Any, cid: int) -> bool:
    """Bags and heads for a collection written with one row per posting; ``False`` if it had none."""
    conn.execute("SELECT pg_advisory_xact_lock(7475, %s)", (cid,))
    if conn.execute("SELECT to_regclass(%s)", (f"rag_postings_{cid}",)).fetchone()[0] is None:
        return False  # another process did it
    conn.execute(MIGRATE.format(id=cid))
    n, ln, lf = stats(conn, cid)
    avgdl = np.array([max(ln / max(n, 1), 1.0), max(lf / max(n, 1), 1.0)])
    conn.execute("UPDATE rag_collections SET head_avgdl = %s WHERE id = %s", (avgdl.tolist(), cid))
    fields = conn.execute(f"SELECT tid, field FROM rag_terms_{cid}").fetchall()
    field_of = np.zeros(max((t for t, _ in fields), default=0) + 1, np.int64)
    field_of[[t for t, _ in fields]] = [f for _, f in fields]
    acc = bm25.postings([], field_of, avgdl)
    with conn.cursor(name=f"rag_bags_{cid}") as cur:  # memory: the heads and one batch of bags
        cur.execute(f"SELECT chunk, dl0, dl1, tids, tfs FROM rag_bags_{cid}")
        while batch := cur.fetchmany(10_000):
            acc = _joined(acc, bm25.postings(batch, field_of, avgdl))
    _write_heads(conn, cid, np.unique(acc[0]), acc)
    return True
