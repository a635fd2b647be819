"""The RAG object: retrieve → generate → cite. ``retrieve()`` and ``ask()`` are thin wrappers."""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from .config import Settings
from .embed import Embedder, make_embedder
from .retrieve import Mode, Retriever
from .types import Hit

logger = logging.getLogger(__name__)


class RAG:
    """One configured chatbot: an index, an embedder and (lazily) a generator."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self._lock = threading.Lock()

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or make_embedder(self.settings.embedder)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever.load(self.settings.index_dir, self.embedder, self.settings.reranker)

    def reload(self) -> None:
        """Re-read the index from disk (after documents were added)."""
        with self._lock:
            self.__dict__.pop("retriever", None)

    def retrieve(self, query: str, k: int | None = None, mode: Mode = "hybrid") -> list[Hit]:
        return self.retriever.search(query, k or self.settings.top_k, mode)


_default: RAG | None = None
_default_lock = threading.Lock()


def default_rag() -> RAG:
    """The process-wide RAG built from the environment's settings (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = RAG()
        return _default


def retrieve(query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
    """Ranked passages for ``query`` from the configured index (``RAG_INDEX_DIR``)."""
    return default_rag().retrieve(query, k, mode)
