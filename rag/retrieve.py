"""Hybrid retrieval: dense (FAISS) + BM25 on Vietnamese tokens, fused by score or by rank."""

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
Fusion = Literal["convex", "rrf"]
RRF_K = 60
DENSE_WEIGHT = 0.5


class BM25:
    """Two bm25s indexes over the same chunks: normalised tokens and accent-folded tokens."""

    def __init__(self, texts: list[str]) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import and logs every build
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

    def search(
        self, query: str, k: int = 5, mode: Mode = "hybrid", pool: int = 50, fusion: Fusion = "convex"
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``; ``mode`` picks dense-only, BM25-only or both.

        Hybrid fusion: ``convex`` (default) mixes min-max normalised cosine and BM25 scores over the
        candidate pool with weight ``DENSE_WEIGHT``; ``rrf`` is reciprocal rank fusion. On the
        project's question set convex fusion gave the best MRR (see BENCHMARKS.md).
        """
        n = len(self.chunks)
        if n == 0 or not query.strip():
            return []
        q = expand_abbreviations(query)
        pool = min(max(pool, k), n)
        qv = None
        dense_ids: list[int] = []
        if mode in ("hybrid", "dense"):
            qv = self.embedder.embed_query([q])[0]
            _, ids = self.faiss_index.search(qv[None, :], pool)
            dense_ids = [int(i) for i in ids[0] if i >= 0]
        sparse = self.bm25.scores(q) if mode in ("hybrid", "bm25") else None
        sparse_ids: list[int] = []
        if sparse is not None:
            order = np.argsort(-sparse, kind="stable")[:pool]
            sparse_ids = [int(i) for i in order if sparse[i] > 0]

        cands = list(dict.fromkeys(dense_ids + sparse_ids))
        if not cands:
            return []
        dense = self.vectors[cands] @ qv if qv is not None else None
        sp = sparse[cands] if sparse is not None else None
        if dense is None or sp is None:
            fused = dense if sp is None else sp
        elif fusion == "rrf":
            fused = _rrf(dense) + _rrf(sp)
        else:
            fused = DENSE_WEIGHT * _minmax(dense) + (1 - DENSE_WEIGHT) * _minmax(sp)
        assert fused is not None
        order = np.argsort(-fused, kind="stable")
        hits = [
            Hit(
                chunk=self.chunks[cands[j]],
                score=float(fused[j]),
                rank=r,
                dense=float(dense[j]) if dense is not None else None,
                sparse=float(sp[j]) if sp is not None else None,
            )
            for r, j in enumerate(order[: pool if self.reranker is not None else k])
        ]
        if self.reranker is not None and mode == "hybrid":
            return self.reranker.rerank(query, hits)[:k]
        return hits[:k]


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _rrf(x: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(x))
    ranks[np.argsort(-x, kind="stable")] = np.arange(len(x))
    return 1.0 / (RRF_K + ranks + 1)
