import logging
from pathlib import Path

import pytest

from rag.errors import EmptyCorpusError
from rag.ingest import clean, read_file, read_folder

from .conftest import CORPUS

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def paragraphs(doc):  # type: ignore[no-untyped-def]
    return [doc.text[p.start : p.end] for p in doc.paragraphs]


def test_corpus_text_is_the_seed_text_verbatim() -> None:
    if not SEEDS.is_dir():
        pytest.skip("seeds not beside the project")
    for seed in SEEDS.glob("*.txt"):
        doc = read_file(CORPUS / seed.name)
        assert doc.text == seed.read_text("utf-8").replace("\xa0", " ")


def test_each_file_read_on_its_own_no_glued_lines() -> None:
    docs, _ = read_folder(CORPUS)
    assert len(docs) == 5
    assert all("congluan.vnĐường" not in d.text for d in docs)


def test_furniture_removed_and_source_becomes_metadata() -> None:
    docs = {d.doc_id: d for d in read_folder(CORPUS)[0]}
    all_paras = [p for d in docs.values() for p in paragraphs(d)]
    assert not any(p.startswith("Đường dây nóng") for p in all_paras)
    assert "MỚI - NÓNG" not in all_paras
    assert not any(p.startswith("Quang cảnh") for p in all_paras)
    assert not any(p.startswith("Theo congluan") for p in all_paras)
    assert docs["000_f9ec1f25dfb5d511"].source == "congluan.vn"


def test_duplicate_lead_line_dropped_once() -> None:
    doc = read_file(CORPUS / "002_0866c275ce701a8e.txt")
    lead = "Trong thu hút đầu tư, Vĩnh Phúc không phê duyệt những dự án có nền tảng khoa học kỹ thuật lạc hậu mà lựa chọn những dây chuyền công nghệ tiên tiến."
    assert paragraphs(doc).count(lead) == 1
    assert doc.text.count(lead) == 2  # the original text is untouched


def test_single_newline_and_blank_line_paragraphs() -> None:
    doc = clean("Một.\nHai.\n\nBa.", "x")
    assert paragraphs(doc) == ["Một.", "Hai.", "Ba."]


def test_title_from_front_matter() -> None:
    doc = read_file(CORPUS / "004_ccc08ab033797ff4.txt")
    assert doc.title.startswith("Hải Dương")


def test_broken_files_skipped_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.txt").write_text("Chuyển đổi số là xu thế tất yếu.", "utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00broken \xc3\x28")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (tmp_path / "empty.md").write_text("   \n\n", "utf-8")
    with caplog.at_level(logging.WARNING):
        docs, skipped = read_folder(tmp_path)
    assert [d.doc_id for d in docs] == ["good"]
    names = sorted(Path(s.path).name for s in skipped)
    assert names == ["bad.pdf", "bad.txt", "empty.md"]
    assert "UTF-8" in next(s.reason for s in skipped if s.path.endswith("bad.txt"))
    assert "bad.pdf" in caplog.text


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmptyCorpusError, match="no readable documents"):
        read_folder(tmp_path)
    with pytest.raises(EmptyCorpusError, match="does not exist"):
        read_folder(tmp_path / "missing")


def test_docx_and_html(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_paragraph("Hội nghị chuyển đổi số tỉnh Bắc Ninh.")
    d.add_paragraph("Có 120 đại biểu tham dự.")
    d.save(str(tmp_path / "a.docx"))
    html = (
        "<html><head><title>Tin Bắc Ninh</title></head><body><nav>Trang chủ</nav><article><h1>Tin Bắc Ninh</h1>"
        "<p>Bắc Ninh đẩy mạnh chuyển đổi số trong toàn tỉnh, với nhiều chương trình hành động cụ thể.</p>"
        "<p>Tỉnh đặt mục tiêu hoàn thành chính quyền số vào năm 2025 và phát triển kinh tế số mạnh mẽ.</p>"
        "</article></body></html>"
    )
    (tmp_path / "b.html").write_text(html, "utf-8")
    docs, skipped = read_folder(tmp_path)
    by = {d.doc_id: d for d in docs}
    assert not skipped
    assert "120 đại biểu" in by["a"].text
    assert "chính quyền số" in by["b"].text


def test_pdf_text_layer(tmp_path: Path) -> None:
    content = b"BT /F1 12 Tf 72 720 Td (Digital transformation in Bac Ninh province.) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    (tmp_path / "c.pdf").write_bytes(out)
    doc = read_file(tmp_path / "c.pdf")
    assert "Digital transformation" in doc.text
