"""Hybrid retrieval: dense + BM25 on Vietnamese tokens from any Store, fused by score or by rank."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .embed import Embedder, spec_for
from .errors import IndexMismatchError, MissingDependencyError
from .stores import Store, query_tokens
from .text import expand_abbreviations
from .types import Chunk, Hit

logger = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
Fusion = Literal["convex", "rrf"]
RRF_K = 60
DENSE_WEIGHT = 0.5


class CrossEncoderReranker:
    """Optional reranking of the fused candidates with a sentence-transformers cross-encoder."""

    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:
            raise MissingDependencyError("sentence-transformers", "hf") from exc
        self._model = CrossEncoder(model, device="cpu")

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        scores = self._model.predict([(query, h.chunk.text) for h in hits])
        order = np.argsort(-np.asarray(scores))
        out = []
        for rank, i in enumerate(order):
            h = hits[int(i)]
            out.append(Hit(h.chunk, float(scores[int(i)]), rank, h.dense, h.sparse))
        return out


@dataclass
class Retriever:
    """Searches one or more stores (a collection, plus a user's uploads) and fuses the results.

    Thread-safe for concurrent queries. Fusion runs here, in Python, the same for every backend.
    """

    embedder: Embedder
    stores: list[Store]
    reranker: CrossEncoderReranker | None = None

    @classmethod
    def open(cls, stores: list[Store], embedder: Embedder, reranker: str = "") -> Retriever:
        """Check that every store was built with ``embedder``, then search them together."""
        for st in stores:
            check_compatible(st, embedder.id)
        rr = CrossEncoderReranker(reranker) if reranker else None
        return cls(embedder, stores, rr)

    @classmethod
    def load(cls, index_dir: str, embedder: Embedder, reranker: str = "") -> Retriever:
        """A retriever over one FAISS folder."""
        from .stores.faiss import FaissStore

        return cls.open([FaissStore(index_dir)], embedder, reranker)

    def search(
        self, query: str, k: int = 5, mode: Mode = "hybrid", pool: int = 50, fusion: Fusion = "convex"
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``; ``mode`` picks dense-only, BM25-only or both.

        Each store gives its ``pool`` best chunks by cosine and by BM25, with both scores of every
        candidate. Hybrid fusion: ``convex`` (default) mixes min-max normalised cosine and BM25
        scores over all candidates with weight ``DENSE_WEIGHT``; ``rrf`` is reciprocal rank
        fusion. On the project's question set convex fusion gave the best MRR (see BENCHMARKS.md).
        """
        if not query.strip():
            return []
        q = expand_abbreviations(query)
        pool = max(pool, k)
        qv = self.embedder.embed_query([q])[0] if mode in ("hybrid", "dense") else None
        qt = query_tokens(q) if mode in ("hybrid", "bm25") else None
        keys: list[tuple[int, int]] = []
        dense_parts: list[np.ndarray] = []
        sparse_parts: list[np.ndarray] = []
        for si, st in enumerate(self.stores):
            dense_ids = [r for r, _ in st.dense_search(qv, pool)] if qv is not None else []
            sparse_ids = [r for r, _ in st.sparse_search(qt, pool)] if qt is not None else []
            rows = list(dict.fromkeys(dense_ids + sparse_ids))
            if not rows:
                continue
            d, sp = st.scores(rows, qv, qt)
            keys.extend((si, r) for r in rows)
            if d is not None:
                dense_parts.append(d)
            if sp is not None:
                sparse_parts.append(sp)
        if not keys:
            return []
        dense = np.concatenate(dense_parts) if qv is not None else None
        sp = np.concatenate(sparse_parts) if qt is not None else None
        if dense is None or sp is None:
            fused = dense if sp is None else sp
        elif fusion == "rrf":
            fused = _rrf(dense) + _rrf(sp)
        else:
            fused = DENSE_WEIGHT * _minmax(dense) + (1 - DENSE_WEIGHT) * _minmax(sp)
        assert fused is not None
        order = [
            int(j) for j in np.argsort(-fused, kind="stable")[: pool if self.reranker is not None else k]
        ]
        chunks = self._chunks([keys[j] for j in order])
        hits = [
            Hit(
                chunk=chunks[keys[j]],
                score=float(fused[j]),
                rank=r,
                dense=float(dense[j]) if dense is not None else None,
                sparse=float(sp[j]) if sp is not None else None,
            )
            for r, j in enumerate(order)
        ]
        if self.reranker is not None and mode == "hybrid":
            return self.reranker.rerank(query, hits)[:k]
        return hits[:k]

    def _chunks(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], Chunk]:
        out: dict[tuple[int, int], Chunk] = {}
        for si, st in enumerate(self.stores):
            rows = [r for s, r in keys if s == si]
            if rows:
                out.update(zip([(si, r) for r in rows], st.chunks(rows)))
        return out


def check_compatible(st: Store, embedder_id: str) -> None:
    info = st.info()  # raises IndexNotFoundError, saying how to build, when there is nothing
    if info.embedder != embedder_id:
        raise IndexMismatchError(
            f"the index in {info.location} was built with embedder {info.embedder!r}, but "
            f"{embedder_id!r} is configured. Set RAG_EMBEDDER={spec_for(info.embedder)} to use this "
            f"index, or rebuild it with: rag index <corpus folder> --out {info.location}"
            f" (with the same RAG_EMBEDDER)."
        )


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _rrf(x: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(x))
    ranks[np.argsort(-x, kind="stable")] = np.arange(len(x))
    return 1.0 / (RRF_K + ranks + 1)
