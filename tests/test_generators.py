import hashlib
import json
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
from rag.types import Chunk, Hit


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
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.received.append(body)
        if body["model"] == "missing":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "model not found"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ["Trả lời: Có ", "6 giải pháp", " lớn [1].", "\nNguồn: [1]"]:
            chunk = {"choices": [{"delta": {"content": piece}, "index": 0}]}
            self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

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
    assert pieces == ["Trả lời: Có ", "6 giải pháp", " lớn [1].", "\nNguồn: [1]"]
    sent = _Handler.received[-1]
    assert sent["stream"] is True and sent["model"] == "qwen" and sent["max_tokens"] == 50
    assert sent["messages"][0]["role"] == "system" and "[1]" in sent["messages"][-1]["content"]


def test_openai_errors_say_what_to_check(openai_server: str) -> None:
    with pytest.raises(ModelLoadError, match="RAG_OPENAI_MODEL"):
        list(OpenAIGenerator(openai_server, "missing").stream("q", passages(), []))
    with pytest.raises(ModelLoadError, match="could not reach"):
        list(OpenAIGenerator("http://127.0.0.1:9/v1", "x", timeout=2).stream("q", passages(), []))
