"""Files → Documents: reading each format, front matter, cleaning. No models here."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import EmptyCorpusError
from .text import nfc
from .types import Document, Paragraph

logger = logging.getLogger(__name__)

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}

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
            f"no readable documents in {root} ({why}). Add .txt, .md, .html, .pdf or .docx files."
        )
    return docs, skipped


def read_file(path: Path, doc_id: str | None = None) -> Document:
    """Read one file into a cleaned Document. Raises ValueError on undecodable or empty files."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ValueError(f"unsupported file type {suffix!r}; use one of {sorted(SUPPORTED)}")
    raw = path.read_bytes()
    meta: dict[str, str] = {}
    if suffix in {".txt", ".md", ".markdown"}:
        try:
            body = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text (byte {exc.start}); save the file as UTF-8") from exc
        meta, body = split_front_matter(body)
    elif suffix in {".html", ".htm"}:
        body, meta = _html_text(raw)
    elif suffix == ".pdf":
        body = _pdf_text(path)
    else:
        body = _docx_text(path)
    doc = clean(nfc(body), doc_id or path.stem, meta.get("title", ""), meta.get("source", ""))
    doc.path = str(path)
    doc.sha256 = hashlib.sha256(raw).hexdigest()
    if not doc.paragraphs:
        raise ValueError("no text content after cleaning")
    return doc


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


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    pages = [page.extract_text() or "" for page in reader.pages]
    text = "\n\n".join(pages)
    if not text.strip():
        raise ValueError("the PDF has no text layer (scanned?); run OCR on it first")
    return text


def _docx_text(path: Path) -> str:
    import docx

    document = docx.Document(str(path))
    return "\n".join(p.text for p in document.paragraphs)
