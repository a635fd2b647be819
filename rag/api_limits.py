"""Request size limits for the API: a body past its limit gets 413 before it is all read."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]


class TooLarge(HTTPException):
    """Raised while the body is read; FastAPI passes HTTP exceptions through to their handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


class BodyLimit:
    """ASGI middleware: bodies of requests under ``prefix`` may not exceed ``limit(path)`` bytes,
    whether they announce a Content-Length or are sent in chunks."""

    def __init__(self, app: Any, limit: Callable[[str], int], prefix: str = "/") -> None:
        self.app = app
        self.limit = limit
        self.prefix = prefix

    async def __call__(
        self, scope: Scope, receive: Callable[[], Any], send: Callable[[Message], Any]
    ) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _error(send, 400, "the Content-Length header is not a number")
                return
            if declared > limit:
                await _error(send, 413, _too_large(limit))
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except TooLarge:
            if not started:
                await _error(send, 413, _too_large(limit))


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than {limit / 2**20:.0f} MB — send less (documents: one file at a time)"
    )


async def _error(send: Callable[[Message], Any], status: int, message: str) -> None:
    kind = "invalid_request_error"
    body = json.dumps(
        {
            "error": {
                "message": message,
                "type": kind,
                "code": "body_too_large" if status == 413 else None,
                "param": None,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
