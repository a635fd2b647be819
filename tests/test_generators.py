import hashlib
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import ModelLoadError
from rag.generators import make_generator
from rag.generators.extractive import ExtractiveGenerator
from rag.generators.model_files import EXPECTED_SHA256, EXPECTED_SIZE, ensure_model, part_paths
from rag.generators.openai import OpenAIGenerator
from rag.pipeline import RAG
from rag.types import Chunk, Hit

from .conftest import INDEX


def passages() -> list[Hit]:
    t = "Ngày 04/5/2017, Thủ tướng ban hành Chỉ thị số 16/CT-TTg, trong đó đưa ra 6 giải pháp lớn. Trời hôm nay đẹp."
    return [Hit(Chunk("d#0-x", "d", "T", t, [(0, len(t))], 0), 1.0)]


def test_model_parts_joined_and_verified(tmp_path: Path) -> None:
    parts = []
    for i, data in enumerate([b"abc" * 1000, b"def" * 500, b"g"]):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(data)
        parts.append(p)
    whole = b"abc" * 1000 + b"def" * 500 + b"g"
    sha = hashlib.sha256(whole).hexdigest()
    path = ensure_model(tmp_path / "cache", parts, size=len(whole), sha256=sha)
    assert path.read_bytes() == whole
    # second call trusts the stamp and does not need the parts
    assert ensure_model(tmp_path / "cache", [], size=len(whole), sha256=sha) == path
    # a tampered file (same size, new mtime) is re-hashed and refused
    path.write_bytes(b"x" + whole[1:])
    with pytest.raises(ModelLoadError, match="SHA-256"):
        ensure_model(tmp_path / "cache", [], size=len(whole), sha256=sha)


def test_wrong_size_or_hash_refused_and_nothing_left_behind(tmp_path: Path) -> None:
    p = tmp_path / "p.bin"
    p.write_bytes(b"hello")
    with pytest.raises(ModelLoadError, match="bytes, expected"):
        ensure_model(tmp_path / "c1", [p], size=6, sha256="0" * 64)
    with pytest.raises(ModelLoadError, match="refusing to load"):
        ensure_model(tmp_path / "c2", [p], size=5, sha256="0" * 64)
    assert not list((tmp_path / "c2" / "models").glob("*"))


def test_expected_model_is_qwens_official_file() -> None:
    assert EXPECTED_SIZE == 1_117_320_768
    assert EXPECTED_SHA256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_installed_parts_add_up_to_the_model() -> None:
    try:
        paths = part_paths()
    except ModelLoadError:
        pytest.skip("model parts not installed")
    assert len(paths) == 22 and sum(p.stat().st_size for p in paths) == EXPECTED_SIZE


def test_extractive_picks_the_matching_sentence() -> None:
    out = "".join(ExtractiveGenerator().stream("Chỉ thị 16 đưa ra bao nhiêu giải pháp?", passages(), []))
    assert out.startswith("Trả lời: Ngày 04/5/2017") and "[1]" in out and "Trời hôm nay" not in out


def test_unknown_generator() -> None:
    with pytest.raises(ModelLoadError, match="RAG_GENERATOR"):
        make_generator("gpt-9", Settings())


class _Handler(BaseHTTPRequestHandler):
    """A chat server: model "missing" is unknown, "plain" refuses log-probabilities with a 400, and
    "nologits" fails on them; the others give them. A one-token completion is the support check's
    "Yes"/"No"."""

    received: list[dict] = []
    pieces = ["Trả lời: Có ", "6 giải pháp", " lớn [1].", "\nNguồn: [1]"]
    yes_no = [
        {"token": " Yes", "logprob": -0.4},
        {"token": "No", "logprob": -1.6},
        {"token": "Tr", "logprob": -3.0},
    ]

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.received.append(body)
        if body["model"] == "missing" or (body["model"] == "plain" and "logprobs" in body):
            self.send_response(404 if body["model"] == "missing" else 400)
            self.end_headers()
            self.wfile.write(
                b'{"error": "model not found"}' if body["model"] == "missing" else b'{"error": "logprobs"}'
            )
            return
        given = body.get("logprobs") is True
        if body["model"] == "nologits" and given:  # llama-cpp-python's server without logits_all
            if not body.get("stream"):
                self._send(500, "application/json", b'{"error": {"message": "logprobs is not supported"}}')
                return
            self.send_response(200)  # the stream fails before its first chunk, and the connection drops
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.close_connection = True
            return
        if not body.get("stream"):
            one = body["max_tokens"] == 1
            choice = {
                "message": {"content": "Yes" if one else "Trả lời: 6 giải pháp lớn [1]"},
                "logprobs": {"content": [{"token": "Yes", "logprob": -0.4, "top_logprobs": self.yes_no}]}
                if given and one
                else None,
            }
            self._send(200, "application/json", json.dumps({"choices": [choice]}).encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, piece in enumerate(self.pieces):
            chunk: dict = {"choices": [{"delta": {"content": piece}, "index": 0}]}
            if given:
                chunk["choices"][0]["logprobs"] = {"content": [{"token": piece, "logprob": -0.1 * (i + 1)}]}
            self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _send(self, status: int, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def openai_server():  # type: ignore[no-untyped-def]
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_openai_compatible_streaming(openai_server: str) -> None:
    gen = OpenAIGenerator(openai_server, "qwen", api_key="k", max_new_tokens=50)
    pieces = list(gen.stream("Chỉ thị 16 đưa ra bao nhiêu giải pháp?", passages(), []))
    assert pieces == _Handler.pieces
    sent = _Handler.received[-1]
    assert sent["stream"] is True and sent["model"] == "qwen" and sent["max_tokens"] == 50
    assert sent["messages"][0]["role"] == "system" and "[1]" in sent["messages"][-1]["content"]
    assert gen.last_logprobs() == pytest.approx([-0.1, -0.2, -0.3, -0.4])  # the answer's tokens, in order


def test_openai_answers_are_rated_from_the_servers_log_probabilities(openai_server: str) -> None:
    gen = OpenAIGenerator(openai_server, "qwen")
    p = gen.support_probability("Chỉ thị 16 đưa ra bao nhiêu giải pháp?", "6", ["(T) đưa ra 6 giải pháp lớn"])
    assert p == pytest.approx(1 / (1 + math.exp(-1.6 + 0.4)))  # " Yes" against "No", "Tr" ignored
    sent = _Handler.received[-1]
    assert sent["max_tokens"] == 1 and sent["logprobs"] is True and sent["top_logprobs"] == 20
    assert "Yes or No" in sent["messages"][-1]["content"]
    assert gen.reread("Chỉ thị 16 đưa ra bao nhiêu giải pháp?", ["(T) đưa ra 6 giải pháp lớn"]).endswith(
        "[1]"
    )
    rag = RAG(
        Settings(index_dir=str(INDEX), generator="openai"), generator=gen
    )  # the pipeline rates what the server says
    a = rag.ask("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?")
    assert a.signals["support"] == pytest.approx(p) and a.signals["mean_logprob"] == pytest.approx(-0.25)
    assert a.confidence is not None


@pytest.mark.parametrize("model", ["plain", "nologits"])
def test_a_server_without_log_probabilities_still_answers_unrated(openai_server: str, model: str) -> None:
    gen = OpenAIGenerator(openai_server, model)
    assert list(gen.stream("Chỉ thị 16 đưa ra bao nhiêu giải pháp?", passages(), [])) == _Handler.pieces
    assert "logprobs" not in _Handler.received[-1] and gen.last_logprobs() == []  # asked again without
    assert gen.support_probability("q", "6", ["e"]) is None
    a = RAG(Settings(index_dir=str(INDEX), generator="openai"), generator=gen).ask(
        "Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?"
    )
    assert not a.abstained and a.confidence is None and a.signals["support"] is None
    assert any("not rated" in w for w in a.warnings)  # said, not silently skipped


def test_openai_errors_say_what_to_check(openai_server: str) -> None:
    with pytest.raises(ModelLoadError, match="RAG_OPENAI_MODEL"):
        list(OpenAIGenerator(openai_server, "missing").stream("q", passages(), []))
    with pytest.raises(ModelLoadError, match="could not reach"):
        list(OpenAIGenerator("http://127.0.0.1:9/v1", "x", timeout=2).stream("q", passages(), []))
