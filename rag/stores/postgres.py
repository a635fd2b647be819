"""The scale-out store: PostgreSQL + pgvector (``RAG_STORE=postgresql://…``).

Tables: ``rag_collections`` (one row a collection: its build and BM25 statistics), ``rag_files``,
and per collection ``rag_chunks_<id>`` (chunk, vector with an HNSW index, token counts),
``rag_bags_<id>`` (each chunk's terms and counts) and ``rag_terms_<id>`` (each term's id, document
frequency and best postings). BM25 is computed from these with exactly the formula bm25s uses,
over the project's own Vietnamese tokens, so sparse scores match the FAISS store; how a search
finds its candidates is in ``postgres_bm25.py``.

Every ``add`` and ``delete_file`` is one transaction: a killed build leaves whole files or none.
The HNSW index is made at ``commit`` when the collection has none (a first build fills the table,
then indexes it once). Searches can go to a streaming read replica (``RAG_STORE_READ``); writes go
to the primary.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from typing import Any

import numpy as np

from ..errors import IndexNotFoundError, StoreError
from ..types import Chunk
from . import DEFAULT_COLLECTION, FIELDS, Build, QueryKey, StoreInfo, Tokens, query_key, unique_terms
from . import postgres_bm25 as bm25
from . import postgres_terms as terms
from .postgres_sql import (
    ADD_HEAD_COLUMNS,
    BAGS_SQL,
    HAS_HEAD_COLUMNS,
    HAS_HNSW,
    HNSW,
    SCHEMA,
    TABLES,
    TERMS_SQL,
)
from .postgres_sql import connect as _connect
from .postgres_sql import safe as _safe

logger = logging.getLogger(__name__)

RESCORE = 200  # candidates of a BM25 search scored exactly
INDEX_MEM_MB = 1024  # maintenance_work_mem for building the HNSW index, unless the server allows more


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

    # connections ------------------------------------------------------------------------------

    @property
    def w(self) -> Any:
        if self._w is None:
            self._w = _connect(self.url)
            with self._w.transaction():
                self._w.execute("SELECT pg_advisory_xact_lock(7474)")  # one schema creator at a time
                self._w.execute(SCHEMA)
                if self._w.execute(HAS_HEAD_COLUMNS).fetchone() is None:
                    self._w.execute(ADD_HEAD_COLUMNS)
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
            self._layout(int(row[0]), conn or self.r)
            self._cid = int(row[0])
        return self._cid

    def _layout(self, cid: int, conn: Any) -> None:
        """A collection written with one row per posting (an earlier version) is migrated, once."""
        if conn.execute("SELECT to_regclass(%s)", (f"rag_postings_{cid}",)).fetchone()[0] is None:
            return
        if conn is not self.w:
            raise StoreError(
                f"collection {self.collection!r} was written by an earlier version and must be migrated "
                f"once on the primary: run `rag collections` with RAG_STORE={_safe(self.url)}"
            )
        with self.w.transaction():
            if terms.migrate(self.w, cid):
                logger.info("collection %s: BM25 postings moved to bags and heads", self.collection)

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

    def _terms(self, query: Tokens, heads: bool) -> tuple[bm25.Query | None, list[Any]]:
        """The query's terms as stored (with their heads if asked); ``None`` when none is."""
        f, t, n = [], [], []
        for fi, name in enumerate(FIELDS):
            for term, count in unique_terms(query.get(name) or []).items():
                f.append(fi)
                t.append(term)
                n.append(count)
        if not t:
            return None, []
        sql = TERMS_SQL.format(heads=", t.tid, t.head_rows, t.head_imp" if heads else "")
        with self._lock:
            rows = self.r.execute(  # binary: bytea as is, not as hex
                sql.format(id=self._id()), {"f": f, "t": t, "n": n, "cid": self._id()}, binary=True
            ).fetchall()
        if not rows:
            return None, []
        n_chunks, len_norm, len_fold = rows[0][4:7]
        q = bm25.Query(n_chunks, len_norm, len_fold, [r[:4] for r in rows])
        return q, [r[7:10] for r in rows]

    def _exact(self, q: bm25.Query, rows: list[int]) -> dict[int, float]:
        with self._lock:
            bags = self.r.execute(self._sql(BAGS_SQL), (rows,), binary=True).fetchall()
        return q.score(bags)

    def sparse_search(self, query: Tokens, k: int, exhaustive: bool = False) -> list[tuple[int, float]]:
        """The ``k`` best chunks by BM25 (candidates from the terms' heads; ``exhaustive`` scores all)."""
        if exhaustive:
            found = self.exhaustive([query], k)[0]
        else:
            q, heads = self._terms(query, heads=True)
            found = [] if q is None else bm25.best(self._exact(q, q.candidates(heads, max(RESCORE, k))), k)
        self._last = (query_key(query), dict(found))  # scores() of these candidates need no second pass
        return found

    def exhaustive(self, queries: list[Tokens], k: int) -> list[list[tuple[int, float]]]:
        """Every chunk scored, in one pass for all ``queries`` (what the pruned search is measured against)."""
        qs = [self._terms(q, heads=False)[0] for q in queries]
        best: list[dict[int, float]] = [{} for _ in qs]
        with self._lock, self.r.transaction(), self.r.cursor(name="rag_exhaustive", binary=True) as cur:
            cur.execute(self._sql("SELECT chunk, dl0, dl1, tids, tfs FROM rag_bags_{id}"))
            while batch := cur.fetchmany(5000):
                bags = bm25.Bags(batch)  # decoded once for every query
                for i, q in enumerate(qs):
                    if q is not None:
                        best[i] = dict(bm25.best(best[i] | q.score_decoded(bags), k))
        return [bm25.best(top, k) for top in best]

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
                q, _ = self._terms(query, heads=False)
                by_row.update({r: 0.0 for r in missing} if q is None else self._exact(q, missing))
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
                ([f"rag_chunks_{cid}", f"rag_bags_{cid}", f"rag_terms_{cid}"],),
            ).fetchone()[0]
            hnsw = self.r.execute(HAS_HNSW, (f"rag_chunks_{cid}",)).fetchone() is not None
        return StoreInfo(
            self.collection,
            b.embedder,
            b.dim,
            int(files),
            int(chunks),
            int(size or 0),
            _safe(self.url),
            "hnsw" if hnsw else "exact",
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
                self._id(self.w)
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

    def _drop_tables(self, cid: int) -> None:
        self.w.execute(
            f"DROP TABLE IF EXISTS rag_chunks_{cid}, rag_bags_{cid}, rag_terms_{cid}, rag_postings_{cid}"
        )

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
            self.w.execute("SELECT pg_advisory_xact_lock(7476, %s)", (cid,))  # one writer of the heads
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
            terms.add(self.w, cid, ids, toks)
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

    def delete_file(self, doc_id: str) -> None:
        with self._lock, self.w.transaction():
            cid = self._id(self.w)
            self.w.execute("SELECT pg_advisory_xact_lock(7476, %s)", (cid,))
            ids = [
                r[0] for r in self.w.execute(f"SELECT id FROM rag_chunks_{cid} WHERE doc_id = %s", (doc_id,))
            ]
            terms.remove(self.w, cid, ids)
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
        """Merge the added chunks' postings into the terms' heads (what BM25 searches start from), and
        index the vectors when the collection has no HNSW index yet. Adds and deletes were each their
        own transaction already: a build killed before its commit is merged by the next one."""
        with self._lock:
            if self._cid is None and self._row(self.w) is None:
                return
            cid = self._id(self.w)
            with self.w.transaction():
                self.w.execute("SELECT pg_advisory_xact_lock(7476, %s)", (cid,))
                if n := terms.update_heads(self.w, cid):
                    logger.info("collection %s: BM25 heads updated with %d chunks", self.collection, n)
            if self.w.execute(HAS_HNSW, (f"rag_chunks_{cid}",)).fetchone() is not None:
                return
            logger.info("collection %s: building the HNSW index of its vectors", self.collection)
            with self.w.transaction():
                mem = self.w.execute(
                    "SELECT setting::bigint * 1024 / 1048576 FROM pg_settings WHERE name = 'maintenance_work_mem'"
                ).fetchone()[0]  # the setting is in kB
                if mem < INDEX_MEM_MB:
                    self.w.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_MEM_MB}MB'")
                self.w.execute(HNSW.format(id=cid))

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
            for table in ("rag_chunks", "rag_bags", "rag_terms"):
                st.w.execute(f"VACUUM (ANALYZE) {table}_{cid}")
        finally:
            st.close()
