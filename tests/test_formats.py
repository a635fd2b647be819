"""More formats: .doc (LibreOffice), .pptx, .xlsx, .odt, each read with its locations."""

import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index import build_index
from rag.ingest import SUPPORTED, read_file, read_folder
from rag.pipeline import RAG

from .conftest import FakeEmbedder
from .docfixtures import make_odt, make_pptx, make_xlsx


def _docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Quyết định thành lập", level=1)
    d.add_paragraph("Điều 1. Thành lập tổ công tác chuyển đổi số gồm 9 thành viên.")
    d.save(str(path))
    return path


def test_every_format_is_listed() -> None:
    for ext in [
        ".doc",
        ".docx",
        ".xlsx",
        ".pptx",
        ".odt",
        ".pdf",
        ".png",
        ".jpg",
        ".tif",
        ".txt",
        ".md",
        ".html",
    ]:
        assert ext in SUPPORTED


def test_doc_through_libreoffice(tmp_path: Path) -> None:
    soffice = shutil.which("soffice")
    if not soffice:
        pytest.skip("LibreOffice is not installed (scripts/install.sh installs it)")
    src = _docx(tmp_path / "src.docx")
    out = tmp_path / "out"
    profile = (tmp_path / "profile").as_uri()
    cmd = [
        soffice,
        f"-env:UserInstallation={profile}",
        "--headless",
        "--convert-to",
        "doc",
        "--outdir",
        str(out),
    ]
    subprocess.run([*cmd, str(src)], check=True, capture_output=True, timeout=180)
    doc = read_file(out / "src.doc")
    assert doc.text == "Quyết định thành lập\nĐiều 1. Thành lập tổ công tác chuyển đổi số gồm 9 thành viên."
    assert doc.locations == [(0, "mục: Quyết định thành lập")]


def test_doc_without_libreoffice_is_skipped_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    (tmp_path / "ok.txt").write_text("Văn bản còn lại vẫn được đọc.", "utf-8")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING):
        docs, skipped = read_folder(tmp_path)
    assert [d.doc_id for d in docs] == ["ok"]
    assert Path(skipped[0].path).name == "old.doc" and "LibreOffice" in skipped[0].reason
    assert "old.doc" in caplog.text and "LibreOffice" in caplog.text


def test_pptx_slide_cited(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_pptx(
        corpus / "hop.pptx",
        [
            ("Hội nghị sơ kết", "Sở Thông tin và Truyền thông tổ chức hội nghị sơ kết 6 tháng."),
            ("Kết quả", "Tỉnh đã cấp 35.000 chữ ký số cho người dân trong 6 tháng đầu năm."),
            ("Nhiệm vụ", "Tiếp tục triển khai nền tảng học trực tuyến mở."),
        ],
    )
    emb = FakeEmbedder()
    s = Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus), generator="extractive")
    report = build_index(settings=s, embedder=emb)
    assert report.files == 1 and not report.skipped
    a = RAG(s, embedder=emb).ask("Tỉnh đã cấp bao nhiêu chữ ký số cho người dân?")
    assert "35.000" in a.text and a.citations[0].location == "trang chiếu 2"


def test_xlsx_and_odt_locations(tmp_path: Path) -> None:
    make_xlsx(tmp_path / "a.xlsx", {"Tổng hợp": [["Đơn vị", "Số cán bộ"], ["Sở Tài chính", 40]], "Trống": []})
    doc = read_file(tmp_path / "a.xlsx")
    assert doc.text == "Tổng hợp\nĐơn vị: Sở Tài chính; Số cán bộ: 40."
    assert doc.locations == [(0, "trang tính Tổng hợp")]
    make_odt(tmp_path / "b.odt", [("p", "Lời mở đầu."), ("h", "Phần một"), ("p", "Nội dung phần một.")])
    doc = read_file(tmp_path / "b.odt")
    assert doc.text == "Lời mở đầu.\n\nPhần một\nNội dung phần một."
    assert doc.location_at(doc.text.index("Nội dung")) == "mục: Phần một" and doc.location_at(0) == ""
