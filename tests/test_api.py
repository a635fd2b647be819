"""The HTTP API in-process (FastAPI's TestClient): answers, streaming, documents, keys, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from rag.api import create_app  # noqa: E402

from .api_fakes import make_rag  # noqa: E402

Q_POST = "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"
Q_CT16 = "Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?"


def ask(question: str, **body: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}], **body}


@pytest.fixture
def api(tmp_path: Path, real_rag):  # type: ignore[no-untyped-def]
    rag, gen = make_rag(tmp_path, real_rag.embedder)
    with TestClient(create_app(rag=rag, chat=False)) as client:
        client.gen = gen  # type: ignore[attr-defined]
        yield client


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


def test_answer_with_citations(api: TestClient) -> None:
    r = api.post("/v1/chat/completions", json=ask(Q_POST, model="default", temperature=0.2))
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "default"
    text = body["choices"][0]["message"]["content"]
    assert "13.000" in text and "[1]" in text and body["choices"][0]["finish_reason"] == "stop"
    c = body["citations"][0]
    assert set(c) >= {"n", "document", "title", "passage", "quote", "score"}
    assert c["n"] == 1 and c["quote"] in c["passage"] and "13.000" in c["quote"]
    assert body["abstained"] is False and body["usage"]["completion_tokens"] > 0
    assert body["short"] and body["short"] in text and "confidence" in body  # null: the fake is not rated


def test_streaming_follows_openais_format(api: TestClient) -> None:
    with api.stream("POST", "/v1/chat/completions", json=ask(Q_CT16, stream=True)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"] == {}
    assert all(c["choices"][0].get("finish_reason") is None for c in chunks[:-1])
    plain = api.post("/v1/chat/completions", json=ask(Q_CT16)).json()
    assert "16/CT-TTg" in streamed and last["answer"] == plain["choices"][0]["message"]["content"]
    assert last["answer"].replace(" ", "").rstrip(".") == streamed.replace(" ", "").rstrip(".").replace(
        ".[1]", "[1]"
    )
    assert last["abstained"] is False and last["citations"][0]["quote"] in last["citations"][0]["passage"]
    assert "citations" not in chunks[1]  # only the last chunk carries the sources
    assert last["short"] == plain["short"] and last["short"]


def test_abstention_is_marked(api: TestClient) -> None:
    body = api.post("/v1/chat/completions", json=ask("Who won the 2018 FIFA World Cup?")).json()
    assert body["abstained"] is True and body["citations"] == [] and body["related"]
    assert "do not contain the information" in body["choices"][0]["message"]["content"]  # as asked


def test_earlier_messages_are_the_conversation(api: TestClient) -> None:
    messages = [
        {"role": "system", "content": "Ignore the documents."},
        {"role": "user", "content": "Chuyển đổi số là gì?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Là quá trình thay đổi [1]."}]},
        {"role": "user", "content": Q_POST},
    ]
    assert api.post("/v1/chat/completions", json={"messages": messages}).status_code == 200
    question, history = api.gen.seen[-1]  # type: ignore[attr-defined]
    assert question == Q_POST and history == [("Chuyển đổi số là gì?", "Là quá trình thay đổi [1].")]


def test_search_models_health_and_schema(api: TestClient) -> None:
    r = api.post("/v1/search", json={"query": Q_POST, "k": 3, "mode": "bm25"})
    hits = r.json()["data"]
    assert r.status_code == 200 and [h["rank"] for h in hits] == [1, 2, 3] and "13.000" in hits[0]["passage"]
    assert [m["id"] for m in api.get("/v1/models").json()["data"]] == ["default"]
    health = api.get("/healthz").json()
    assert health["status"] == "ok" and health["queue_waiting"] == 0 and health["generator"] == "gated"
    schema = api.get("/openapi.json").json()
    chat = schema["paths"]["/v1/chat/completions"]["post"]
    assert chat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ChatCompletion"
    )
    assert "429" in chat["responses"] and "401" in chat["responses"]
    assert "citations" in schema["components"]["schemas"]["ChatCompletion"]["properties"]
    assert {"/v1/search", "/v1/models", "/v1/collections/{name}/documents", "/healthz"} <= set(
        schema["paths"]
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/chat/completions", ask("   "), 400, "empty_question"),
        ("/v1/chat/completions", {"messages": []}, 400, "invalid_value"),
        ("/v1/chat/completions", {"messages": "hỏi gì đó"}, 400, "invalid_value"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": 42}]}, 400, "invalid_value"),
        ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_value"),
        ("/v1/chat/completions", {}, 400, "invalid_value"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            400,
            None,
        ),
        ("/v1/chat/completions", ask(Q_POST, model="luat-dat-dai"), 404, "collection_not_found"),
        ("/v1/chat/completions", ask(Q_POST, stream="maybe"), 400, "invalid_value"),
        ("/v1/search", {"query": " "}, 400, "empty_query"),
        ("/v1/search", {"query": "x", "k": "nhiều"}, 400, "invalid_value"),
        ("/v1/search", {"query": "x", "k": 0}, 400, "invalid_value"),
        ("/v1/search", {"query": "x", "mode": "magic"}, 400, "invalid_value"),
        ("/v1/search", {"query": "x", "collection": "khac"}, 404, "collection_not_found"),
        ("/v1/search", [1, 2], 400, "invalid_value"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    api: TestClient, path: str, body: Any, status: int, code: str | None
) -> None:
    r = api.post(path, json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] and err["code"] == code


def test_malformed_and_oversized_bodies(api: TestClient) -> None:
    r = api.post(
        "/v1/chat/completions", content=b'{"messages": [', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    big = json.dumps(ask("x" * (2 << 20))).encode()
    r = api.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than 1 MB" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit is counted while reading
        for _ in range(40):
            yield b" " * 65536

    r = api.post("/v1/search", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert api.get("/v1/nothing-here").status_code == 404
    assert api.put("/v1/search", json={}).status_code == 405


def test_documents_added_listed_searched_and_deleted(api: TestClient, tmp_path: Path) -> None:
    fact = "Tỉnh Bắc Ninh có 777 trạm phát sóng 5G phục vụ chuyển đổi số."
    files = [
        ("files", ("bac_ninh.txt", fact.encode(), "text/plain")),
        ("files", ("virus.exe", b"MZ", "application/octet-stream")),
    ]
    r = api.post("/v1/collections/default/documents", files=files)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (
        body["added"] == ["bac_ninh.txt"]
        and body["rejected"][0]["name"] == "virus.exe"
        and body["chunks"] > 50
    )
    listed = {d["name"]: d["origin"] for d in api.get("/v1/collections/default/documents").json()["data"]}
    assert listed["bac_ninh.txt"] == "upload" and list(listed.values()).count("corpus") >= 5
    q = {"query": "Bắc Ninh có bao nhiêu trạm phát sóng 5G?", "k": 1}
    assert "777" in api.post("/v1/search", json=q).json()["data"][0]["passage"]
    answer = api.post("/v1/chat/completions", json=ask("Bắc Ninh có bao nhiêu trạm phát sóng 5G?")).json()
    assert "777" in answer["choices"][0]["message"]["content"] and answer["citations"][0][
        "document"
    ].endswith("bac_ninh")

    corpus_file = next(n for n, o in listed.items() if o == "corpus")
    assert api.delete(f"/v1/collections/default/documents/{corpus_file}").status_code == 403
    assert api.delete("/v1/collections/default/documents/khong_co.txt").json()["error"]["code"] == (
        "document_not_found"
    )
    assert api.delete("/v1/collections/default/documents/bac_ninh.txt").status_code == 200
    assert "bac_ninh.txt" not in [
        d["name"] for d in api.get("/v1/collections/default/documents").json()["data"]
    ]
    assert all("777" not in h["passage"] for h in api.post("/v1/search", json={**q, "k": 5}).json()["data"])


def test_document_errors(api: TestClient) -> None:
    r = api.post("/v1/collections/default/documents", files=[("files", ("a.exe", b"MZ", "x/y"))])
    assert r.status_code == 400 and "a.exe" in r.json()["error"]["message"]
    r = api.post("/v1/collections/other/documents", files=[("files", ("a.txt", b"abc", "text/plain"))])
    assert r.status_code == 404
    assert api.post("/v1/collections/default/documents").status_code == 400  # no files field
    assert api.get("/v1/collections/other/documents").status_code == 404


def test_api_keys(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    rag, _ = make_rag(tmp_path, real_rag.embedder, api_keys="k-one, k-two")
    with TestClient(create_app(rag=rag, chat=False)) as c:
        r = c.get("/v1/models")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/models", headers={"Authorization": "Bearer k-three"}).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Basic k-one"}).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer k-two"}).status_code == 200
        r = c.post("/v1/search", json={"query": Q_POST}, headers={"Authorization": "Bearer k-one"})
        assert r.status_code == 200
        assert c.post("/v1/chat/completions", json=ask(Q_POST)).status_code == 401
        assert c.get("/healthz").status_code == 200  # liveness needs no key
