"""Hybrid retrieval: dense (FAISS) + BM25 on Vietnamese tokens, fused by reciprocal rank."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import store
from .embed import Embedder
from .errors import MissingDependencyError
from .index import passage_text
from .text import expand_abbreviations, folded_tokens, tokens
from .types import Chunk, Hit

logger = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
RRF_K = 60


class BM25:
    """Two bm25s indexes over the same chunks: normalised tokens and accent-folded tokens."""

    def __init__(self, texts: list[str]) -> None:
        import bm25s

        self._n = len(texts)
        self._norm = bm25s.BM25()
        self._fold = bm25s.BM25()
        self._norm.index([tokens(t) or ["∅"] for t in texts], show_progress=False)
        self._fold.index([folded_tokens(t) or ["∅"] for t in texts], show_progress=False)
        self._lock = threading.Lock()

    def scores(self, query: str) -> np.ndarray:
        q, qf = tokens(query), folded_tokens(query)
        out = np.zeros(self._n, dtype=np.float32)
        with self._lock:  # bm25s keeps per-call state; guard it for concurrent users
            if q:
                out += self._norm.get_scores(q)
            if qf:
                out += self._fold.get_scores(qf)
        return out


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
    """Searches one saved index. Thread-safe for concurrent queries."""

    embedder: Embedder
    chunks: list[Chunk]
    vectors: np.ndarray
    faiss_index: Any
    manifest: store.Manifest
    bm25: BM25
    reranker: CrossEncoderReranker | None = None

    @classmethod
    def load(cls, index_dir: str, embedder: Embedder, reranker: str = "") -> Retriever:
        manifest = store.read_manifest(index_dir)
        store.check_compatible(manifest, embedder.id, index_dir)
        manifest, chunks, vectors, index = store.load(index_dir)
        bm25 = BM25([passage_text(c) for c in chunks])
        rr = CrossEncoderReranker(reranker) if reranker else None
        return cls(embedder, chunks, vectors, index, manifest, bm25, rr)

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid", pool: int = 50) -> list[Hit]:
        """The ``k`` best chunks for ``query``; ``mode`` picks dense-only, BM25-only or both."""
        n = len(self.chunks)
        if n == 0 or not query.strip():
            return []
        q = expand_abbreviations(query)
        pool = min(max(pool, k), n)
        dense_scores: dict[int, float] = {}
        dense_rank: dict[int, int] = {}
        qv = None
        if mode in ("hybrid", "dense"):
            qv = self.embedder.embed_query([q])
            sims, ids = self.faiss_index.search(qv, pool)
            for r, (i, sim) in enumerate(zip(ids[0], sims[0])):
                if i >= 0:
                    dense_scores[int(i)] = float(sim)
                    dense_rank[int(i)] = r
        sparse = self.bm25.scores(q) if mode in ("hybrid", "bm25") else None
        sparse_rank: dict[int, int] = {}
        if sparse is not None:
            order = np.argsort(-sparse, kind="stable")[:pool]
            sparse_rank = {int(i): r for r, i in enumerate(order) if sparse[i] > 0}

        fused: dict[int, float] = {}
        for i, r in dense_rank.items():
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + r + 1)
        for i, r in sparse_rank.items():
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + r + 1)
        ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        if self.reranker is not None and mode == "hybrid":
            cands = [self._hit(i, s, r, qv, dense_scores, sparse) for r, (i, s) in enumerate(ranked[:pool])]
            return self.reranker.rerank(query, cands)[:k]
        return [self._hit(i, s, r, qv, dense_scores, sparse) for r, (i, s) in enumerate(ranked[:k])]

    def _hit(self, i: int, score: float, rank: int, qv: np.ndarray | None, dense: dict[int, float], sparse: np.ndarray | None) -> Hit:
        d = dense.get(i)
        if d is None and qv is not None:
            d = float(self.vectors[i] @ qv[0])  # outside the dense pool: exact cosine
        return Hit(
            chunk=self.chunks[i],
            score=score,
            rank=rank,
            dense=d,
            sparse=float(sparse[i]) if sparse is not None else None,
        )

    def dense_similarity(self, query: str, rows: list[int] | None = None) -> np.ndarray:
        qv = self.embedder.embed_query([expand_abbreviations(query)])[0]
        vecs = self.vectors if rows is None else self.vectors[rows]
        return vecs @ qv


