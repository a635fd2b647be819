"""Where chunks live: a small Store protocol and two backends.

- ``faiss.py`` (the default): FAISS + BM25 postings (``compact.py``) in a folder, for one machine.
- ``postgres.py``: PostgreSQL + pgvector (``RAG_STORE=postgresql://…``), to scale out.

A store keeps, per collection, the chunks, their vectors and their BM25 tokens, and answers
dense and sparse searches. Fusion happens in ``retrieve.py``, the same for every backend.

Row ids are opaque integers that a store gives its chunks; they are valid until the next commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import CollectionError
from ..text import folded_tokens, tokens
from ..types import Chunk

# BM25 runs over two fields of the same text: normalised tokens and accent-folded tokens.
FIELDS = ("norm", "fold")
EMPTY_TOKEN = "∅"  # a chunk with no token still needs a document in the BM25 index
K1, B = 1.5, 0.75  # bm25s' defaults (Lucene's BM25); the PostgreSQL store uses the same
DEFAULT_COLLECTION = "corpus"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

Tokens = dict[str, list[str]]  # field -> tokens


def passage_text(chunk: Chunk) -> str:
    """What the embedder and BM25 read for a chunk: its title, then its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def chunk_tokens(chunk: Chunk) -> Tokens:
    text = passage_text(chunk)
    return {"norm": tokens(text) or [EMPTY_TOKEN], "fold": folded_tokens(text) or [EMPTY_TOKEN]}


def query_tokens(query: str) -> Tokens:
    return {"norm": tokens(query), "fold": folded_tokens(query)}


QueryKey = tuple[tuple[str, ...], ...]


def query_key(query: Tokens) -> QueryKey:
    """A hashable form of a query's tokens: a store keeps its last BM25 search's scores under it,
    and the retriever's ``scores()`` of those candidates then needs no second pass."""
    return tuple(tuple(query.get(f) or ()) for f in FIELDS)


def check_name(name: str) -> str:
    """A collection name: lower-case letters, digits, ``_`` and ``-``; no path parts."""
    if not _NAME.fullmatch(name or ""):
        raise CollectionError(
            f"invalid collection name {name!r}: use 1-63 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit (for example 'ministry-2024')"
        )
    return name


@dataclass
class StoreInfo:
    """What ``rag collections`` shows about one collection."""

    collection: str
    embedder: str
    dim: int
    files: int
    chunks: int
    bytes: int
    location: str
    index_type: str = ""


@dataclass
class Build:
    """How a collection's chunks were made; a store refuses to mix builds."""

    embedder: str
    dim: int
    chunk_tokens: int
    overlap_sentences: int
    calibration: dict[str, float] = field(default_factory=dict)

    def same_chunks(self, other: Build) -> bool:
        """Whether chunks of ``other`` can sit beside these: same embedder and chunking."""
        return (self.embedder, self.chunk_tokens, self.overlap_sentences) == (
            other.embedder,
            other.chunk_tokens,
            other.overlap_sentences,
        )


class Store(Protocol):
    """One collection's chunks, vectors and BM25 postings."""

    def build(self) -> Build | None:
        """How the stored chunks were made (``None`` when the collection is empty or new)."""
        ...

    def begin(self, build: Build) -> None:
        """Prepare to add files made with ``build`` (creates the collection if needed)."""
        ...

    def files(self) -> dict[str, dict[str, Any]]:
        """doc_id -> {sha256, title, chunks} of every stored file (including staged ones)."""
        ...

    def add(
        self,
        chunks: list[Chunk],
        vectors: np.ndarray,
        toks: list[Tokens],
        files: dict[str, dict[str, Any]],
        build: Build,
    ) -> None:
        """Store whole files' chunks durably (a killed process keeps what was added)."""
        ...

    def delete_file(self, doc_id: str) -> None: ...

    def commit(self) -> None:
        """Make the added and deleted files visible to readers, all at once."""
        ...

    def dense_search(self, qv: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(row, cosine) of the ``k`` nearest chunks, best first."""
        ...

    def sparse_search(self, query: Tokens, k: int) -> list[tuple[int, float]]:
        """(row, BM25) of the ``k`` best chunks with a positive score, best first."""
        ...

    def scores(
        self, rows: list[int], qv: np.ndarray | None, query: Tokens | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Exact cosine and BM25 scores of given rows (for the fusion of candidates)."""
        ...

    def chunks(self, rows: list[int]) -> list[Chunk]: ...

    def info(self) -> StoreInfo: ...


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(
    location: str, collection: str = DEFAULT_COLLECTION, read_location: str = "", writable: bool = False
) -> Store:
    """A folder (FAISS) or a ``postgresql://`` URL (with an optional read replica URL)."""
    if is_postgres(location):
        from .postgres import PostgresStore

        return PostgresStore(location, collection, read_url=read_location, writable=writable)
    from .faiss import FaissStore

    return FaissStore(location, collection)


def unique_terms(toks: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in toks:
        counts[t] = counts.get(t, 0) + 1
    return counts
