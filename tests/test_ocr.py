"""OCR of scans and images with Tesseract's Vietnamese model (skipped when Tesseract is missing)."""

import logging
from pathlib import Path

import pytest

from rag.config import Settings
from rag.formats.ocr import ocr_available
from rag.index import build_index
from rag.ingest import read_file
from rag.text import tone_normalize

from .conftest import FakeEmbedder
from .docfixtures import cer, font, render_text

pytestmark = pytest.mark.skipif(not ocr_available(), reason="tesseract-ocr tesseract-ocr-vie not installed")

PARAGRAPH = (
    "Ủy ban nhân dân tỉnh Nghệ An ban hành kế hoạch chuyển đổi số năm 2025. "
    "Theo kế hoạch, 100% hồ sơ thủ tục hành chính được xử lý trực tuyến; người dân không phải đến trụ sở. "
    "Tỉnh phấn đấu đến năm 2030 kinh tế số chiếm 20% tổng sản phẩm trên địa bàn, "
    "đồng thời đào tạo kỹ năng số cho cán bộ, công chức và người lao động."
)


def test_png_at_300_dpi_read_with_low_character_error_rate(tmp_path: Path) -> None:
    font()
    render_text(PARAGRAPH).save(tmp_path / "scan.png", dpi=(300, 300))
    doc = read_file(tmp_path / "scan.png")
    assert doc.ocr_pages == 1
    rate = cer(doc.text, tone_normalize(PARAGRAPH))
    assert rate <= 0.03, f"CER {rate:.3%}: {doc.text!r}"
    assert "100% hồ sơ thủ tục hành chính được xử lý trực tuyến" in doc.text


def test_scanned_page_of_a_pdf_is_ocrd_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fpdf = pytest.importorskip("fpdf")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pdf = fpdf.FPDF()
    pdf.add_font("dejavu", fname=str(font()))
    pdf.set_font("dejavu", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Trang này có lớp chữ: báo cáo kết quả chuyển đổi số của tỉnh Nghệ An.")
    pdf.add_page(format=(210, 100))  # a signed page, scanned: an image and no text layer
    pdf.image(render_text(PARAGRAPH, width_px=2000), x=10, y=10, w=190)
    pdf.output(str(corpus / "qd.pdf"))
    with caplog.at_level(logging.INFO, logger="rag.formats.ocr"):
        doc = read_file(corpus / "qd.pdf")
    assert "OCR qd.pdf: page 2 done (1/1)" in caplog.text  # progress, page by page
    assert doc.ocr_pages == 1
    assert doc.text.startswith("Trang này có lớp chữ")
    i = doc.text.index("100% hồ sơ")
    assert doc.location_at(i) == "trang 2" and doc.location_at(0) == "trang 1"
    report = build_index(
        settings=Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus)), embedder=FakeEmbedder()
    )
    assert (report.ocr_pages, report.ocr_files) == (1, ["qd"])

    from rag.formats import ocr

    def no_ocr(png: bytes) -> str:
        raise AssertionError("OCR ran again for a page it had already read")

    monkeypatch.setattr(ocr, "_tesseract", no_ocr)
    assert read_file(corpus / "qd.pdf").text == doc.text  # from the OCR cache


@pytest.mark.slow
def test_image_only_pdf_and_multipage_tiff(tmp_path: Path) -> None:
    pages = [
        render_text(PARAGRAPH),
        render_text("Điều 2. Quyết định này có hiệu lực kể từ ngày ký ban hành."),
    ]
    first, rest = pages[0].copy(), [p.copy() for p in pages[1:]]
    pages[0].save(tmp_path / "scan.pdf", "PDF", resolution=300, save_all=True, append_images=pages[1:])
    first.save(tmp_path / "scan.tif", save_all=True, append_images=rest, dpi=(300, 300))
    for name in ("scan.pdf", "scan.tif"):
        doc = read_file(tmp_path / name)
        assert doc.ocr_pages == 2, name
        assert cer(doc.text.split("\n")[0], tone_normalize(PARAGRAPH)) <= 0.03
        assert doc.location_at(doc.text.index("Điều 2")) == "trang 2"
