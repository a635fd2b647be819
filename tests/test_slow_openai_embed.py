"""The openai: embedder against llama-cpp-python's own server (--embedding) on the bundled GGUF.

Quality is not the point (a chat model's embeddings): the protocol is.
"""

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.embed import make_embedder
from rag.index import build_index
from rag.retrieve import Retriever

from .pgserver import _free_port

MODEL_CACHE = str(Path.home() / ".cache" / "rag-vi")


@pytest.mark.slow
def test_llama_cpp_server_embeddings(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")
    from rag.generators.model_files import ensure_model

    model = ensure_model(MODEL_CACHE)
    port = _free_port(set())
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--embedding", "true",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--model_alias", "qwen-gguf"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, "llama_cpp.server exited"
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.txt").write_text("Bưu điện Việt Nam có hơn 13.000 điểm giao dịch.", "utf-8")
        (docs / "b.txt").write_text("Thành phố Huế có 47 di tích được xếp hạng quốc gia.", "utf-8")
        emb = make_embedder(f"openai:qwen-gguf@{url}")
        assert emb.dim > 100
        report = build_index(docs, tmp_path / "idx", settings=Settings(), embedder=emb)
        assert report.embedded == 2
        hits = Retriever.load(str(tmp_path / "idx"), emb).search("Huế có bao nhiêu di tích?", 2, mode="dense")
        assert len(hits) == 2 and all(h.dense is not None for h in hits)
    finally:
        proc.kill()
        proc.wait()
