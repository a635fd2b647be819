"""The scale-out store: PostgreSQL + pgvector (``RAG_STORE=postgresql://…``).

Tables: ``rag_collections`` (one row a collection: its build and BM25 statistics), ``rag_files``,
and per collection ``rag_chunks_<id>`` (chunk, vector with an HNSW index, token counts),
``rag_postings_<id>`` (field, term, chunk, tf, document length, impact) and ``rag_terms_<id>``
(document frequencies). BM25 is computed in SQL with exactly the formula bm25s uses (Lucene's,
k1=1.5, b=0.75) over the project's own Vietnamese tokens, so sparse scores match the FAISS store.

A BM25 search does not sum whole posting lists: a common syllable is in half of all chunks. Each
query term gives at most ``PER_TERM`` postings, those with the highest impact (the term's BM25
weight in that chunk, as of when it was written); the best ``RESCORE`` candidates by those partial
sums are then scored exactly. A term rarer than ``PER_TERM`` chunks is read whole, so only a chunk
that ranks low on every common term and has none of the rare ones can be missed (measured by
``rag bench --scale`` as BM25 recall against the exhaustive sum).

Every ``add`` and ``delete_file`` is one transaction: a killed build leaves whole files or none.
Searches can go to a streaming read replica (``RAG_STORE_READ``); writes go to the primary.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from typing import Any

import numpy as np

from ..errors import IndexNotFoundError
from ..types import Chunk
from . import DEFAULT_COLLECTION, FIELDS, K1, B, Build, QueryKey, StoreInfo, Tokens, query_key, unique_terms
from .postgres_sql import BM25_ALL_SQL, BM25_ROWS_SQL, BM25_TOP_SQL, SCHEMA, TABLES, has_impact
from .postgres_sql import connect as _connect
from .postgres_sql import safe as _safe

logger = logging.getLogger(__name__)

PER_TERM = 1000  # postings read per query term in a BM25 search
RESCORE = 200  # candidates scored exactly


class PostgresStore:
    """One collection in a PostgreSQL database. Thread-safe (one connection each way, locked)."""

    def __init__(
        self, url: str, collection: str = DEFAULT_COLLECTION, read_url: str = "", writable: bool = False
    ) -> None:
        self.url, self.collection = url, collection
        self.read_url = "" if writable else read_url
        self._lock = threading.Lock()
        self._w: Any = None
        self._r: Any = None
        self._cid: int | None = None
        self._last: tuple[QueryKey, dict[int, float]] | None = None
        self._impact: bool | None = None

    # connections ------------------------------------------------------------------------------

    @property
    def w(self) -> Any:
        if self._w is None:
            self._w = _connect(self.url)
            with self._w.transaction():
                self._w.execute("SELECT pg_advisory_xact_lock(7474)")  # one schema creator at a time
                self._w.execute(SCHEMA)
        return self._w

    @property
    def r(self) -> Any:
        if not self.read_url:
            return self.w
        if self._r is None:
            self._r = _connect(self.read_url)
        return self._r

    def close(self) -> None:
        for c in (self._w, self._r):
            if c is not None:
                c.close()
        self._w = self._r = None

    def _row(self, conn: Any) -> tuple[Any, ...] | None:
        return conn.execute(
            "SELECT id, embedder, dim, chunk_tokens, overlap_sentences, calibration, n_chunks "
            "FROM rag_collections WHERE name = %s",
            (self.collection,),
        ).fetchone()

    def _id(self, conn: Any | None = None) -> int:
        if self._cid is None:
            row = self._row(conn or self.r)
            if row is None:
                raise IndexNotFoundError(
                    f"no collection {self.collection!r} in {_safe(self.url)} — build it with: "
                    f"rag index <folder> --collection {self.collection}"
                )
            self._cid = int(row[0])
        return self._cid

    def _sql(self, text: str, **kw: Any) -> str:
        return text.format(id=self._id(), **kw)

    # reading ----------------------------------------------------------------------------------

    def build(self) -> Build | None:
        with self._lock:
            row = self._row(self.r)
        return None if row is None else Build(row[1], row[2], row[3], row[4], dict(row[5]))

    def files(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._row(self.w) is None:
                return {}
            rows = self.w.execute(
                "SELECT doc_id, sha256, title, chunks FROM rag_files WHERE collection = %s",
                (self._id(self.w),),
            ).fetchall()
        return {d: {"sha256": s, "title": t, "chunks": n} for d, s, t, n in rows}

    def dense_search(self, qv: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._lock:
            rows = self.r.execute(
                self._sql(
                    "SELECT id, -(embedding <#> %s) FROM rag_chunks_{id} ORDER BY embedding <#> %s LIMIT %s"
                ),
                (np.asarray(qv, np.float32), np.asarray(qv, np.float32), k),
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _bm25(
        self, query: Tokens, rows: list[int] | None, k: int | None, exhaustive: bool = False
    ) -> list[tuple[int, float]]:
        f, t, n = [], [], []
        for fi, name in enumerate(FIELDS):
            for term, count in unique_terms(query.get(name) or []).items():
                f.append(fi)
                t.append(term)
                n.append(count)
        if not t:
            return []
        exhaustive = exhaustive or not self._has_impact()
        sql = BM25_ROWS_SQL if rows is not None else BM25_ALL_SQL if exhaustive else BM25_TOP_SQL
        args = {
            "f": f,
            "t": t,
            "n": n,
            "cid": self._id(),
            "rows": rows,
            "k": k,
            "rescore": max(RESCORE, k or 0),
            "per_term": PER_TERM,
        }
        with self._lock:
            out = self.r.execute(sql.format(id=self._id()), args)
            return [(int(i), float(s)) for i, s in out.fetchall()]

    def _has_impact(self) -> bool:
        """Collections written before postings had an impact are searched without pruning."""
        if self._impact is None:
            with self._lock:
                self._impact = has_impact(self.r, self._id())
            if not self._impact:
                logger.warning(
                    "collection %s was written by an older version: BM25 reads whole posting lists "
                    "(slow on large collections); rebuild it with: rag index <folder> --collection %s",
                    self.collection,
                    self.collection,
                )
        return self._impact

    def sparse_search(self, query: Tokens, k: int, exhaustive: bool = False) -> list[tuple[int, float]]:
        """The ``k`` best chunks by BM25 (pruned as the module says; ``exhaustive`` sums every posting)."""
        found = [(i, s) for i, s in self._bm25(query, None, k, exhaustive) if s > 0]
        self._last = (query_key(query), dict(found))  # scores() of these candidates need no second pass
        return found

    def scores(
        self, rows: list[int], qv: np.ndarray | None, query: Tokens | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        dense = sparse = None
        if qv is not None:
            with self._lock:
                got = dict(
                    self.r.execute(
                        self._sql("SELECT id, -(embedding <#> %s) FROM rag_chunks_{id} WHERE id = ANY(%s)"),
                        (np.asarray(qv, np.float32), rows),
                    ).fetchall()
                )
            dense = np.array([got.get(r, 0.0) for r in rows], np.float32)
        if query is not None:
            last = self._last
            by_row = dict(last[1]) if last is not None and last[0] == query_key(query) else {}
            missing = [r for r in rows if r not in by_row]
            if missing:
                by_row.update(self._bm25(query, missing, None))
            sparse = np.array([by_row.get(r, 0.0) for r in rows], np.float32)
        return dense, sparse

    def chunks(self, rows: list[int]) -> list[Chunk]:
        with self._lock:
            got = dict(
                self.r.execute(self._sql("SELECT id, chunk FROM rag_chunks_{id} WHERE id = ANY(%s)"), (rows,))
            )
        out = []
        for r in rows:
            raw = dict(got[r])
            raw["spans"] = [tuple(s) for s in raw["spans"]]
            out.append(Chunk(**raw))
        return out

    def info(self) -> StoreInfo:
        b = self.build()
        if b is None:
            self._id()  # raises IndexNotFoundError, saying how to build
            raise AssertionError
        with self._lock:
            cid = self._id()
            files, chunks = self.r.execute(
                "SELECT count(*), COALESCE(sum(chunks), 0) FROM rag_files WHERE collection = %s", (cid,)
            ).fetchone()
            size = self.r.execute(
                "SELECT sum(pg_total_relation_size(c)) FROM unnest(%s::regclass[]) c",
                ([f"rag_chunks_{cid}", f"rag_postings_{cid}", f"rag_terms_{cid}"],),
            ).fetchone()[0]
        return StoreInfo(
            self.collection,
            b.embedder,
            b.dim,
            int(files),
            int(chunks),
            int(size or 0),
            _safe(self.url),
            "hnsw",
        )

    # writing ----------------------------------------------------------------------------------

    def begin(self, build: Build) -> None:
        """Create the collection, or empty it when it was made with another embedder or chunking."""
        with self._lock:
            row = self._row(self.w)
            same = row is not None and tuple(row[1:5]) == (
                build.embedder,
                build.dim,
                build.chunk_tokens,
                build.overlap_sentences,
            )
            if same and row is not None:
                self._upgrade(int(row[0]))
                return
            with self.w.transaction():
                if row is not None:
                    logger.info("collection %s: %s → %s, emptied", self.collection, row[1], build.embedder)
                    self._drop_tables(int(row[0]))
                    self.w.execute("DELETE FROM rag_collections WHERE id = %s", (row[0],))
                cid = self.w.execute(
                    "INSERT INTO rag_collections (name, embedder, dim, chunk_tokens, overlap_sentences,"
                    " calibration) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (
                        self.collection,
                        build.embedder,
                        build.dim,
                        build.chunk_tokens,
                        build.overlap_sentences,
                        json.dumps(build.calibration),
                    ),
                ).fetchone()[0]
                self.w.execute(TABLES.format(id=int(cid), dim=int(build.dim)))
            self._cid = int(cid)
            self._impact = True

    def _upgrade(self, cid: int) -> None:
        """Give postings written before impacts existed theirs, so that searches can be pruned."""
        if has_impact(self.w, cid):
            return
        logger.info("collection %s: computing BM25 impacts of its postings (once)", self.collection)
        with self.w.transaction():
            self.w.execute(
                f"""ALTER TABLE rag_postings_{cid} ADD COLUMN impact real;
                UPDATE rag_postings_{cid} p SET impact = p.tf / (p.tf + {K1} * (1 - {B} + {B} * p.dl /
                  GREATEST(CASE WHEN p.field = 0 THEN c.len_norm ELSE c.len_fold END::float8
                           / GREATEST(c.n_chunks, 1), 1)))
                FROM rag_collections c WHERE c.id = {cid};
                ALTER TABLE rag_postings_{cid} ALTER COLUMN impact SET NOT NULL;
                CREATE INDEX ON rag_postings_{cid} (field, term, impact DESC) INCLUDE (chunk)"""
            )
        self._impact = None

    def _drop_tables(self, cid: int) -> None:
        self.w.execute(f"DROP TABLE IF EXISTS rag_chunks_{cid}, rag_postings_{cid}, rag_terms_{cid}")

    def add(
        self,
        chunks: list[Chunk],
        vectors: np.ndarray,
        toks: list[Tokens],
        files: dict[str, dict[str, Any]],
        build: Build,
    ) -> None:
        self.begin(build)
        with self._lock, self.w.transaction():
            cid = self._id(self.w)
            ids = sorted(
                r[0]
                for r in self.w.execute(
                    f"SELECT nextval(pg_get_serial_sequence('rag_chunks_{cid}', 'id')) FROM generate_series(1, %s)",
                    (len(chunks),),
                )
            )
            with self.w.cursor().copy(
                f"COPY rag_chunks_{cid} (id, doc_id, chunk, embedding, len_norm, len_fold) FROM STDIN"
            ) as cp:
                for i, c, v, t in zip(ids, chunks, vectors, toks):
                    vec = "[" + ",".join(map(repr, np.asarray(v, np.float32).tolist())) + "]"
                    cp.write_row(
                        (
                            i,
                            c.doc_id,
                            json.dumps(asdict(c), ensure_ascii=False),
                            vec,
                            len(t["norm"]),
                            len(t["fold"]),
                        )
                    )
            df: dict[tuple[int, str], int] = {}
            avgdl = self._avgdl(cid, toks)
            with self.w.cursor().copy(
                f"COPY rag_postings_{cid} (field, term, chunk, tf, dl, impact) FROM STDIN"
            ) as cp:
                for i, t in zip(ids, toks):
                    for fi, name in enumerate(FIELDS):
                        dl = len(t[name])
                        norm = K1 * (1 - B + B * dl / avgdl[fi])
                        for term, tf in unique_terms(t[name]).items():
                            cp.write_row((fi, term, i, tf, dl, tf / (tf + norm)))
                            df[(fi, term)] = df.get((fi, term), 0) + 1
            keys = list(df)
            self.w.execute(
                f"INSERT INTO rag_terms_{cid} SELECT * FROM unnest(%s::int2[], %s::text[], %s::int4[]) "
                f"ON CONFLICT (field, term) DO UPDATE SET df = rag_terms_{cid}.df + EXCLUDED.df",
                ([k[0] for k in keys], [k[1] for k in keys], [df[k] for k in keys]),
            )
            self.w.execute(
                "UPDATE rag_collections SET n_chunks = n_chunks + %s, len_norm = len_norm + %s, "
                "len_fold = len_fold + %s WHERE id = %s",
                (len(chunks), sum(len(t["norm"]) for t in toks), sum(len(t["fold"]) for t in toks), cid),
            )
            for doc_id, meta in files.items():
                self.w.execute(
                    "INSERT INTO rag_files VALUES (%s, %s, %s, %s, %s) ON CONFLICT (collection, doc_id) DO "
                    "UPDATE SET sha256 = EXCLUDED.sha256, title = EXCLUDED.title, chunks = EXCLUDED.chunks",
                    (cid, doc_id, meta["sha256"], meta["title"], meta["chunks"]),
                )

    def _avgdl(self, cid: int, toks: list[Tokens]) -> tuple[float, float]:
        """Average chunk length per field once this batch is in (for the postings' impact)."""
        n, ln, lf = self.w.execute(
            "SELECT n_chunks, len_norm, len_fold FROM rag_collections WHERE id = %s", (cid,)
        ).fetchone()
        n += len(toks)
        return (
            max((ln + sum(len(t["norm"]) for t in toks)) / max(n, 1), 1.0),
            max((lf + sum(len(t["fold"]) for t in toks)) / max(n, 1), 1.0),
        )

    def delete_file(self, doc_id: str) -> None:
        with self._lock, self.w.transaction():
            cid = self._id(self.w)
            self.w.execute(
                f"""WITH gone AS (DELETE FROM rag_postings_{cid} p USING rag_chunks_{cid} c
                      WHERE p.chunk = c.id AND c.doc_id = %s RETURNING p.field, p.term)
                    UPDATE rag_terms_{cid} t SET df = t.df - g.n
                    FROM (SELECT field, term, count(*) AS n FROM gone GROUP BY 1, 2) g
                    WHERE t.field = g.field AND t.term = g.term""",
                (doc_id,),
            )
            self.w.execute(f"DELETE FROM rag_terms_{cid} WHERE df <= 0")
            n, ln, lf = self.w.execute(
                f"WITH gone AS (DELETE FROM rag_chunks_{cid} WHERE doc_id = %s RETURNING len_norm, len_fold) "
                "SELECT count(*), COALESCE(sum(len_norm), 0), COALESCE(sum(len_fold), 0) FROM gone",
                (doc_id,),
            ).fetchone()
            self.w.execute(
                "UPDATE rag_collections SET n_chunks = n_chunks - %s, len_norm = len_norm - %s, "
                "len_fold = len_fold - %s WHERE id = %s",
                (n, ln, lf, cid),
            )
            self.w.execute("DELETE FROM rag_files WHERE collection = %s AND doc_id = %s", (cid, doc_id))

    def commit(self) -> None:
        """Nothing to do: every add and delete was its own transaction."""

    # collections ------------------------------------------------------------------------------

    @classmethod
    def list_all(cls, url: str) -> list[StoreInfo]:
        conn = _connect(url)
        try:
            conn.execute(SCHEMA)
            names = [r[0] for r in conn.execute("SELECT name FROM rag_collections ORDER BY name")]
        finally:
            conn.close()
        out = []
        for name in names:
            st = cls(url, name)
            out.append(st.info())
            st.close()
        return out

    @classmethod
    def drop(cls, url: str, name: str) -> None:
        st = cls(url, name, writable=True)
        try:
            with st._lock, st.w.transaction():
                row = st._row(st.w)
                if row is None:
                    raise IndexNotFoundError(f"no collection {name!r} in {_safe(url)} — see: rag collections")
                st._drop_tables(int(row[0]))
                st.w.execute("DELETE FROM rag_collections WHERE id = %s", (row[0],))
        finally:
            st.close()

    @classmethod
    def vacuum(cls, url: str, name: str) -> None:
        """VACUUM ANALYZE a collection's tables (fresh statistics, and index-only scans of postings)."""
        st = cls(url, name, writable=True)
        try:
            cid = st._id(st.w)
            for table in ("rag_chunks", "rag_postings", "rag_terms"):
                st.w.execute(f"VACUUM (ANALYZE) {table}_{cid}")
        finally:
            st.close()
