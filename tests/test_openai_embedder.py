"""RAG_EMBEDDER=openai:<model>@<base_url>: a real HTTP server speaking the /v1/embeddings protocol."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embed import make_embedder
from rag.errors import IndexMismatchError, ModelLoadError
from rag.index import build_index
from rag.retrieve import Retriever

from .conftest import FakeEmbedder
from .pgserver import _free_port


class Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append({"path": self.path, **body, "auth": self.headers.get("Authorization")})
        if body["model"] != "e5-test":
            self.send_response(404)
            self.end_headers()
            return
        vecs = FakeEmbedder().embed_documents(body["input"])
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]
        out = json.dumps({"object": "list", "data": data[::-1], "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", _free_port(set())), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_index_and_search_through_the_server(
    server: str, corpus_copy: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAG_EMBEDDER_API_KEY", "sk-test")
    Handler.requests.clear()
    emb = make_embedder(f"openai:e5-test@{server}")
    assert emb.id == "openai:e5-test" and emb.dim == FakeEmbedder.dim
    s = Settings(
        index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus_copy), embedder=f"openai:e5-test@{server}"
    )
    report = build_index(settings=s, embedder=emb)
    assert report.embedded == report.chunks > 0
    sent = Handler.requests[1]
    assert sent["path"] == "/v1/embeddings" and sent["auth"] == "Bearer sk-test"
    assert all(t.startswith("passage: ") for t in sent["input"])  # e5 prefixes from the model name
    hits = Retriever.load(s.index_dir, emb).search("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", 3)
    assert "13.000 điểm giao dịch" in hits[0].text
    assert Handler.requests[-1]["input"][0].startswith("query: ")
    # an index built with this embedder refuses another one
    with pytest.raises(IndexMismatchError, match="openai:e5-test"):
        Retriever.load(s.index_dir, FakeEmbedder())


def test_server_errors_say_what_to_do(server: str) -> None:
    with pytest.raises(ModelLoadError, match="openai:<model>@<base_url>"):
        make_embedder(f"openai:missing-model@{server}")
    with pytest.raises(ModelLoadError, match="check that it is running"):
        make_embedder(f"openai:e5-test@http://127.0.0.1:{_free_port(set())}/v1")
