"""The PostgreSQL store's SQL: schema, per-collection tables, BM25 queries, and connecting."""

from __future__ import annotations

from typing import Any

from ..errors import MissingDependencyError, StoreError
from . import K1, B

EF_SEARCH = 128
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS rag_collections (
  id serial PRIMARY KEY, name text UNIQUE NOT NULL, embedder text NOT NULL, dim int NOT NULL,
  chunk_tokens int NOT NULL, overlap_sentences int NOT NULL, calibration jsonb NOT NULL DEFAULT '{}',
  n_chunks bigint NOT NULL DEFAULT 0, len_norm bigint NOT NULL DEFAULT 0, len_fold bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rag_files (
  collection int NOT NULL REFERENCES rag_collections(id) ON DELETE CASCADE, doc_id text NOT NULL,
  sha256 text NOT NULL, title text NOT NULL, chunks int NOT NULL, PRIMARY KEY (collection, doc_id));
"""
TABLES = """
CREATE TABLE rag_chunks_{id} (id bigserial PRIMARY KEY, doc_id text NOT NULL, chunk jsonb NOT NULL,
  embedding vector({dim}) NOT NULL, len_norm int NOT NULL, len_fold int NOT NULL);
CREATE INDEX ON rag_chunks_{id} (doc_id);
CREATE INDEX ON rag_chunks_{id} USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 64);
CREATE TABLE rag_postings_{id} (field smallint NOT NULL, term text NOT NULL, chunk bigint NOT NULL,
  tf int NOT NULL, dl int NOT NULL, impact real NOT NULL, PRIMARY KEY (field, term, chunk));
CREATE INDEX ON rag_postings_{id} (chunk);
CREATE INDEX ON rag_postings_{id} (field, term, impact DESC) INCLUDE (chunk);
CREATE TABLE rag_terms_{id} (field smallint NOT NULL, term text NOT NULL, df int NOT NULL,
  PRIMARY KEY (field, term));
"""
# BM25 exactly as bm25s ("lucene"): idf = ln(1 + (N - df + .5) / (df + .5)),
# tf part = tf / (tf + k1 (1 - b + b dl / avgdl)); a query term counts as often as it occurs.
_WEIGHTS = """
WITH q(field, term, qn) AS (SELECT * FROM unnest(%(f)s::int2[], %(t)s::text[], %(n)s::int4[])),
st AS (SELECT n_chunks::float8 AS n, len_norm::float8 / GREATEST(n_chunks, 1) AS a0,
              len_fold::float8 / GREATEST(n_chunks, 1) AS a1 FROM rag_collections WHERE id = %(cid)s),
w AS MATERIALIZED (SELECT q.field, q.term, q.qn * ln(1 + (st.n - t.df + 0.5) / (t.df + 0.5)) AS idf,
             CASE WHEN q.field = 0 THEN st.a0 ELSE st.a1 END AS avgdl
      FROM q JOIN rag_terms_{id} t USING (field, term), st)"""
_EXACT = f"SUM(w.idf * p.tf / (p.tf + {K1} * (1 - {B} + {B} * p.dl / w.avgdl)))"
# the scores of given chunks (candidates found by the dense search)
BM25_ROWS_SQL = f"""{_WEIGHTS}
SELECT p.chunk, {_EXACT} FROM w JOIN rag_postings_{{id}} p USING (field, term)
WHERE p.chunk = ANY(%(rows)s) GROUP BY p.chunk
"""
# the best chunks: candidates from each term's highest-impact postings, then scored exactly
BM25_TOP_SQL = f"""{_WEIGHTS},
cand AS MATERIALIZED (SELECT c.chunk FROM w CROSS JOIN LATERAL (
           SELECT p.chunk, p.impact FROM rag_postings_{{id}} p WHERE p.field = w.field AND p.term = w.term
           ORDER BY p.impact DESC LIMIT %(per_term)s) c
         GROUP BY c.chunk ORDER BY SUM(w.idf * c.impact) DESC LIMIT %(rescore)s)
SELECT p.chunk, {_EXACT} AS s FROM cand JOIN rag_postings_{{id}} p ON p.chunk = cand.chunk
JOIN w ON p.field = w.field AND p.term = w.term
GROUP BY p.chunk ORDER BY s DESC, p.chunk LIMIT %(k)s
"""
# the same without pruning: every posting of every query term (the reference for the benchmark)
BM25_ALL_SQL = f"""{_WEIGHTS}
SELECT p.chunk, {_EXACT} AS s FROM w JOIN rag_postings_{{id}} p USING (field, term)
GROUP BY p.chunk ORDER BY s DESC, p.chunk LIMIT %(k)s
"""


def connect(url: str) -> Any:
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise MissingDependencyError("psycopg and pgvector", "postgres") from exc
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {safe(url)}: {exc}. Check RAG_STORE.") from exc
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
    conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
    return conn


def safe(url: str) -> str:
    """The URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    return f"{head.split(':', 2)[0]}:…@{tail}" if at else url


def has_impact(conn: Any, cid: int) -> bool:
    """Whether a collection's postings carry their BM25 impact (those written before did not)."""
    row = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = 'impact'",
        (f"rag_postings_{cid}",),
    ).fetchone()
    return row is not None
