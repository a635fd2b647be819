"""OCR with Tesseract's Vietnamese model, for images and PDF pages without a text layer.

Output is made like any text: NFC, one tone-mark style, lines of a paragraph joined. Results are
cached by file content and page under ``<cache dir>/ocr/`` so re-indexing a scan is instant.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..text import nfc, tone_normalize
from . import Extracted

logger = logging.getLogger(__name__)

DPI = 300
LANG = "vie"
PAGE_TIMEOUT_S = 180


@lru_cache(maxsize=1)
def ocr_available() -> bool:
    """Tesseract, its Vietnamese model and pytesseract are all installed."""
    if not shutil.which("tesseract"):
        return False
    try:
        import pytesseract

        return LANG in pytesseract.get_languages(config="")
    except Exception:  # noqa: BLE001 - any failure here means: no OCR
        return False


def _require() -> None:
    if not ocr_available():
        raise ValueError(
            "OCR needs Tesseract with its Vietnamese model — install it with "
            "apt-get install tesseract-ocr tesseract-ocr-vie, and pip install pytesseract"
        )


def tidy(text: str) -> str:
    """OCR output as text: NFC, one tone style, the lines of each paragraph joined."""
    text = tone_normalize(nfc(text.replace("\x0c", "\n")))
    blocks = re.split(r"\n\s*\n", text)
    paras = []
    for block in blocks:
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        joined = ""
        for ln in lines:
            if joined.endswith("-") and ln[:1].islower():
                joined = joined[:-1] + ln  # a word broken across lines
            else:
                joined = f"{joined} {ln}" if joined else ln
        if joined:
            paras.append(joined)
    return "\n".join(paras)


def image_text(image: Any) -> str:
    """The text of one PIL image (300 dpi works best)."""
    import pytesseract

    _require()
    raw = pytesseract.image_to_string(image.convert("L"), lang=LANG, timeout=PAGE_TIMEOUT_S)
    return tidy(raw)


def _cache_dir() -> Path:
    from ..config import Settings

    return Path(Settings().cache_dir) / "ocr"


def _cached(key: str, make: Any) -> str:
    path = _cache_dir() / f"{key}.txt"
    if path.exists():
        return path.read_text("utf-8")
    text = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    except OSError:
        logger.debug("could not cache OCR text in %s", path)
    return str(text)


def _file_key(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


def ocr_pdf_pages(path: Path, pages: list[int]) -> dict[int, str]:
    """OCR the given 1-based pages of a PDF, rendered at 300 dpi; progress is logged per page."""
    import pypdfium2 as pdfium

    _require()
    key = _file_key(path)
    out: dict[int, str] = {}
    pdf = pdfium.PdfDocument(str(path))
    try:
        for i, n in enumerate(pages, 1):
            logger.info("OCR %s: page %d (%d/%d)", path.name, n, i, len(pages))

            def make(n: int = n) -> str:
                image = pdf[n - 1].render(scale=DPI / 72).to_pil()
                return image_text(image)

            out[n] = _cached(f"{key}-p{n}-{LANG}-{DPI}", make)
    finally:
        pdf.close()
    return out


def read_image(path: Path) -> Extracted:
    """An image (.png .jpg .tif, every page of a multi-page TIFF) read by OCR."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    _require()
    key = _file_key(path)
    out = Extracted()
    try:
        with Image.open(path) as img:
            frames = [f.copy() for f in ImageSequence.Iterator(img)]
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a readable image ({exc})") from exc
    for n, frame in enumerate(frames, 1):
        if len(frames) > 1:
            logger.info("OCR %s: page %d/%d", path.name, n, len(frames))
        text = _cached(f"{key}-p{n}-{LANG}", lambda frame=frame: image_text(frame))
        out.add(f"trang {n}" if len(frames) > 1 else "", text)
        out.ocr_pages += 1
    if not out.sections:
        raise ValueError("OCR found no text in the image")
    return out
