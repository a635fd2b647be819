"""The HTTP API's errors: JSON in OpenAI's shape (``{"error": {...}}``) with a status that says
what went wrong, so OpenAI's clients raise the matching exception."""

from __future__ import annotations

from typing import Any

from .collections import CollectionExistsError
from .errors import EmptyQuestionError, MissingDependencyError, ModelLoadError, RagError
from .scheduler import QueueFullError


class UnknownCollectionError(RagError, LookupError):
    """No collection of that name."""


class InvalidCollectionNameError(RagError, ValueError):
    """A collection name that cannot be one (upper case, a path, too long)."""


class DocumentNotFoundError(RagError, LookupError):
    """No document of that name in the collection."""


class ReadOnlyError(RagError, PermissionError):
    """The document or collection cannot be changed through the API."""


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "code": self.code, "param": self.param}}


# (exception, status, type, code, param), the first match wins
_MAPPED: list[tuple[type[Exception], int, str, str | None, str | None]] = [
    (EmptyQuestionError, 400, "invalid_request_error", "empty_question", "messages"),
    (UnknownCollectionError, 404, "invalid_request_error", "collection_not_found", None),
    (InvalidCollectionNameError, 400, "invalid_request_error", "invalid_collection_name", None),
    (DocumentNotFoundError, 404, "invalid_request_error", "document_not_found", "document"),
    (ReadOnlyError, 403, "permission_error", "read_only", None),
    (CollectionExistsError, 409, "invalid_request_error", "collection_exists", "name"),
    (ModelLoadError, 503, "server_error", "model_unavailable", None),
    (MissingDependencyError, 503, "server_error", "model_unavailable", None),
    (RagError, 400, "invalid_request_error", None, None),
]


def as_api_error(exc: Exception) -> ApiError:
    """The API's answer to an exception raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, QueueFullError):
        return ApiError(
            429, str(exc), "rate_limit_error", "queue_full", headers={"Retry-After": str(exc.retry_after)}
        )
    for kind, status, typ, code, param in _MAPPED:
        if isinstance(exc, kind):
            return ApiError(status, str(exc), typ, code, param)
    return ApiError(500, "internal error — see the server log", "server_error")
