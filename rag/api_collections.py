"""The named document sets the HTTP API serves.

There is one for now, ``default``: the corpus plus the documents added through the API, which live
in an upload workspace of their own (see ``rag/uploads.py``) until the last one is deleted. Names
are part of every URL (``/v1/collections/{name}/documents``, ``model`` in chat requests) so more
collections can be added without changing the API.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .api_models import DEFAULT_COLLECTION
from .errors import RagError
from .ingest import list_files
from .pipeline import RAG
from .uploads import UploadReport, Workspace


class UnknownCollectionError(RagError, LookupError):
    """No collection of that name."""


@dataclass
class DocumentInfo:
    name: str
    origin: Literal["corpus", "upload"]
    bytes: int


def _workspace_id(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"rag-vi:collection:{name}").hex


class Collections:
    """Collection name → the RAG that answers from it. Document changes run one at a time."""

    def __init__(self, rag: RAG) -> None:
        self.base = rag
        self._spaces = {DEFAULT_COLLECTION: Workspace(rag.settings, _workspace_id(DEFAULT_COLLECTION))}
        self._rags: dict[str, RAG] = {}
        self._lock = threading.Lock()
        self._writing = threading.Lock()

    def names(self) -> list[str]:
        return list(self._spaces)

    def _space(self, name: str) -> Workspace:
        if name not in self._spaces:
            raise UnknownCollectionError(
                f"no collection named {name!r}; the collections are: {', '.join(self._spaces)}"
            )
        return self._spaces[name]

    def get(self, name: str | None) -> RAG:
        """The RAG for ``name`` (empty: the default collection)."""
        name = name or DEFAULT_COLLECTION
        ws = self._space(name)
        with self._lock:
            if name not in self._rags:
                # the corpus and the added documents are searched together and fused (never copied)
                self._rags[name] = (
                    self.base.for_collection(None, str(ws.index_dir)) if ws.has_uploads else self.base
                )
            return self._rags[name]

    def documents(self, name: str) -> list[DocumentInfo]:
        ws = self._space(name)
        corpus = Path(self.base.settings.corpus_dir)
        out = [
            DocumentInfo(p.relative_to(corpus).as_posix(), "corpus", p.stat().st_size)
            for p in (list_files(corpus) if corpus.is_dir() else [])
        ]
        out += [DocumentInfo(n, "upload", (ws.docs / n).stat().st_size) for n in ws.uploaded()]
        return out

    def add(self, name: str, files: list[str | Path]) -> tuple[UploadReport, int]:
        """Add files (checked and indexed as chat uploads are); returns the report and the
        number of passages in the collection afterwards."""
        ws = self._space(name)
        with self._writing:
            report = ws.add(files, self.base.embedder)
            self._forget(name)
            return report, sum(st.info().chunks for st in self.get(name).retriever.stores)

    def remove(self, name: str, document: str) -> None:
        ws = self._space(name)
        with self._writing:
            ws.remove(document, self.base.embedder)
            self._forget(name)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._rags.pop(name, None)
