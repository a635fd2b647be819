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
    return bm25.merge(*_concat([a, b]))


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
    """The chunks' bags and their terms' document frequencies (heads follow at ``update_heads``)."""
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
    for f, term, tid in got:
        tid_of[keys[(f, term)]] = tid
    with conn.cursor().copy(f"COPY rag_bags_{cid} (chunk, dl0, dl1, tids, tfs) FROM STDIN") as cp:
        for i, t, (ks, tfs) in zip(ids, toks, per_chunk):
            cp.write_row((i, len(t["norm"]), len(t["fold"]), tid_of[ks].astype(bm25.TID).tobytes(),
                          np.asarray(tfs).astype(bm25.TF).tobytes()))  # fmt: skip


def update_heads(conn: Any, cid: int, batch: int = 10_000) -> int:
    """Merge the postings of chunks added since the last merge into their terms' heads; how many
    chunks that was. One pass over their bags; each changed head is written once."""
    (upto,) = conn.execute("SELECT heads_upto FROM rag_collections WHERE id = %s", (cid,)).fetchone()
    (last,) = conn.execute(f"SELECT max(chunk) FROM rag_bags_{cid}").fetchone()
    if last is None or last <= upto:
        return 0
    terms = conn.execute(
        f"SELECT tid, field, length(head_rows) / 8, head_min FROM rag_terms_{cid}"
    ).fetchall()
    top = max(t[0] for t in terms) + 1
    field_of, floor = np.zeros(top, np.int64), np.full(top, -np.inf)
    for tid, f, n, low in terms:
        field_of[tid] = f
        if n >= bm25.HEAD:
            floor[tid] = low  # a full head: only a posting above its last one enters it
    avgdl: np.ndarray | None = None
    done, pending, size, merged = 0, [], 0, _concat([])
    # memory: the new heads and one batch of bags
    with conn.cursor(name=f"rag_heads_{cid}", binary=True) as cur:
        cur.execute(
            f"SELECT chunk, dl0, dl1, tids, tfs FROM rag_bags_{cid} WHERE chunk > %s AND chunk <= %s",
            (upto, last),
        )
        while bags := cur.fetchmany(batch):
            if avgdl is None:
                avgdl = _head_avgdl(conn, cid, [b[1] for b in bags], [b[2] for b in bags])
            tid, row, imp = bm25.postings(bags, field_of, avgdl)
            enter = imp > floor[tid]
            pending.append(bm25.merge(tid[enter], row[enter], imp[enter]))
            size += len(pending[-1][0])
            done += len(bags)
            # merge now and then (each posting is sorted a few times), and raise the floors
            if size > 2 * len(merged[0]) + 1_000_000:
                merged = _joined(merged, _concat(pending))
                pending, size = [], 0
                full = _full_floor(merged)
                floor[full[0]] = np.maximum(floor[full[0]], full[1])
    merged = _joined(merged, _concat(pending))
    changed = np.unique(merged[0])
    for i in range(0, len(changed), 5000):  # bounded statements
        part = changed[i : i + 5000]
        keep = np.isin(merged[0], part)
        mine = (merged[0][keep], merged[1][keep], merged[2][keep])
        _write_heads(conn, cid, part, _joined(_heads(conn, cid, part), mine))
    conn.execute("UPDATE rag_collections SET heads_upto = %s WHERE id = %s", (last, cid))
    return done


def _concat(parts: list[Postings]) -> Postings:
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _full_floor(merged: Postings) -> tuple[np.ndarray, np.ndarray]:
    """(term ids, last impact) of the terms whose merged postings already fill a head."""
    tid = merged[0]
    if not len(tid):
        return tid, merged[2]
    start = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
    end = np.r_[start[1:], len(tid)]
    full = end - start >= bm25.HEAD
    return tid[start[full]], merged[2][end[full] - 1]


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
    avgdl = [max(ln / max(n, 1), 1.0), max(lf / max(n, 1), 1.0)]
    conn.execute("UPDATE rag_collections SET head_avgdl = %s, heads_upto = 0 WHERE id = %s", (avgdl, cid))
    update_heads(conn, cid)
    return True
