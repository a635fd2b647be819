"""The HTTP API serves every named collection of the store: chat, search and documents per
collection, collections made or changed by ``rag index`` while it runs, clear 4xx errors."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from rag.api import create_app  # noqa: E402
from rag.collections import index_collection, remove_collection  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.errors import RagError  # noqa: E402

from .api_fakes import make_rag  # noqa: E402

LAWS = {
    "quang_tri.md": "# Quan trắc ở Quảng Trị\n\nTỉnh Quảng Trị có 321 trạm quan trắc môi trường tự động.",
    "hue.txt": "Thành phố Huế có 47 di tích được xếp hạng di tích quốc gia đặc biệt và quốc gia.",
}
Q_LAWS = "Quảng Trị có bao nhiêu trạm quan trắc môi trường?"
Q_CORPUS = "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"


def ask(question: str, **body: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}], **body}


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, "utf-8")
    return folder


@pytest.fixture
def served(tmp_path: Path, real_rag):  # type: ignore[no-untyped-def]
    """A server over the committed corpus and a folder store holding the collection ``laws``."""
    rag, _ = make_rag(tmp_path, real_rag.embedder, store=str(tmp_path / "store"))
    index_collection(rag.settings, write(tmp_path / "laws", LAWS), "laws", embedder=rag.embedder)
    with TestClient(create_app(rag=rag, chat=False)) as client:
        yield client, rag.settings


def search(client: TestClient, query: str, collection: str, k: int = 5) -> list[dict[str, Any]]:
    r = client.post("/v1/search", json={"query": query, "collection": collection, "k": k})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def test_a_named_collection_is_listed_searched_and_answers_alone(served) -> None:  # type: ignore[no-untyped-def]
    client, _ = served
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["default", "laws"]
    hits = search(client, Q_CORPUS, "laws")
    assert {h["document"] for h in hits} <= {"quang_tri", "hue"} and hits  # never the corpus
    assert "321" in search(client, Q_LAWS, "laws", k=1)[0]["passage"]
    assert all("321" not in h["passage"] for h in search(client, Q_LAWS, "default"))
    assert search(client, Q_CORPUS, "corpus", k=1) == search(client, Q_CORPUS, "default", k=1)  # an alias

    body = client.post("/v1/chat/completions", json=ask(Q_LAWS, model="laws")).json()
    assert body["model"] == "laws" and "321" in body["choices"][0]["message"]["content"]
    assert [c["document"] for c in body["citations"]] == ["quang_tri"]
    body = client.post("/v1/chat/completions", json=ask(Q_CORPUS, model="laws")).json()
    assert body["abstained"] is True and all(h["document"] in ("quang_tri", "hue") for h in body["related"])


def test_documents_of_a_named_collection(served) -> None:  # type: ignore[no-untyped-def]
    client, settings = served
    docs = client.get("/v1/collections/laws/documents").json()["data"]
    assert [(d["name"], d["origin"]) for d in docs] == [("hue", "collection"), ("quang_tri", "collection")]
    assert "47 di tích" in docs[0]["title"] and "Quảng Trị" in docs[1]["title"]
    assert all(d["chunks"] >= 1 for d in docs)

    fact = "Tỉnh Hà Giang có 88 cột mốc biên giới được cắm mới trong năm 2024."
    files = [
        ("files", ("ha_giang.txt", fact.encode(), "text/plain")),
        ("files", ("trong.txt", b"   \n ", "text/plain")),  # no text: rejected with a reason
        ("files", ("virus.exe", b"MZ", "application/octet-stream")),
    ]
    r = client.post("/v1/collections/laws/documents", files=files)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["collection"] == "laws" and body["added"] == ["ha_giang"] and body["replaced"] == []
    assert {x["name"] for x in body["rejected"]} == {"trong.txt", "virus.exe"} and body["chunks"] == 3
    assert all(x["reason"] for x in body["rejected"])
    q = "Hà Giang có bao nhiêu cột mốc biên giới cắm mới?"
    assert "88 cột mốc" in search(client, q, "laws", k=1)[0]["passage"]
    assert all("88 cột mốc" not in h["passage"] for h in search(client, q, "default"))  # not in default
    assert not (Path(settings.index_dir) / "pending").exists()

    newer = "Tỉnh Hà Giang có 95 cột mốc biên giới được cắm mới trong năm 2025."
    r = client.post(
        "/v1/collections/laws/documents", files=[("files", ("ha_giang.md", newer.encode(), "x/y"))]
    )
    assert r.status_code == 201 and r.json()["replaced"] == ["ha_giang"] and r.json()["chunks"] == 3
    assert "95 cột mốc" in search(client, q, "laws", k=1)[0]["passage"]

    r = client.delete("/v1/collections/laws/documents/ha_giang.md")  # the file name works too
    assert r.status_code == 200 and r.json() == {"collection": "laws", "deleted": "ha_giang"}
    assert all("cột mốc" not in h["passage"] for h in search(client, q, "laws"))
    assert "ha_giang" not in {d["name"] for d in client.get("/v1/collections/laws/documents").json()["data"]}
    r = client.delete("/v1/collections/laws/documents/ha_giang")
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"

    r = client.post("/v1/collections/laws/documents", files=[("files", ("x.exe", b"MZ", "x/y"))])
    assert r.status_code == 400 and r.json()["error"]["code"] == "documents_rejected"
    assert len(client.get("/v1/collections/laws/documents").json()["data"]) == 2


def test_collections_made_changed_and_removed_while_serving(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, settings = served
    q = "Cà Mau có bao nhiêu ha rừng ngập mặn?"
    assert client.post("/v1/search", json={"query": q, "collection": "mekong"}).status_code == 404
    folder = write(tmp_path / "mekong", {"ca_mau.txt": "Tỉnh Cà Mau có 58.000 ha rừng ngập mặn ven biển."})
    index_collection(Settings(**settings.__dict__), folder, "mekong")  # as `rag index` in another process
    assert "mekong" in [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert "58.000" in search(client, q, "mekong", k=1)[0]["passage"]

    write(folder, {"bac_lieu.txt": "Tỉnh Bạc Liêu có 120 km đê biển chống sạt lở."})
    index_collection(Settings(**settings.__dict__), folder, "mekong")
    assert "120 km" in search(client, "Bạc Liêu có bao nhiêu km đê biển?", "mekong", k=1)[0]["passage"]

    remove_collection(settings, "mekong")
    r = client.post("/v1/chat/completions", json=ask(q, model="mekong"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found"
    assert "mekong" not in [m["id"] for m in client.get("/v1/models").json()["data"]]


def test_create_and_delete_a_collection(served) -> None:  # type: ignore[no-untyped-def]
    client, _ = served
    r = client.post("/v1/collections", json={"name": "so-tay"})
    assert r.status_code == 201 and r.json()["id"] == "so-tay" and r.json()["documents"] == 0
    assert client.post("/v1/collections", json={"name": "so-tay"}).json()["error"]["code"] == (
        "collection_exists"
    )
    assert client.post("/v1/collections", json={"name": "default"}).status_code == 409
    assert search(client, Q_CORPUS, "so-tay") == []  # empty: nothing found, no error
    body = client.post("/v1/chat/completions", json=ask(Q_CORPUS, model="so-tay")).json()
    assert body["abstained"] is True and body["citations"] == []

    fact = "Sổ tay nội bộ: phòng họp số 7 có 24 chỗ ngồi."
    files = [("files", ("phong_hop.txt", fact.encode(), "text/plain"))]
    assert client.post("/v1/collections/so-tay/documents", files=files).json()["chunks"] == 1
    assert "24 chỗ" in search(client, "Phòng họp số 7 có bao nhiêu chỗ ngồi?", "so-tay", k=1)[0]["passage"]

    assert client.delete("/v1/collections/default").status_code == 403
    r = client.delete("/v1/collections/so-tay")
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert client.get("/v1/collections/so-tay/documents").status_code == 404
    assert client.delete("/v1/collections/so-tay").json()["error"]["code"] == "collection_not_found"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/v1/chat/completions", ask(Q_LAWS, model="khong-co"), 404, "collection_not_found"),
        ("post", "/v1/search", {"query": "x", "collection": "khong-co"}, 404, "collection_not_found"),
        ("get", "/v1/collections/khong-co/documents", None, 404, "collection_not_found"),
        ("delete", "/v1/collections/laws/documents/khong_co", None, 404, "document_not_found"),
        ("post", "/v1/chat/completions", ask(Q_LAWS, model="../laws"), 400, "invalid_collection_name"),
        ("post", "/v1/chat/completions", ask(Q_LAWS, model="Laws"), 400, "invalid_collection_name"),
        ("post", "/v1/search", {"query": "x", "collection": "/etc/passwd"}, 400, "invalid_collection_name"),
        ("get", "/v1/collections/%2E%2E/documents", None, 400, "invalid_collection_name"),
        ("get", "/v1/collections/..%2F..%2Fetc/documents", None, 404, "not_found"),  # matches no route
        ("get", "/v1/collections/a%00b/documents", None, 400, "invalid_collection_name"),
        ("delete", "/v1/collections/laws/documents/..%2F..%2Fmanifest", None, 404, "document_not_found"),
        ("post", "/v1/collections", {"name": "../x"}, 400, "invalid_collection_name"),
        ("post", "/v1/collections", {"name": "x" * 64}, 400, "invalid_collection_name"),
        ("post", "/v1/collections", {}, 400, "invalid_value"),
    ],
)
def test_unknown_and_invalid_names(served, method: str, path: str, body: Any, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = served
    r = client.request(method, path, json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"]


def test_unknown_collection_before_reading_uploads(served) -> None:  # type: ignore[no-untyped-def]
    client, settings = served
    files = [("files", ("a.txt", "Một câu có chữ.".encode(), "text/plain"))]
    r = client.post("/v1/collections/khong-co/documents", files=files)
    assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found"
    assert not (Path(settings.store) / "khong-co").exists()


def test_keys_guard_the_collection_routes(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    rag, _ = make_rag(tmp_path, real_rag.embedder, store=str(tmp_path / "store"), api_keys="k1")
    with TestClient(create_app(rag=rag, chat=False)) as c:
        assert c.post("/v1/collections", json={"name": "x"}).status_code == 401
        assert c.delete("/v1/collections/x").status_code == 401
        assert not (tmp_path / "store" / "x").exists()
        key = {"Authorization": "Bearer k1"}
        assert c.post("/v1/collections", json={"name": "x"}, headers=key).status_code == 201
        assert c.delete("/v1/collections/x", headers=key).status_code == 200


def test_the_schema_describes_the_collection_routes(served) -> None:  # type: ignore[no-untyped-def]
    client, _ = served
    paths = client.get("/openapi.json").json()["paths"]
    assert {"post"} <= set(paths["/v1/collections"]) and {"delete"} <= set(paths["/v1/collections/{name}"])
    assert "409" in paths["/v1/collections"]["post"]["responses"]
    assert "/v1/collections/{name}/documents/{document}" in paths
    ops = [op for path in paths.values() for op in path.values()]
    assert all(
        "422" not in op["responses"] and "400" in op["responses"]
        for op in ops
        if op.get("tags") != ["health"]
    )


def test_default_is_the_configured_collection(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    rag, _ = make_rag(tmp_path, real_rag.embedder, store=str(tmp_path / "store"), collection="laws")
    index_collection(rag.settings, write(tmp_path / "laws", LAWS), "laws", embedder=rag.embedder)
    with TestClient(create_app(rag=rag, chat=False)) as c:
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["default", "corpus"]
        assert "321" in search(c, Q_LAWS, "default", k=1)[0]["passage"]
        assert "13.000" in search(c, Q_CORPUS, "corpus", k=1)[0]["passage"]
        docs = c.get("/v1/collections/default/documents").json()["data"]
        assert [(d["name"], d["origin"]) for d in docs] == [
            ("hue", "collection"),
            ("quang_tri", "collection"),
        ]
        assert c.delete("/v1/collections/default/documents/hue").json()["error"]["code"] == "read_only"
        files = [("files", ("a.txt", "Một câu có chữ.".encode(), "text/plain"))]
        r = c.post("/v1/collections/corpus/documents", files=files)  # the committed index stays as built
        assert r.status_code == 403 and r.json()["error"]["code"] == "read_only"
        assert c.delete("/v1/collections/corpus").status_code == 403


def test_a_postgres_collection_is_served(pg, tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    primary, replica = pg
    rag, _ = make_rag(tmp_path, real_rag.embedder, store=primary.url, store_read=replica.url)
    index_collection(rag.settings, write(tmp_path / "laws", LAWS), "api-laws", embedder=rag.embedder)
    try:
        with TestClient(create_app(rag=rag, chat=False)) as c:
            assert "api-laws" in [m["id"] for m in c.get("/v1/models").json()["data"]]
            assert {h["document"] for h in search(c, Q_CORPUS, "api-laws")} <= {"quang_tri", "hue"}
            body = c.post("/v1/chat/completions", json=ask(Q_LAWS, model="api-laws")).json()
            assert [x["document"] for x in body["citations"]] == ["quang_tri"]

            fact = "Tỉnh Hà Giang có 88 cột mốc biên giới được cắm mới trong năm 2024."
            files = [("files", ("ha_giang.txt", fact.encode(), "text/plain"))]
            r = c.post("/v1/collections/api-laws/documents", files=files)
            assert r.status_code == 201 and r.json()["chunks"] == 3
            q = "Hà Giang có bao nhiêu cột mốc biên giới cắm mới?"
            for _ in range(100):  # the replica serves searches once it has replayed the write
                hits = search(c, q, "api-laws", k=1)
                if hits and "88 cột mốc" in hits[0]["passage"]:
                    break
                time.sleep(0.05)
            assert "88 cột mốc" in hits[0]["passage"]
            assert c.delete("/v1/collections/api-laws/documents/ha_giang").status_code == 200
            assert "ha_giang" not in [
                d["name"] for d in c.get("/v1/collections/api-laws/documents").json()["data"]
            ]
            assert c.delete("/v1/collections/api-laws").status_code == 200
            assert c.post("/v1/search", json={"query": "x", "collection": "api-laws"}).status_code == 404

            assert c.post("/v1/collections", json={"name": "api-new"}).status_code == 201
            r = c.post("/v1/collections/api-new/documents", files=files)  # at once: known to the primary
            assert r.status_code == 201 and r.json()["added"] == ["ha_giang"] and r.json()["chunks"] == 1
    finally:
        for name in ("api-laws", "api-new"):
            with contextlib.suppress(RagError):  # when the test did not get to remove it
                remove_collection(rag.settings, name)


def test_one_retriever_per_collection_under_concurrent_requests(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    from rag.api_collections import Collections

    rag, _ = make_rag(tmp_path, real_rag.embedder, store=str(tmp_path / "store"))
    folder = write(tmp_path / "laws", LAWS)
    index_collection(rag.settings, folder, "laws", embedder=rag.embedder)
    cols = Collections(rag)
    with ThreadPoolExecutor(8) as pool:
        first = {id(r.retriever) for r in pool.map(lambda _: cols.get("laws"), range(32))}
        assert len(first) == 1

        def searched(i: int) -> list[str]:
            return [h.doc_id for h in cols.get("laws").retrieve(Q_LAWS if i % 2 else Q_CORPUS, 3)]

        running = [pool.submit(searched, i) for i in range(64)]
        write(folder, {"ha_giang.txt": "Tỉnh Hà Giang có 88 cột mốc biên giới được cắm mới."})
        index_collection(rag.settings, folder, "laws", embedder=rag.embedder)  # while they search
        assert all(set(f.result()) <= {"quang_tri", "hue", "ha_giang"} for f in running)
        after = {id(r.retriever) for r in pool.map(lambda _: cols.get("laws"), range(32))}
    assert len(after) == 1 and after != first
    assert "ha_giang" in [h.doc_id for h in cols.get("laws").retrieve("Hà Giang có bao nhiêu cột mốc?", 1)]


def test_the_openai_package_picks_a_collection(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    openai = pytest.importorskip("openai")
    pytest.importorskip("uvicorn")
    from .api_fakes import live

    rag, _ = make_rag(tmp_path, real_rag.embedder, store=str(tmp_path / "store"), api_keys="sk-test")
    index_collection(rag.settings, write(tmp_path / "laws", LAWS), "laws", embedder=rag.embedder)
    with live(create_app(rag=rag, chat=False)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
        assert [m.id for m in client.models.list()] == ["default", "laws"]
        done = client.chat.completions.create(model="laws", messages=[{"role": "user", "content": Q_LAWS}])
        assert "321" in done.choices[0].message.content
        assert [c["document"] for c in done.model_extra["citations"]] == ["quang_tri"]
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="khong-co", messages=[{"role": "user", "content": Q_LAWS}])
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="../laws", messages=[{"role": "user", "content": Q_LAWS}])


def test_documents_are_not_added_beside_chunks_made_another_way(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    rag, _ = make_rag(tmp_path, real_rag.embedder, store=str(tmp_path / "store"))
    other = Settings(**{**rag.settings.__dict__, "chunk_tokens": 120})
    index_collection(other, write(tmp_path / "laws", LAWS), "laws", embedder=rag.embedder)
    with TestClient(create_app(rag=rag, chat=False)) as c:
        files = [("files", ("ha_giang.txt", "Tỉnh Hà Giang có 88 cột mốc.".encode(), "text/plain"))]
        r = c.post("/v1/collections/laws/documents", files=files)
        assert r.status_code == 400 and "rag index" in r.json()["error"]["message"]
        docs = c.get("/v1/collections/laws/documents").json()["data"]
        assert [d["name"] for d in docs] == ["hue", "quang_tri"]  # nothing re-embedded or removed
