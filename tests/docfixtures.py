"""Documents built by the tests themselves: PDFs, Office files, images of Vietnamese text."""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def font() -> Path:
    if not FONT.exists():
        pytest.skip("fonts-dejavu-core is not installed (scripts/install.sh installs it)")
    return FONT


def make_pdf(path: Path, pages: list[str], table: list[list[str]] | None = None) -> Path:
    """A PDF with a text layer in a Vietnamese font: one page per text; ``table`` (ruled, with its
    header row) goes on the last page."""
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.add_font("dejavu", fname=str(font()))
    pdf.add_font("dejavu", style="B", fname=str(font().with_name("DejaVuSans-Bold.ttf")))
    pdf.set_font("dejavu", size=12)
    for n, text in enumerate(pages):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
        if table and n == len(pages) - 1:
            pdf.ln(4)
            with pdf.table() as t:
                for row in table:
                    r = t.row()
                    for cell in row:
                        r.cell(cell)
    pdf.output(str(path))
    return path


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(str(path))
    return path


def make_pptx(path: Path, slides: list[tuple[str, str]], table: list[list[str]] | None = None) -> Path:
    pptx = pytest.importorskip("pptx")
    from pptx.util import Inches

    deck = pptx.Presentation()
    for n, (title, body) in enumerate(slides):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if table and n == len(slides) - 1:
            shape = slide.shapes.add_table(
                len(table), len(table[0]), Inches(1), Inches(4), Inches(6), Inches(1)
            )
            for i, row in enumerate(table):
                for j, cell in enumerate(row):
                    shape.table.cell(i, j).text = cell
    deck.save(str(path))
    return path


def make_odt(path: Path, blocks: list[tuple[str, str]]) -> Path:
    """An OpenDocument text file by hand: ("h", heading), ("p", paragraph) or ("t", "a|b;c|d")."""
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
    )
    body = []
    for kind, text in blocks:
        if kind == "h":
            body.append(f'<text:h text:outline-level="1">{escape(text)}</text:h>')
        elif kind == "p":
            body.append(f"<text:p>{escape(text)}</text:p>")
        else:
            rows = "".join(
                "<table:table-row>"
                + "".join(
                    f"<table:table-cell><text:p>{escape(c)}</text:p></table:table-cell>" for c in r.split("|")
                )
                + "</table:table-row>"
                for r in text.split(";")
            )
            body.append(f'<table:table table:name="T1">{rows}</table:table>')
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} office:version="1.2">'
        f"<office:body><office:text>{''.join(body)}</office:text></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", content)
        z.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
            '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>",
        )
    return path


def render_text(text: str, width_px: int = 2200, dpi: int = 300, size_pt: int = 12):  # type: ignore[no-untyped-def]
    """A white page image of ``text`` in DejaVu Sans at ``size_pt`` points, as printed at ``dpi``."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(font()), round(size_pt * dpi / 72))
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            trial = f"{line} {word}".strip()
            if face.getlength(trial) > width_px - 2 * dpi // 3:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
        lines.append("")
    step = round(size_pt * dpi / 72 * 1.5)
    img = Image.new("L", (width_px, step * (len(lines) + 2) + dpi // 2), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((dpi // 3, dpi // 3 + i * step), line, font=face, fill=0)
    return img


def cer(found: str, expected: str) -> float:
    """Character error rate: edit distance over the expected length (spacing normalised)."""
    a, b = " ".join(found.split()), " ".join(expected.split())
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1] / max(len(b), 1)
