"""Errors raised by the library. Each message says what happened and what to do."""

from __future__ import annotations


class RagError(Exception):
    """Base class for every error this package raises on purpose."""


class EmptyCorpusError(RagError):
    """The corpus folder holds no readable document."""


class IndexNotFoundError(RagError):
    """No index where one was expected."""


class IndexMismatchError(RagError):
    """The saved index was built with another embedder or chunking."""


class EmptyQuestionError(RagError, ValueError):
    """The question is empty or only whitespace."""


class ModelLoadError(RagError):
    """A model could not be loaded (missing package, bad file, out of memory)."""


class MissingDependencyError(RagError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed. Install it with: pip install 'rag-vi[{extra}]'")


class QAFileError(RagError, ValueError):
    """A question file is not valid JSONL in the expected format."""


class UploadError(RagError, ValueError):
    """An uploaded document was refused."""


class CollectionError(RagError, ValueError):
    """A collection name is invalid or the collection does not exist."""


class StoreError(RagError):
    """The store (a folder or a PostgreSQL database) cannot be used as configured."""
