"""The PostgreSQL store's SQL: schema, per-collection tables, BM25 rows, and connecting."""

from __future__ import annotations

from typing import Any

from ..errors import MissingDependencyError, StoreError

EF_SEARCH = 128
BAGS = """CREATE TABLE rag_bags_{id} (chunk bigint PRIMARY KEY, dl0 int NOT NULL, dl1 int NOT NULL,
  tids bytea NOT NULL, tfs bytea NOT NULL);"""
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS rag_collections (
  id serial PRIMARY KEY, name text UNIQUE NOT NULL, embedder text NOT NULL, dim int NOT NULL,
  chunk_tokens int NOT NULL, overlap_sentences int NOT NULL, calibration jsonb NOT NULL DEFAULT '{}',
  n_chunks bigint NOT NULL DEFAULT 0, len_norm bigint NOT NULL DEFAULT 0, len_fold bigint NOT NULL DEFAULT 0,
  head_avgdl float8[], heads_upto bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rag_files (
  collection int NOT NULL REFERENCES rag_collections(id) ON DELETE CASCADE, doc_id text NOT NULL,
  sha256 text NOT NULL, title text NOT NULL, chunks int NOT NULL, PRIMARY KEY (collection, doc_id));
"""
# databases made before heads existed
HAS_HEAD_COLUMNS = """SELECT 1 FROM information_schema.columns WHERE table_name = 'rag_collections'
AND column_name = 'heads_upto'"""
ADD_HEAD_COLUMNS = """ALTER TABLE rag_collections ADD COLUMN IF NOT EXISTS head_avgdl float8[],
  ADD COLUMN IF NOT EXISTS heads_upto bigint NOT NULL DEFAULT 0"""
TABLES = f"""
CREATE TABLE rag_chunks_{{id}} (id bigserial PRIMARY KEY, doc_id text NOT NULL, chunk jsonb NOT NULL,
  embedding vector({{dim}}) NOT NULL, len_norm int NOT NULL, len_fold int NOT NULL);
CREATE INDEX ON rag_chunks_{{id}} (doc_id);
{BAGS}
CREATE TABLE rag_terms_{{id}} (field smallint NOT NULL, term text NOT NULL, df int NOT NULL,
  tid serial UNIQUE, head_rows bytea NOT NULL DEFAULT ''::bytea, head_imp bytea NOT NULL DEFAULT ''::bytea,
  head_min real NOT NULL DEFAULT -1, PRIMARY KEY (field, term));
"""
# the HNSW index is made once a build's rows are in (far faster than growing it row by row)
HNSW = "CREATE INDEX rag_chunks_{id}_hnsw ON rag_chunks_{id} USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 64)"
HAS_HNSW = "SELECT 1 FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%USING hnsw%%'"
# a collection written with one row per posting (``rag_postings_<id>``) gets bags and term ids
MIGRATE = f"""
ALTER TABLE rag_terms_{{id}} ADD COLUMN tid serial, ADD COLUMN head_rows bytea NOT NULL DEFAULT ''::bytea,
  ADD COLUMN head_imp bytea NOT NULL DEFAULT ''::bytea, ADD COLUMN head_min real NOT NULL DEFAULT -1;
CREATE UNIQUE INDEX ON rag_terms_{{id}} (tid);
{BAGS}
INSERT INTO rag_bags_{{id}}
SELECT c.id, c.len_norm, c.len_fold, string_agg(int4send(t.tid), ''::bytea ORDER BY t.tid),
       string_agg(int2send(p.tf::int2), ''::bytea ORDER BY t.tid)
FROM rag_chunks_{{id}} c JOIN rag_postings_{{id}} p ON p.chunk = c.id
JOIN rag_terms_{{id}} t ON t.field = p.field AND t.term = p.term GROUP BY c.id;
DROP TABLE rag_postings_{{id}};
"""
# a query's terms: field, id, document frequency, occurrences in the query (and the collection's
# statistics, in the same snapshot), with the terms' heads when candidates are wanted
TERMS_SQL = """
SELECT t.field, t.tid, t.df, q.qn, s.n_chunks, s.len_norm, s.len_fold{heads}
FROM unnest(%(f)s::int2[], %(t)s::text[], %(n)s::int4[]) q(field, term, qn)
JOIN rag_terms_{{id}} t USING (field, term)
CROSS JOIN (SELECT n_chunks, len_norm, len_fold FROM rag_collections WHERE id = %(cid)s) s
"""
BAGS_SQL = "SELECT chunk, dl0, dl1, tids, tfs FROM rag_bags_{id} WHERE chunk = ANY(%s)"
UPSERT_TERMS = """
INSERT INTO rag_terms_{id} (field, term, df) SELECT * FROM unnest(%s::int2[], %s::text[], %s::int4[])
ON CONFLICT (field, term) DO UPDATE SET df = rag_terms_{id}.df + EXCLUDED.df
RETURNING field, term, tid
"""
SET_HEADS = """
UPDATE rag_terms_{id} t SET head_rows = u.r, head_imp = u.i, head_min = u.m
FROM unnest(%s::int4[], %s::bytea[], %s::bytea[], %s::real[]) u(tid, r, i, m) WHERE t.tid = u.tid
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
