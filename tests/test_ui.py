"""The chat through its Gradio API, as a client program would use it (extractive: no LLM)."""

import json
from pathlib import Path

import pytest

from rag.ingest import read_folder

from .conftest import CORPUS

gr = pytest.importorskip("gradio")
pytest.importorskip("gradio_client")


def _text(message: dict) -> str:
    c = message["content"]
    return c if isinstance(c, str) else "".join(p.get("text", "") for p in c)


def test_answer_with_citation_quote_from_corpus(ui_server) -> None:  # type: ignore[no-untyped-def]
    from gradio_client import Client

    url, _ = ui_server
    chat, sources, timing, box = Client(url, verbose=False).predict(
        "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", [], "extractive", 5, True, api_name="/ask"
    )
    answer = _text(chat[-1])
    assert "13.000" in answer and "(#nguon-1)" in answer
    assert 'id="nguon-1"' in sources and "<mark>" in sources
    quote = sources.split("<mark>")[1].split("</mark>")[0]
    corpus = " ".join(d.text for d in read_folder(CORPUS)[0])
    assert quote.replace("<br>", "\n") in corpus
    assert timing.startswith("Thời gian: truy xuất") and box == ""


def test_off_topic_abstains(ui_server) -> None:  # type: ignore[no-untyped-def]
    from gradio_client import Client

    url, _ = ui_server
    chat, sources, _, _ = Client(url, verbose=False).predict(
        "Who won the 2018 FIFA World Cup?", [], "extractive", 5, True, api_name="/ask"
    )
    assert "Không tìm thấy" in _text(chat[-1]) and "nguon-" not in _text(chat[-1])
    assert "có thể liên quan" in sources and 'id="nguon-' not in sources


def test_document_text_is_escaped() -> None:
    from rag.types import Answer, Citation
    from ui.render import render_answer, render_sources

    evil = 'Tin <script>alert(1)</script><img src=x onerror="alert(2)"> hết.'
    a = Answer("q", evil + " [1]", [Citation(1, "d", "<b>t</b>", evil, evil, "d#0", 1.0, quote_start=0)])
    out = render_sources(a) + render_answer(a)
    assert "<script>" not in out and "<img" not in out and "&lt;script&gt;" in out


def test_follow_up_shows_how_it_was_understood() -> None:
    from rag.types import Answer, Timings
    from ui.render import render_timings

    a = Answer("Còn Hải Dương thì sao?", "…", timings=Timings(12.0, 900.0, 1500.0, 20))
    assert "hiểu là" not in render_timings(a)  # a question answered as asked needs no note
    a.asked = "Chuyển đổi số ở Hải Dương <b>đạt</b> kết quả gì?"
    line = render_timings(a)
    assert line.startswith("Câu hỏi được hiểu là: «Chuyển đổi số ở Hải Dương")
    assert "<b>" not in line and "\\<b\\>" in line  # the user's words stay text


def test_english_question_shows_its_translation() -> None:
    from rag.types import Answer, Timings
    from ui.render import render_timings

    a = Answer("Who chaired it?", "…", timings=Timings(12.0, 900.0, 1500.0, 20))
    assert "Searched" not in render_timings(a)
    a.searched = "Ai chủ trì *hội thảo*?"
    assert render_timings(a).startswith("Searched in Vietnamese as: «Ai chủ trì \\*hội thảo\\*?»")


def test_question_typed_without_diacritics_shows_how_it_was_read() -> None:
    from rag.types import Answer, Timings
    from ui.render import render_timings

    a = Answer("ai chu tri hoi thao", "…", timings=Timings(12.0, 900.0, 1500.0, 20))
    a.searched = "ai chủ trì hội thảo"
    assert render_timings(a).startswith("Câu hỏi được đọc là: «ai chủ trì hội thảo»")


def test_confidence_is_shown() -> None:
    from rag.types import Answer, Timings
    from ui.render import render_timings

    a = Answer("q", "6 giải pháp [1]", timings=Timings(12.0, 900.0, 1500.0, 20))
    assert "tin cậy" not in render_timings(a)  # not rated (extractive): nothing to show
    a.confidence = 0.87
    assert render_timings(a).startswith("Độ tin cậy: 87%")
    a.confidence, a.withheld, a.abstained = 0.2, "6 giải pháp [1]", True
    assert render_timings(a).startswith("Không đủ chắc chắn để trả lời: 20%")


def test_feedback_recorded(ui_server) -> None:  # type: ignore[no-untyped-def]
    import gradio as gr

    _, app = ui_server
    state = {"answers": [{"question": "q", "answer": "a [1]", "abstained": False, "sources": [{"n": 1}]}]}
    app.feedback(state, gr.LikeData(None, {"index": 1, "value": "a [1]", "liked": False}))
    line = Path(app.settings.feedback_file).read_text("utf-8").splitlines()[-1]
    rec = json.loads(line)
    assert rec["vote"] == "down" and rec["question"] == "q" and rec["sources"] == [{"n": 1}] and rec["time"]


def test_index_built_at_startup_when_missing(tmp_path: Path, corpus_copy: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.config import Settings
    from rag.pipeline import RAG
    from ui.app import ChatApp, ensure_index

    s = Settings(index_dir=str(tmp_path / "new-index"), corpus_dir=str(corpus_copy), generator="extractive")
    app = ChatApp(rag=RAG(s, embedder=fake_embedder))
    ensure_index(app)
    assert (tmp_path / "new-index" / "manifest.json").exists()
    assert "13.000" in app.rag.retrieve("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", 1)[0].text


def test_source_card_opens_the_original_file_read_only(ui_server) -> None:  # type: ignore[no-untyped-def]
    import re
    from html import unescape
    from urllib.parse import quote

    import httpx
    from gradio_client import Client

    url, _ = ui_server
    _, sources, _, _ = Client(url, verbose=False).predict(
        "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", [], "extractive", 5, True, api_name="/ask"
    )
    links = re.findall(r'href="(/gradio_api/file=[^"]+)"', sources)
    assert links and "mở tệp gốc" in sources
    got = httpx.get(url.rstrip("/") + unescape(links[0]), timeout=30)
    assert got.status_code == 200 and "Bưu điện" in got.content.decode("utf-8")
    corpus = str(CORPUS.resolve())
    for evil in [
        f"{corpus}/../pyproject.toml",
        quote(f"{corpus}/../README.md"),
        f"{corpus}/%2e%2e/pyproject.toml",
        str(CORPUS.parent.resolve() / "pyproject.toml"),
        "/etc/passwd",
    ]:
        r = httpx.get(f"{url}gradio_api/file={evil}", timeout=30)
        assert r.status_code in (403, 404), evil
        assert "[project]" not in r.text and "root:" not in r.text
    assert httpx.post(url.rstrip("/") + unescape(links[0]), timeout=30).status_code >= 400  # read-only


def test_the_collection_picker_shows_collections_made_later(tmp_path: Path, real_rag) -> None:  # type: ignore[no-untyped-def]
    from rag.collections import index_collection
    from rag.config import Settings
    from ui.app import ChatApp

    from .conftest import INDEX

    s = Settings(index_dir=str(INDEX), generator="extractive", store=str(tmp_path / "store"))
    app = ChatApp(s)
    demo = app.build()
    pick = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "Bộ tài liệu")
    assert pick.choices == [("corpus", "corpus")]  # type: ignore[attr-defined]
    (tmp_path / "laws").mkdir()
    (tmp_path / "laws" / "a.txt").write_text("Tỉnh Quảng Trị có 321 trạm quan trắc.", "utf-8")
    index_collection(s, tmp_path / "laws", "laws", embedder=real_rag.embedder)
    loads = [d for d in demo.fns.values() if any(t[1] == "load" for t in d.targets)]
    assert [d.outputs for d in loads] == [[pick]]
    assert loads[0].fn() == {"__type__": "update", "choices": ["corpus", "laws"]}
