"""PDFs: the text layer page by page ("trang N"), ruled tables as rows that keep their header, TCVN3/VNI
lines converted, and OCR for pages that have no text layer (scans)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import Extracted, table_rows
from .legacy import fix_legacy

logger = logging.getLogger(__name__)

MIN_TEXT_CHARS = 20  # a page with less text than this is treated as a scan when OCR is available


def _pypdf_pages(path: Path) -> list[str]:
    """Each page's text as pypdf reads it (it keeps every byte of legacy-font text, which pdfminer
    turns into spaces: TCVN3 "ư" is byte 0xAD); raises ValueError for locked or broken PDFs."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError(
                "the PDF is password-protected; remove the password (print to PDF) and add it again"
            )
        return [page.extract_text() or "" for page in reader.pages]
    except PdfReadError as exc:
        raise ValueError(f"not a readable PDF ({exc}); open and save it again") from exc


def _page_text(page: Any) -> str:
    """Text outside the page's tables, then each table as rows that keep the header."""
    tables = page.find_tables()
    boxes = [t.bbox for t in tables]

    def outside(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, top = obj["x0"], obj["top"]
        return not any(b[0] <= x <= b[2] and b[1] <= top <= b[3] for b in boxes)

    body = (page.filter(outside) if boxes else page).extract_text() or ""
    rows: list[str] = []
    for t in tables:
        rows.extend(table_rows(t.extract()))
    return "\n".join([body, *rows]) if rows else body


def read_pdf(path: Path, ocr: bool = True) -> Extracted:
    """Pages of a PDF; pages without a text layer are OCR'd when Tesseract is installed."""
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError

    plain = _pypdf_pages(path)
    out = Extracted()
    scans: list[int] = []
    try:
        with pdfplumber.open(str(path)) as pdf:
            title = str((pdf.metadata or {}).get("Title") or "").strip()
            if title:
                out.meta["title"] = fix_legacy(title)[0]
            for n, page in enumerate(pdf.pages, 1):
                text, found = fix_legacy(plain[n - 1] if n <= len(plain) else "")
                if found:  # a page typed in a TCVN3/VNI font
                    out.note_encoding(found)
                else:
                    text = _page_text(page)
                if len(text.strip()) < MIN_TEXT_CHARS:
                    scans.append(n)
                out.sections.append((f"trang {n}", text))
    except PDFSyntaxError as exc:
        raise ValueError(f"not a readable PDF ({exc}); open and save it again") from exc
    if scans and ocr:
        from .ocr import ocr_available, ocr_pdf_pages

        if ocr_available():
            texts = ocr_pdf_pages(path, scans)
            for n, text in texts.items():
                if len(text.strip()) > len(out.sections[n - 1][1].strip()):
                    out.sections[n - 1] = (f"trang {n}", text)
                    out.ocr_pages += 1
        else:
            out.warnings.append(
                f"{len(scans)} pages have no text layer and Tesseract is not installed "
                "(apt-get install tesseract-ocr tesseract-ocr-vie); they were left out"
            )
    out.sections = [(loc, text) for loc, text in out.sections if text.strip()]
    if not out.sections:
        raise ValueError(
            "the PDF has no text layer and OCR found no text (a scan without readable text?); "
            "install tesseract-ocr tesseract-ocr-vie or add a PDF with text"
        )
    return out
