"""One answer for the HTTP API: queued for the LLM, generated in a worker thread, streamed to the
event loop. The loop never blocks on the model, so retrieval-only requests are served meanwhile."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from .api_models import AnswerExtras, ChatCompletionChunk, ChunkChoice, Delta
from .errors import RagError
from .pipeline import RAG
from .scheduler import FairQueue, Ticket
from .types import Answer

logger = logging.getLogger(__name__)

POLL_S = 1.0  # how often a waiting request reports its place in the queue


class Generation:
    """Waits for its turn, then runs ``rag.stream`` in its own thread. Events, in order:
    ``("position", int)`` while waiting, ``("delta", str)`` per piece of text, then
    ``("answer", Answer)`` or ``("error", Exception)``, and always ``("end", None)``."""

    def __init__(
        self,
        queue: FairQueue,
        ticket: Ticket,
        rag: RAG,
        question: str,
        history: list[tuple[str, str]],
    ) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self._queue = queue
        self._ticket = ticket
        self._rag = rag
        self._question = question
        self._history = history
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"answer-{ticket.client}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop generating (the client went away) and give the slot to the next request."""
        self._cancelled.set()

    def _put(self, kind: str, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: the server is shutting down
            self._cancelled.set()

    def _run(self) -> None:
        try:
            last = -1
            while not self._queue.wait(self._ticket, 0.05 if last < 0 else POLL_S):
                if self._cancelled.is_set():
                    return
                pos = self._queue.position(self._ticket)
                if pos != last:
                    self._put("position", pos)
                    last = pos
            if self._cancelled.is_set():
                return
            stream = self._rag.stream(self._question, self._history)
            pieces = iter(stream)
            try:
                for delta in pieces:
                    if self._cancelled.is_set():
                        return
                    self._put("delta", delta)
            finally:
                pieces.close()  # type: ignore[attr-defined]  # a generator: stops the model at once
            self._ticket.tokens = stream.answer.timings.tokens
            self._put("answer", stream.answer)
        except Exception as exc:  # noqa: BLE001 - reported to the client, logged here
            if isinstance(exc, RagError):
                logger.warning("answer failed: %s", exc)
            else:
                logger.exception("answer failed")
            self._put("error", exc)
        finally:
            self._queue.release(self._ticket)
            self._put("end", None)

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        while True:
            kind, value = await self._events.get()
            if kind == "end":
                return
            yield kind, value

    async def result(self) -> tuple[str, Answer]:
        """The streamed text and the checked answer; raises the generation's error."""
        text = ""
        async for kind, value in self.events():
            if kind == "delta":
                text += value
            elif kind == "answer":
                return text, value
            elif kind == "error":
                raise value
        raise RuntimeError("the answer ended without a result")

    # ------------------------------------------------------------ server-sent events
    def _chunk(self, model: str, delta: Delta, finish: bool = False, **extra: Any) -> str:
        chunk = ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason="stop" if finish else None)],
            **extra,
        )
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    async def sse(self, model: str, error_body: Any) -> AsyncIterator[str]:
        """OpenAI's stream format: a role chunk, content chunks, a last chunk with the checked
        answer and its citations, then ``[DONE]``. A waiting request gets SSE comments with its
        place in the queue (clients ignore comments)."""
        try:
            yield self._chunk(model, Delta(role="assistant", content=""))
            async for kind, value in self.events():
                if kind == "position":
                    yield f": queue position {value}\n\n"
                elif kind == "delta":
                    yield self._chunk(model, Delta(content=value))
                elif kind == "answer":
                    extras = AnswerExtras.of(value).model_dump()
                    yield self._chunk(model, Delta(), finish=True, answer=value.text, **extras)
                elif kind == "error":
                    yield f"data: {json.dumps(error_body(value), ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            self.cancel()
