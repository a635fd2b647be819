"""Office documents: Word (.docx, .doc through LibreOffice), Excel (.xlsx), PowerPoint (.pptx) and
OpenDocument text (.odt). Tables become rows that keep their header; headings, sheets and slides
become the locations citations name. Runs typed in TCVN3 (``.VnTime``) or VNI fonts are converted."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from . import Extracted, cell_text, table_rows
from .legacy import convert_run, fix_legacy

logger = logging.getLogger(__name__)

SOFFICE_TIMEOUT_S = 180


def heading_location(text: str) -> str:
    text = " ".join(text.split())
    return "mục: " + (text if len(text) <= 80 else text[:77].rsplit(" ", 1)[0] + "…")


# ------------------------------------------------------------------ Word


def _style_font(style: Any) -> str | None:
    while style is not None:
        name = style.font.name if getattr(style, "font", None) is not None else None
        if name:
            return str(name)
        style = style.base_style
    return None


def _paragraph_text(paragraph: Any, out: Extracted) -> str:
    """A paragraph's text, run by run, with TCVN3/VNI runs converted."""
    style_font = _style_font(paragraph.style)
    parts = []
    for run in paragraph.runs:
        text, enc = convert_run(run.text, run.font.name or style_font)
        out.note_encoding(enc)
        parts.append(text)
    text = "".join(parts) if paragraph.runs else paragraph.text
    text, found = fix_legacy(text)
    out.note_encoding(found)
    return text


def _is_heading(paragraph: Any) -> bool:
    name = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
    return name.startswith(("heading", "title", "tiêu đề"))


def read_docx(path: Path) -> Extracted:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as exc:
        raise ValueError(f"not a valid .docx file ({exc}); open and save it again in Word") from exc
    out = Extracted()
    location, lines = "", list[str]()

    def flush() -> None:
        out.add(location, "\n".join(lines))
        lines.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = [[_cell_text(cell, out) for cell in row.cells] for row in block.rows]
            lines.extend(table_rows(rows))
            continue
        text = _paragraph_text(block, out)
        if _is_heading(block) and text.strip():
            flush()
            location = heading_location(text)
        lines.append(text)
    flush()
    title = document.core_properties.title
    if title:
        out.meta["title"] = fix_legacy(title)[0]
    return out


def _cell_text(cell: Any, out: Extracted) -> str:
    return " ".join(_paragraph_text(p, out) for p in cell.paragraphs)


def read_doc(path: Path) -> Extracted:
    """A Word 97-2003 file, converted to .docx by LibreOffice headless."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        raise ValueError(
            "reading .doc needs LibreOffice (soffice), which is not installed — install it "
            "(apt-get install libreoffice-writer-nogui) or save the file as .docx"
        )
    with tempfile.TemporaryDirectory(prefix="rag-doc-") as tmp:
        profile = Path(tmp, "profile").as_uri()
        cmd = [soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "docx"]
        try:
            subprocess.run(
                [*cmd, "--outdir", tmp, str(path)],
                capture_output=True,
                timeout=SOFFICE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ValueError(
                f"LibreOffice took over {SOFFICE_TIMEOUT_S}s converting it; save it as .docx"
            ) from exc
        converted = Path(tmp, path.stem + ".docx")
        if not converted.exists():
            raise ValueError(
                "LibreOffice could not convert it (damaged or not a Word file); save it as .docx"
            )
        return read_docx(converted)


# ------------------------------------------------------------------ Excel


def read_xlsx(path: Path) -> Extracted:
    import openpyxl

    try:
        book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ValueError(f"not a valid .xlsx file ({exc}); open and save it again in Excel") from exc
    out = Extracted()
    try:
        for sheet in book.worksheets:
            rows = [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            text, found = fix_legacy("\n".join(table_rows(rows)))
            out.note_encoding(found)
            out.add(f"trang tính {sheet.title}", f"{sheet.title}\n{text}" if text else "")
    finally:
        book.close()
    return out


# ------------------------------------------------------------------ PowerPoint


def read_pptx(path: Path) -> Extracted:
    import pptx
    from pptx.exc import PackageNotFoundError

    try:
        deck = pptx.Presentation(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as exc:
        raise ValueError(f"not a valid .pptx file ({exc}); open and save it again in PowerPoint") from exc
    out = Extracted()
    for n, slide in enumerate(deck.slides, 1):
        lines: list[str] = []
        for shape in slide.shapes:
            if getattr(shape, "has_table", False) and shape.has_table:
                rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
                lines.extend(table_rows(rows))
            elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
                for para in shape.text_frame.paragraphs:
                    parts = []
                    for run in para.runs:
                        text, enc = convert_run(run.text, run.font.name)
                        out.note_encoding(enc)
                        parts.append(text)
                    lines.append("".join(parts))
        text, found = fix_legacy("\n".join(lines))
        out.note_encoding(found)
        out.add(f"trang chiếu {n}", text)
    return out


# ------------------------------------------------------------------ OpenDocument

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
}


def _q(prefix: str, tag: str) -> str:
    return f"{{{_NS[prefix]}}}{tag}"


def _odf_text(el: ElementTree.Element) -> str:
    parts = [el.text or ""]
    for child in el:
        if child.tag == _q("text", "s"):
            parts.append(" " * int(child.get(_q("text", "c"), "1")))
        elif child.tag == _q("text", "tab"):
            parts.append("\t")
        elif child.tag == _q("text", "line-break"):
            parts.append("\n")
        elif child.tag != _q("text", "note"):
            parts.append(_odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def read_odt(path: Path) -> Extracted:
    try:
        with zipfile.ZipFile(path) as z:
            root = ElementTree.fromstring(z.read("content.xml"))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise ValueError(f"not a valid .odt file ({exc}); open and save it again in LibreOffice") from exc
    body = root.find(f"{_q('office', 'body')}/{_q('office', 'text')}")
    out = Extracted()
    if body is None:
        return out
    location, lines = "", list[str]()

    def walk(el: ElementTree.Element) -> None:
        nonlocal location
        for child in el:
            if child.tag == _q("text", "h"):
                text = _odf_text(child)
                out.add(location, "\n".join(lines))
                lines.clear()
                location = heading_location(text) if text.strip() else location
                lines.append(text)
            elif child.tag == _q("text", "p"):
                lines.append(_odf_text(child))
            elif child.tag == _q("table", "table"):
                rows = [
                    [_odf_text(c) for c in row.iter(_q("table", "table-cell"))]
                    for row in child.iter(_q("table", "table-row"))
                ]
                lines.extend(table_rows(rows))
            else:
                walk(child)  # sections, lists, list items

    walk(body)
    out.add(location, "\n".join(lines))
    out.sections = [(loc, _fixed(text, out)) for loc, text in out.sections]
    return out


def _fixed(text: str, out: Extracted) -> str:
    text, found = fix_legacy(text)
    out.note_encoding(found)
    return text
