"""Files → Documents: reading each format, front matter, cleaning. No models here."""

from __future__ import annotations

import glob
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import EmptyCorpusError
from .formats import Extracted
from .formats.legacy import decode_bytes
from .text import nfc
from .types import Document, Paragraph

logger = logging.getLogger(__name__)

TEXT = {".txt", ".md", ".markdown"}
HTML = {".html", ".htm"}
IMAGES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
OFFICE = {".docx", ".doc", ".xlsx", ".pptx", ".odt"}
SUPPORTED = TEXT | HTML | OFFICE | IMAGES | {".pdf"}
FORMATS = "text (.txt .md), web pages (.html), PDF (text or scanned), Word (.docx .doc), Excel (.xlsx), PowerPoint (.pptx), OpenDocument (.odt), images (.png .jpg .tif, by OCR)"

# Site furniture: lines that are page chrome, not content.
_FURNITURE = [
    re.compile(r"^Đường dây nóng\b", re.I),
    re.compile(r"^MỚI\s*[-–]\s*NÓNG$", re.I),
    re.compile(r"^(Quang cảnh|Toàn cảnh)\b.{0,80}$", re.I),  # photo captions
    re.compile(r"^\(?Ảnh( minh họa| minh hoạ)?\s*[:)]", re.I),
    re.compile(r"^(Chia sẻ|Bình luận|Xem thêm|Tin liên quan|Đọc thêm)\s*:?$", re.I),
]
_SOURCE = re.compile(r"^(?:Theo|Nguồn\s*:)\s*(\S.{0,80})$", re.I)


@dataclass
class Skipped:
    path: str
    reason: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def list_files(folder: Path) -> list[Path]:
    """Supported files below ``folder`` (sorted; hidden files and sidecars left out)."""
    if not folder.is_dir():
        raise EmptyCorpusError(f"corpus folder {folder} does not exist — create it and add documents")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUPPORTED
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def doc_id_for(path: Path, root: Path) -> str:
    """A stable id: the path relative to the corpus folder, without its extension."""
    rel = path.relative_to(root).with_suffix("")
    return rel.as_posix()


def source_file(root: str | Path, doc_id: str) -> Path | None:
    """The file a document was read from (``doc_id`` is its path without extension), only when
    it lies inside ``root``: a doc id such as ``../secret`` finds nothing."""
    base = Path(root).resolve()
    target = (base / doc_id).resolve()
    if not target.is_relative_to(base) or target == base:
        return None
    for path in sorted(target.parent.glob(glob.escape(target.name) + ".*")):
        if path.suffix.lower() in SUPPORTED and path.with_suffix("") == target and path.is_file():
            resolved = path.resolve()
            return resolved if resolved.is_relative_to(base) else None
    return None


def read_folder(folder: str | Path) -> tuple[list[Document], list[Skipped]]:
    """Read every supported file; broken files are skipped with a warning naming them."""
    root = Path(folder)
    docs, skipped = [], []
    for path in list_files(root):
        try:
            docs.append(read_file(path, doc_id_for(path, root)))
        except Exception as exc:  # noqa: BLE001 - a broken file must never stop the rest
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning("skipped %s: %s", path, reason)
            skipped.append(Skipped(str(path), reason))
    if not docs:
        why = "; ".join(f"{s.path} ({s.reason})" for s in skipped) or "no supported files"
        raise EmptyCorpusError(
            f"no readable documents in {root} ({why}). Add files in a supported format: {FORMATS}."
        )
    return docs, skipped


def read_file(path: Path, doc_id: str | None = None) -> Document:
    """Read one file into a cleaned Document. Raises ValueError (naming the reason) on files that
    cannot be read: undecodable, empty, password-protected, damaged, or images without text."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ValueError(f"unsupported file type {suffix!r}; use one of {sorted(SUPPORTED)}")
    raw = path.read_bytes()
    if not raw:
        raise ValueError("empty file (0 bytes)")
    ex = extract(path, raw)
    for w in ex.warnings:
        logger.warning("%s: %s", path, w)
    if ex.encoding:
        logger.info("%s: converted from %s to Unicode", path, ex.encoding)
    body, locations = _join(ex.sections)
    doc = clean(body, doc_id or path.stem, ex.meta.get("title", ""), ex.meta.get("source", ""))
    doc.locations = locations
    doc.path = str(path)
    doc.sha256 = hashlib.sha256(raw).hexdigest()
    doc.encoding = ex.encoding
    doc.ocr_pages = ex.ocr_pages
    if not doc.paragraphs:
        raise ValueError("no text content after cleaning")
    return doc


def extract(path: Path, raw: bytes) -> Extracted:
    """The text of one file in located sections, by its extension."""
    suffix = path.suffix.lower()
    if suffix in TEXT:
        body, encoding = decode_bytes(raw)
        meta, body = split_front_matter(body)
        ex = _markdown_sections(body) if suffix != ".txt" else Extracted(sections=[("", body)])
        ex.meta, ex.encoding = meta, "" if encoding == "utf-8" else encoding
        return ex
    if suffix in HTML:
        body, meta = _html_text(raw)
        return Extracted(sections=[("", body)], meta=meta)
    if suffix == ".pdf":
        from .formats.pdf import read_pdf

        return read_pdf(path)
    if suffix in IMAGES:
        from .formats.ocr import read_image

        return read_image(path)
    from .formats import office

    readers = {
        ".docx": office.read_docx,
        ".doc": office.read_doc,
        ".xlsx": office.read_xlsx,
        ".pptx": office.read_pptx,
        ".odt": office.read_odt,
    }
    return readers[suffix](path)


_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def _markdown_sections(body: str) -> Extracted:
    """Markdown split at its headings; each section's location is its heading."""
    from .formats.office import heading_location

    out = Extracted()
    location, lines = "", list[str]()
    for line in body.split("\n"):
        m = _MD_HEADING.match(line)
        if m:
            if lines:
                out.sections.append((location, "\n".join(lines)))
            location, lines = heading_location(m.group(1)), []
        lines.append(line)
    out.sections.append((location, "\n".join(lines)))
    return out


def _join(sections: list[tuple[str, str]]) -> tuple[str, list[tuple[int, str]]]:
    """One text from the sections (NFC each, so offsets hold) and where each location starts."""
    parts: list[str] = []
    locations: list[tuple[int, str]] = []
    pos = 0
    for location, text in sections:
        text = nfc(text)
        if parts:
            pos += 2
        if location and (not locations or locations[-1][1] != location):
            locations.append((pos, location))
        elif not location and locations:
            locations.append((pos, ""))
        parts.append(text)
        pos += len(text)
    return "\n\n".join(parts), locations


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """``---``-delimited ``key: value`` lines at the top of a text file."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}, text
    meta = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[end + 5 :]


def clean(text: str, doc_id: str, title: str = "", source: str = "") -> Document:
    """Find the content paragraphs of ``text`` (one per non-empty line); furniture is left out.

    Source credits ("Theo congluan.vn") become ``source``; a line repeating the one before it is
    dropped; without a title the first short line (or the first words) stands in.
    """
    paragraphs: list[Paragraph] = []
    prev = ""
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        stripped = line.strip()
        if not stripped:
            continue
        lead = len(line) - len(line.lstrip())
        s, e = start + lead, start + lead + len(stripped)
        m = _SOURCE.match(stripped)
        if m and len(stripped) < 80:
            source = source or m.group(1).strip()
            continue
        if any(p.search(stripped) for p in _FURNITURE):
            continue
        if stripped == prev:
            continue
        prev = stripped
        paragraphs.append(Paragraph(s, e))
    if not title and paragraphs:
        first = text[paragraphs[0].start : paragraphs[0].end]
        title = first if len(first) <= 120 else first[:80].rsplit(" ", 1)[0] + "…"
    return Document(doc_id=doc_id, title=title, text=text, paragraphs=paragraphs, source=source)


def _html_text(raw: bytes) -> tuple[str, dict[str, str]]:
    import trafilatura

    html = raw.decode("utf-8", errors="replace")
    text = trafilatura.extract(html, include_comments=False, include_tables=True)
    if not text:
        raise ValueError("no article text found in the HTML")
    meta = {}
    md = trafilatura.extract_metadata(html)
    if md is not None and md.title:
        meta["title"] = md.title
    if md is not None and md.sitename:
        meta["source"] = md.sitename
    return text, meta
