"""RAG_GENERATOR=openai against a real OpenAI-compatible server: llama-cpp-python's own
(`python -m llama_cpp.server`) serving the bundled GGUF on a local port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.pipeline import RAG

from .api_fakes import free_port
from .conftest import INDEX

pytestmark = pytest.mark.slow
MODEL_CACHE = str(Path.home() / ".cache" / "rag-vi")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python's server extra")
    from rag.generators.model_files import ensure_model

    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w")
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(ensure_model(MODEL_CACHE))]
    cmd += ["--model_alias", "qwen", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"llama_cpp.server exited with {proc.returncode}; see {log.name}"
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not start in 180 s"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()  # this test's own server, by its PID
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_openai_generator_answers_through_a_real_server(llama_server: str) -> None:
    s = Settings(
        index_dir=str(INDEX),
        generator="openai",
        openai_base_url=llama_server,
        openai_model="qwen",
        fallback_extractive=False,
        cache_dir=MODEL_CACHE,
    )
    stream = RAG(s).stream("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?")
    deltas = list(stream)
    a = stream.answer
    assert a.generator == "openai" and not a.abstained, a.text
    assert "6" in a.text and "[1]" in a.text and deltas and a.timings.tokens >= 2  # the server streamed
    assert any("6 giải pháp lớn" in c.text for c in a.citations)
    assert a.citations[0].quote in a.citations[0].text
    # rated as the local model's answers are, from the server's log-probabilities
    assert a.confidence is not None and a.confidence > 0.5 and a.signals["support"] > 0.5
    assert a.signals["mean_logprob"] is not None and a.signals["mean_logprob"] < 0


def test_openai_generator_translates_an_english_question(llama_server: str) -> None:
    from rag.generators.openai import OpenAIGenerator
    from rag.text import is_vietnamese

    vi = OpenAIGenerator(llama_server, "qwen").translate(
        "How many transaction points does Vietnam Post have?"
    )
    assert is_vietnamese(vi) and "bao nhiêu" in vi.lower(), vi


def test_rag_serve_in_front_of_the_real_server(llama_server: str) -> None:
    """openai client → `rag serve` → RAG_GENERATOR=openai → llama_cpp.server, streaming all the way."""
    openai = pytest.importorskip("openai")
    pytest.importorskip("fastapi")
    from rag.api import create_app

    from .api_fakes import live

    s = Settings(
        index_dir=str(INDEX),
        generator="openai",
        openai_base_url=llama_server,
        openai_model="qwen",
        fallback_extractive=False,
        cache_dir=MODEL_CACHE,
    )
    with live(create_app(rag=RAG(s), chat=False)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        question = "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"
        chunks = list(
            client.chat.completions.create(
                model="default", messages=[{"role": "user", "content": question}], stream=True
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1].model_extra
    assert "13.000" in text and "13.000" in last["answer"] and not last["abstained"], text
    assert any("13.000" in c["quote"] for c in last["citations"])
