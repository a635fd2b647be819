"""Bad files fail cleanly: each is skipped with a warning that names the file and the reason."""

import logging
import zipfile
from pathlib import Path

import pytest

from rag.formats import ocr
from rag.ingest import read_folder

from .docfixtures import make_pdf


def _skips(folder: Path, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    (folder / "ok.txt").write_text("Văn bản hợp lệ vẫn được lập chỉ mục.", "utf-8")
    with caplog.at_level(logging.WARNING):
        docs, skipped = read_folder(folder)
    assert [d.doc_id for d in docs] == ["ok"]
    for s in skipped:
        assert Path(s.path).name in caplog.text  # the warning names the file
    return {Path(s.path).name: s.reason for s in skipped}


def test_password_protected_pdf(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pypdf import PdfReader, PdfWriter

    src = make_pdf(tmp_path / "src.pdf", ["Quyết định mật, không được phổ biến."])
    writer = PdfWriter()
    writer.append(PdfReader(str(src)))
    writer.encrypt(user_password="matkhau", owner_password="chu")
    folder = tmp_path / "c"
    folder.mkdir()
    with open(folder / "locked.pdf", "wb") as f:
        writer.write(f)
    assert "password-protected" in _skips(folder, caplog)["locked.pdf"]


def test_owner_password_only_pdf_is_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    from rag.ingest import read_file

    src = make_pdf(tmp_path / "src.pdf", ["Văn bản chỉ khóa quyền chỉnh sửa vẫn đọc được."])
    writer = PdfWriter()
    writer.append(PdfReader(str(src)))
    writer.encrypt(user_password="", owner_password="chu")
    with open(tmp_path / "ro.pdf", "wb") as f:
        writer.write(f)
    assert "vẫn đọc được" in read_file(tmp_path / "ro.pdf").text


def test_corrupt_office_files_and_zero_bytes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 this is not a zip archive at all")
    with zipfile.ZipFile(tmp_path / "notword.docx", "w") as z:
        z.writestr("hello.txt", "a zip, but not a Word document")
    (tmp_path / "broken.xlsx").write_bytes(b"\x00\x01garbage")
    (tmp_path / "broken.pptx").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    (tmp_path / "broken.odt").write_bytes(b"not a zip")
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "empty.txt").write_bytes(b"")
    reasons = _skips(tmp_path, caplog)
    assert set(reasons) == {
        "broken.docx",
        "notword.docx",
        "broken.xlsx",
        "broken.pptx",
        "broken.odt",
        "empty.pdf",
        "empty.txt",
    }
    assert "not a valid .docx" in reasons["broken.docx"] and "not a valid .docx" in reasons["notword.docx"]
    assert "not a valid .xlsx" in reasons["broken.xlsx"] and "not a valid .pptx" in reasons["broken.pptx"]
    assert "not a valid .odt" in reasons["broken.odt"]
    assert reasons["empty.pdf"].endswith("empty file (0 bytes)") and "0 bytes" in reasons["empty.txt"]


def test_image_without_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    if not ocr.ocr_available():
        pytest.skip("tesseract-ocr tesseract-ocr-vie not installed")
    Image.new("L", (800, 600), 255).save(tmp_path / "blank.png")
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "red.jpg")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    reasons = _skips(tmp_path, caplog)
    assert "no text" in reasons["blank.png"] and "no text" in reasons["red.jpg"]
    assert "not a readable image" in reasons["fake.png"]


def test_scans_without_tesseract_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from PIL import Image

    monkeypatch.setattr(ocr, "ocr_available", lambda: False)
    Image.new("L", (100, 100), 255).save(tmp_path / "scan.png")
    Image.new("L", (100, 100), 255).save(tmp_path / "scan2.pdf", "PDF")  # a page with no text layer
    reasons = _skips(tmp_path, caplog)
    assert "tesseract-ocr-vie" in reasons["scan.png"]
    assert "tesseract-ocr-vie" in reasons["scan2.pdf"]
