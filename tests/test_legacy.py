"""Legacy Vietnamese encodings: Windows-1258, UTF-16, TCVN3 (ABC) and VNI, whole files and runs."""

import unicodedata
from pathlib import Path

import pytest

from rag.formats.legacy import (
    FROM_VNI,
    TO_VNI,
    decode_bytes,
    detect_legacy,
    fix_legacy,
    from_tcvn3,
    from_vni,
    is_syllable,
    to_tcvn3,
    to_vni,
)
from rag.ingest import read_file, read_folder

from .conftest import CORPUS

TONES = ["", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323"]
LETTERS = [unicodedata.normalize("NFC", b + t) for b in "aăâeêioôơuưy" for t in TONES] + ["đ"]
PARAGRAPH = (
    "Ủy ban nhân dân tỉnh Nghệ An ban hành kế hoạch chuyển đổi số năm 2025: "
    "100% hồ sơ được xử lý trực tuyến, người dân không phải đến trụ sở; "
    "đường truyền được nâng cấp, quỹ đầu tư khuyến khích doanh nghiệp đổi mới sáng tạo."
)


def cp1258(text: str) -> bytes:
    """Windows-1258 the way Vietnamese Windows writes it: a base letter, then a combining tone."""
    out = b""
    for c in unicodedata.normalize("NFC", text):
        try:
            out += c.encode("cp1258")
        except UnicodeEncodeError:
            d = unicodedata.normalize("NFD", c)
            tone = "".join(m for m in d if m in TONES)
            base = unicodedata.normalize("NFC", "".join(m for m in d if m not in TONES))
            out += base.encode("cp1258") + tone.encode("cp1258")
    return out


def test_every_letter_with_every_tone_round_trips() -> None:
    low = "".join(LETTERS)
    assert len(LETTERS) == 73
    assert from_tcvn3(to_tcvn3(low)) == low
    # TCVN3 capitals: the 7 with their own code, and all-caps text in a .VnTimeH font
    assert from_tcvn3(to_tcvn3("ĂÂĐÊÔƠƯ")) == "ĂÂĐÊÔƠƯ"
    assert from_tcvn3(to_tcvn3(low.upper()), capitals=True) == low.upper()
    for text in (low, low.upper(), low.capitalize()):
        assert from_vni(to_vni(text)) == text
    assert len(FROM_VNI) >= len(TO_VNI)  # one code per letter: decoding is unambiguous


def test_paragraph_round_trip_is_exact() -> None:
    tcvn = to_tcvn3(PARAGRAPH.replace("Ủy", "ủy"))
    assert tcvn.isascii() is False and all(ord(c) < 256 for c in tcvn)
    assert from_tcvn3(tcvn) == PARAGRAPH.replace("Ủy", "ủy")
    vni = to_vni(PARAGRAPH)
    assert all(ord(c) < 256 for c in vni)
    assert from_vni(vni) == PARAGRAPH
    assert detect_legacy(tcvn) == "tcvn3"
    assert detect_legacy(vni) == "vni"
    assert fix_legacy(vni) == (PARAGRAPH, "vni")


def test_real_unicode_is_never_touched() -> None:
    for line in [PARAGRAPH, "Tôi là ai", "Café au lait à Paris", "Cà phê", "Ông ấy đã về.", "Hà Nội"]:
        assert detect_legacy(line) == ""
    docs, _ = read_folder(CORPUS)
    for doc in docs:
        assert fix_legacy(doc.text) == (doc.text, "")
        assert doc.encoding == ""


def test_syllables() -> None:
    words = "người được quốc gìn giữ khuyến nghiêng hoá hóa uỷ thuở ạ ý oẳn"
    good = words.split()
    assert all(is_syllable(w) for w in good)
    assert not any(is_syllable(w) for w in ["Néi", "thñ", "ViÖt", "Haø", "Noäi", "café", "xyz"])


def test_files_in_each_encoding(tmp_path: Path) -> None:
    files = {
        "w1258.txt": cp1258(PARAGRAPH),
        "u16.txt": PARAGRAPH.encode("utf-16"),
        "u16le.txt": PARAGRAPH.encode("utf-16-le"),
        "tcvn3.txt": to_tcvn3(PARAGRAPH.replace("Ủy", "ủy")).encode("latin-1"),
        "vni.txt": to_vni(PARAGRAPH).encode("cp1252"),
    }
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
    docs = {d.doc_id: d for d in read_folder(tmp_path)[0]}
    assert docs["w1258"].text == PARAGRAPH and docs["w1258"].encoding == "windows-1258"
    assert cp1258(PARAGRAPH).count(b"\xcc") + cp1258(PARAGRAPH).count(b"\xf2") > 0  # combining marks
    assert docs["u16"].text == PARAGRAPH and docs["u16le"].text == PARAGRAPH
    assert docs["tcvn3"].text == PARAGRAPH.replace("Ủy", "ủy") and docs["tcvn3"].encoding == "tcvn3"
    assert docs["vni"].text == PARAGRAPH and docs["vni"].encoding == "vni"


def test_mixed_file_converted_only_where_needed(tmp_path: Path) -> None:
    unicode_line = "Tôi là ai, Hà Nội có bao nhiêu quận?"
    text = "\n".join([unicode_line, to_tcvn3("hà nội là thủ đô của việt nam."), to_vni("Chuyển đổi số.")])
    (tmp_path / "mixed.txt").write_text(text, "utf-8")
    doc = read_file(tmp_path / "mixed.txt")
    assert doc.text.split("\n") == [unicode_line, "hà nội là thủ đô của việt nam.", "Chuyển đổi số."]
    assert doc.encoding == "utf-8+tcvn3+vni"


def test_undecodable_bytes_still_refused() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        decode_bytes(b"\x81\x8d\x8f\x90\x9d garbage \xc3\x28")


def test_docx_runs_in_legacy_fonts(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    p = d.add_paragraph()
    p.add_run("Trụ sở mới: ")  # Unicode run, default font
    r = p.add_run(to_tcvn3("ủy ban nhân dân huyện đặt tại xã Tân Phước."))
    r.font.name = ".VnTime"
    caps = d.add_paragraph().add_run(to_tcvn3("QUYẾT ĐỊNH"))
    caps.font.name = ".VnTimeH"
    vni = d.add_paragraph().add_run(to_vni("Điều 1. Phê duyệt đề án chuyển đổi số."))
    vni.font.name = "VNI-Times"
    d.add_paragraph("Điều 2. Quyết định có hiệu lực từ ngày ký.")
    d.save(str(tmp_path / "qd.docx"))
    doc = read_file(tmp_path / "qd.docx")
    lines = doc.text.split("\n")
    assert lines == [
        "Trụ sở mới: ủy ban nhân dân huyện đặt tại xã Tân Phước.",
        "QUYẾT ĐỊNH",
        "Điều 1. Phê duyệt đề án chuyển đổi số.",
        "Điều 2. Quyết định có hiệu lực từ ngày ký.",
    ]
    assert doc.encoding == "tcvn3+vni"


def test_pdf_text_typed_in_tcvn3(tmp_path: Path) -> None:
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "Decision 15/QD-UBND", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 10, to_tcvn3("kế hoạch của tỉnh đến năm 2030, người dân được hưởng lợi."))  # a .VnTime PDF
    pdf.output(str(tmp_path / "old.pdf"))
    doc = read_file(tmp_path / "old.pdf")
    assert "kế hoạch của tỉnh đến năm 2030, người dân được hưởng lợi." in doc.text
    assert "Decision 15/QD-UBND" in doc.text
