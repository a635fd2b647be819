"""The API served by uvicorn on a local port: the official openai package, the queue under load,
and the chat mounted at / sharing the queue."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from rag.api import create_app  # noqa: E402

from .api_fakes import live, make_rag  # noqa: E402

Q_POST = "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"
Q_CT16 = "Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?"


def test_openai_package_works_unchanged(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    openai = pytest.importorskip("openai")
    rag, _ = make_rag(tmp_path, real_rag.embedder, api_keys="sk-test")
    with live(create_app(rag=rag, chat=False)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
        assert [m.id for m in client.models.list()] == ["default"]

        done = client.chat.completions.create(model="default", messages=[{"role": "user", "content": Q_POST}])
        assert "13.000" in done.choices[0].message.content and "[1]" in done.choices[0].message.content
        cites = done.model_extra["citations"]
        assert cites[0]["n"] == 1 and "13.000" in cites[0]["quote"] and done.model_extra["abstained"] is False

        text, last = "", None
        for chunk in client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": Q_CT16}], stream=True
        ):
            text += chunk.choices[0].delta.content or ""
            last = chunk
        assert last is not None and last.choices[0].finish_reason == "stop"
        assert (
            "16/CT-TTg" in text
            and last.model_extra["citations"][0]["quote"]
            in last.model_extra["answer"] + (last.model_extra["citations"][0]["passage"])
        )

        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        with pytest.raises(openai.NotFoundError, match="no collection"):
            client.chat.completions.create(model="khac", messages=[{"role": "user", "content": Q_POST}])
        with pytest.raises(openai.BadRequestError, match="empty"):
            client.chat.completions.create(model="default", messages=[{"role": "user", "content": " "}])


def test_queue_is_bounded_fair_and_search_does_not_wait(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    rag, gen = make_rag(tmp_path, real_rag.embedder, queue_size=1)
    gen.gate.clear()  # the "model" holds every answer until the test lets it go
    with live(create_app(rag=rag, chat=False)) as url, ThreadPoolExecutor(4) as pool:

        def chat(question: str, user: str) -> httpx.Response:
            body = {"messages": [{"role": "user", "content": question}], "user": user}
            return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)

        first = pool.submit(chat, Q_POST, "an")
        assert gen.started.acquire(timeout=30)  # the first answer holds the model

        lines: list[str] = []

        def waiting_stream() -> None:
            body = {"messages": [{"role": "user", "content": Q_CT16}], "user": "binh", "stream": True}
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as r:
                lines.extend(r.iter_lines())

        second = pool.submit(waiting_stream)
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/healthz").json()["queue_waiting"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        refused = chat(Q_POST, "chi")  # one running, one waiting: the queue (size 1) is full
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "queue_full"

        found = httpx.post(f"{url}/v1/search", json={"query": Q_POST, "k": 3}, timeout=10)
        assert found.status_code == 200 and "13.000" in found.json()["data"][0]["passage"]
        assert not first.done()  # search was answered while the model was still busy

        gen.gate.set()
        a = first.result(timeout=30).json()
        second.result(timeout=30)
    assert "13.000" in a["choices"][0]["message"]["content"]  # each answer is its own question's
    assert ": queue position 1" in lines  # the waiting client was told its place
    streamed = "".join(ln for ln in lines if ln.startswith("data: {"))
    assert "16/CT-TTg" in streamed and "13.000" not in streamed
    assert [q for q, _ in gen.seen] == [Q_POST, Q_CT16]


def test_chat_page_shares_the_queue_and_shows_the_place(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("gradio")
    from gradio_client import Client

    rag, gen = make_rag(tmp_path, real_rag.embedder)
    gen.gate.clear()
    with live(create_app(rag=rag)) as url:
        holder = threading.Thread(
            target=httpx.post,
            args=(f"{url}/v1/chat/completions",),
            kwargs={"json": {"messages": [{"role": "user", "content": Q_CT16}]}, "timeout": 60},
        )
        holder.start()
        assert gen.started.acquire(timeout=30)
        job = Client(url + "/", verbose=False).submit(Q_POST, [], "extractive", 5, True, api_name="/ask")
        deadline = time.monotonic() + 30
        while not any("vị trí 1" in str(out) for out in job.outputs()):
            assert time.monotonic() < deadline, job.outputs()
            time.sleep(0.1)
        gen.gate.set()
        chat, sources, _, _ = job.result(timeout=60)
        holder.join(30)
    answer = chat[-1]["content"]
    answer = answer if isinstance(answer, str) else "".join(p.get("text", "") for p in answer)
    assert "13.000" in answer and 'id="nguon-1"' in sources


def test_chat_login_when_ui_auth_is_set(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("gradio")
    from fastapi.testclient import TestClient

    rag, _ = make_rag(tmp_path, real_rag.embedder, ui_auth="ana:mat-khau")
    with TestClient(create_app(rag=rag)) as c:
        assert c.get("/config").status_code == 401
        assert c.post("/login", data={"username": "ana", "password": "sai"}).status_code == 400
        assert c.post("/login", data={"username": "ana", "password": "mat-khau"}).status_code == 200
        assert c.get("/config").status_code == 200
        assert c.get("/v1/models").status_code == 200  # the API has its own keys (RAG_API_KEYS)


def test_a_client_that_leaves_the_queue_frees_its_place(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    rag, gen = make_rag(tmp_path, real_rag.embedder)
    gen.gate.clear()
    with live(create_app(rag=rag, chat=False)) as url, ThreadPoolExecutor(1) as pool:
        body = {"messages": [{"role": "user", "content": Q_POST}]}
        first = pool.submit(httpx.post, f"{url}/v1/chat/completions", json=body, timeout=60)
        assert gen.started.acquire(timeout=30)
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", json={**body, "stream": True}, timeout=60
        ) as r:
            for line in r.iter_lines():
                if line.startswith(": queue position"):
                    break  # leave while waiting
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/healthz").json()["queue_waiting"]:
            assert time.monotonic() < deadline, "the abandoned request kept its place"
            time.sleep(0.1)
        gen.gate.set()
        assert first.result(timeout=30).status_code == 200
    assert [q for q, _ in gen.seen] == [Q_POST]  # the abandoned question never reached the model
