"""Readers for each family of file formats: what a file says and where (page, slide, sheet, heading).

Every reader returns an :class:`Extracted`: the file's text in sections, each with the location a
citation names ("trang 3", "trang chiếu 2", "trang tính Doanh thu", a heading). ``rag.ingest``
picks the reader by extension and turns the sections into one Document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Extracted:
    """Text read from one file, in order, with where each section came from."""

    sections: list[tuple[str, str]] = field(default_factory=list)  # (location, text)
    meta: dict[str, str] = field(default_factory=dict)  # title, source
    encoding: str = ""  # how the text was encoded when it was not plain Unicode (tcvn3, vni, …)
    ocr_pages: int = 0  # pages or images whose text came from OCR
    warnings: list[str] = field(default_factory=list)

    def add(self, location: str, text: str) -> None:
        if text.strip():
            self.sections.append((location, text))

    def note_encoding(self, found: str) -> None:
        for enc in filter(None, found.split("+")):
            if enc not in self.encoding.split("+"):
                self.encoding = "+".join(filter(None, [self.encoding, enc]))


def cell_text(value: object) -> str:
    """A table cell as one line of text ("" for empty cells; 2025.0 → 2025)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"\s+", " ", str(value)).strip()


def table_rows(rows: list[list[str]]) -> list[str]:
    """Rows of a table as sentences that keep the header: "Chỉ tiêu: Doanh thu; Năm 2025: 120 tỷ."

    The first non-empty row is the header. A row whose header cell is empty keeps the bare value;
    a table with a single row (or no header) gives its cells joined by " | ".
    """
    rows = [[cell_text(c) for c in r] for r in rows]
    rows = [r for r in rows if any(r)]
    if not rows:
        return []
    if len(rows) == 1:
        return [" | ".join(c for c in rows[0] if c)]
    header, out = rows[0], []
    for row in rows[1:]:
        parts = []
        for i, value in enumerate(row):
            if not value:
                continue
            name = header[i] if i < len(header) else ""
            parts.append(f"{name}: {value}" if name and name != value else value)
        if parts:
            out.append("; ".join(parts) + ".")
    return out
