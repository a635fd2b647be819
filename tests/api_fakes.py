"""A generator the API tests control, and a live server on a free port (127.0.0.1:8700-8799)."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.generators.extractive import ExtractiveGenerator
from rag.pipeline import RAG
from rag.types import Hit

from .conftest import INDEX

PORTS = range(8700, 8800)


class GatedGenerator:
    """Extractive answers (real citations, no model) that wait for ``gate`` when it is closed, and
    record what they were asked."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Semaphore(0)
        self.seen: list[tuple[str, list[tuple[str, str]]]] = []
        self._inner = ExtractiveGenerator()

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        self.seen.append((question, history))
        self.started.release()
        if not self.gate.wait(30):
            raise TimeoutError("the test never opened the gate")
        yield from self._inner.stream(question, passages, history)


def make_rag(tmp: Path, embedder: Any, **settings: Any) -> tuple[RAG, GatedGenerator]:
    gen = GatedGenerator()
    s = Settings(
        index_dir=str(INDEX),
        generator="gated",
        cache_dir=str(tmp / "cache"),
        upload_dir=str(tmp / "up"),
        feedback_file=str(tmp / "fb.jsonl"),
        **settings,
    )
    return RAG(s, embedder=embedder, generator=gen), gen


def free_port() -> int:
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8700-8799")


@contextmanager
def live(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL; stops it afterwards."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
