"""Where a quote came from: page, slide, sheet or heading on every chunk, in citations and the chat."""

from pathlib import Path

import pytest

from rag.chunk import chunk_document
from rag.config import Settings
from rag.index import build_index
from rag.ingest import read_file, source_file
from rag.pipeline import RAG

from .conftest import CORPUS, FakeEmbedder
from .docfixtures import make_pdf

PAGES = [
    "Báo cáo tình hình kinh tế xã hội tỉnh Lào Cai năm 2025. Báo cáo gồm ba phần.",
    "Tổng sản phẩm trên địa bàn tỉnh tăng 8,5% so với năm trước, cao nhất vùng.",
    "Trong năm, tỉnh đã xây dựng 412 trạm phát sóng di động mới ở các xã vùng cao.",
]


def _rag(corpus: Path, tmp_path: Path) -> RAG:
    emb = FakeEmbedder()
    s = Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus), generator="extractive")
    build_index(settings=s, embedder=emb)
    return RAG(s, embedder=emb)


def test_three_page_pdf_cites_the_right_page(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_pdf(corpus / "bao_cao.pdf", PAGES)
    doc = read_file(corpus / "bao_cao.pdf")
    chunks = chunk_document(doc)
    assert [c.location for c in chunks] == ["trang 1", "trang 2", "trang 3"]  # never across a page
    for c, page in zip(chunks, PAGES):
        assert c.text == page
    rag = _rag(corpus, tmp_path)
    a = rag.ask("Tỉnh đã xây dựng bao nhiêu trạm phát sóng di động mới?")
    assert not a.abstained and "412" in a.text
    assert a.citations[0].location == "trang 3" and a.citations[0].doc_id == "bao_cao"
    a = rag.ask("Tổng sản phẩm trên địa bàn tỉnh tăng bao nhiêu phần trăm?")
    assert a.citations and a.citations[0].location == "trang 2"


def test_headings_of_docx_and_markdown(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Chương I. Quy định chung", level=1)
    d.add_paragraph("Quy chế này áp dụng cho các sở, ban, ngành.")
    d.add_heading("Chương II. Chuyển đổi số", level=1)
    d.add_paragraph("Mỗi cơ quan bố trí một cán bộ chuyên trách công nghệ thông tin.")
    d.save(str(tmp_path / "qc.docx"))
    (tmp_path / "kh.md").write_text(
        "# Mục tiêu\n\nPhủ sóng 5G toàn tỉnh.\n\n## Giải pháp\n\nĐào tạo kỹ năng số.\n"
    )
    by_text = {c.text: c.location for c in chunk_document(read_file(tmp_path / "qc.docx"))}
    assert by_text[
        "Chương II. Chuyển đổi số\nMỗi cơ quan bố trí một cán bộ chuyên trách công nghệ thông tin."
    ] == ("mục: Chương II. Chuyển đổi số")
    md = chunk_document(read_file(tmp_path / "kh.md"))
    assert [(c.location, c.text.split("\n")[-1]) for c in md] == [
        ("mục: Mục tiêu", "Phủ sóng 5G toàn tỉnh."),
        ("mục: Giải pháp", "Đào tạo kỹ năng số."),
    ]


def test_plain_text_has_no_location_and_ids_are_unchanged() -> None:
    doc = read_file(CORPUS / "000_f9ec1f25dfb5d511.txt")
    assert doc.locations == [] and all(c.location == "" for c in chunk_document(doc))


def test_source_file_stays_inside_the_corpus(tmp_path: Path) -> None:
    (tmp_path / "corpus" / "sub").mkdir(parents=True)
    (tmp_path / "corpus" / "sub" / "a.pdf").write_bytes(b"%PDF")
    (tmp_path / "secret.txt").write_text("x")
    root = tmp_path / "corpus"
    assert source_file(root, "sub/a") == (root / "sub" / "a.pdf").resolve()
    assert source_file(root, "../secret") is None
    assert source_file(root, "/etc/passwd") is None
    assert source_file(root, "sub/../../secret") is None
    assert source_file(root, "missing") is None


def test_source_card_names_the_page_and_links_the_file(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from rag.types import Answer, Citation
    from ui.app import ChatApp
    from ui.render import render_sources

    c = Citation(1, "bao_cao", "Báo cáo", PAGES[2], PAGES[2], "bao_cao#2-x", 0.9, location="trang 3")
    html = render_sources(Answer("q", "412 trạm [1].", [c]), link=lambda d: f"/gradio_api/file=/c/{d}.pdf")
    assert "trang 3" in html and 'href="/gradio_api/file=/c/bao_cao.pdf"' in html
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_pdf(corpus / "bao_cao.pdf", PAGES)
    app = ChatApp(
        rag=RAG(Settings(corpus_dir=str(corpus), index_dir=str(tmp_path / "i")), embedder=FakeEmbedder())
    )
    assert app.file_link("bao_cao").endswith("/corpus/bao_cao.pdf")
    assert app.file_link("../bao_cao") == "" and app.allowed_paths == [str(corpus.resolve())]
