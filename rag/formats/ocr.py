"""OCR with Tesseract's Vietnamese model, for images and PDF pages without a text layer.

Output is made like any text: NFC, one tone-mark style, lines of a paragraph joined. Results are
cached by file content and page under ``<cache dir>/ocr/`` so re-indexing a scan is instant.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
    """Tesseract and its Vietnamese model are installed."""
    exe = shutil.which("tesseract")
    if not exe:
        return False
    try:
        done = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return LANG in done.stdout.split()


def _require() -> None:
    if not ocr_available():
        raise ValueError(
            "OCR needs Tesseract with its Vietnamese model — install it with "
            "apt-get install tesseract-ocr tesseract-ocr-vie"
        )


def _tesseract(png: bytes) -> str:
    """Run Tesseract on one PNG. One thread per page: pages run side by side instead (OpenMP
    threads inside one Tesseract are twice as slow on a busy 2-core machine)."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    cmd = [shutil.which("tesseract") or "tesseract", "stdin", "stdout", "-l", LANG, "--dpi", str(DPI)]
    try:
        done = subprocess.run(
            cmd, input=png, capture_output=True, timeout=PAGE_TIMEOUT_S, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ValueError(f"OCR of one page took over {PAGE_TIMEOUT_S}s") from exc
    if done.returncode != 0:
        raise ValueError(f"Tesseract failed: {done.stderr.decode('utf-8', 'replace').strip()[-300:]}")
    return done.stdout.decode("utf-8", "replace")


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
    from PIL import ImageOps

    _require()
    gray = image.convert("L")
    box = ImageOps.invert(gray).point(lambda v: 255 if v > 64 else 0).getbbox()
    if box is None:
        return ""  # a blank page
    pad = DPI // 10
    gray = gray.crop((max(box[0] - pad, 0), max(box[1] - pad, 0), box[2] + pad, box[3] + pad))
    buf = io.BytesIO()
    gray.save(buf, format="PPM")  # uncompressed: PNG encoding of a 300 dpi page costs seconds
    return tidy(_tesseract(buf.getvalue()))


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


def ocr_pdf_pages(path: Path, pages: list[int], workers: int = 0) -> dict[int, str]:
    """OCR the given 1-based pages of a PDF, rendered at 300 dpi, one Tesseract per core; each
    page is logged as it is done (a 200-page scan shows its progress, page by page)."""
    import pypdfium2 as pdfium

    _require()
    key = _file_key(path)
    out: dict[int, str] = {}
    todo = []
    for n in pages:
        cached = _cache_dir() / f"{key}-p{n}-{LANG}-{DPI}.txt"
        if cached.exists():
            out[n] = cached.read_text("utf-8")
        else:
            todo.append(n)
    if not todo:
        return out
    pdf = pdfium.PdfDocument(str(path))
    try:
        workers = workers or min(len(todo), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            running = {}
            for n in todo:  # rendering stays on this thread (pdfium is not thread-safe)
                image = pdf[n - 1].render(scale=DPI / 72).to_pil()
                running[pool.submit(_cached, f"{key}-p{n}-{LANG}-{DPI}", lambda im=image: image_text(im))] = n
                while len(running) > 2 * workers:  # bound the rendered pages held in memory
                    _collect(running, out, path, len(pages))
            while running:
                _collect(running, out, path, len(pages))
    finally:
        pdf.close()
    return out


def _collect(running: dict[Future[str], int], out: dict[int, str], path: Path, total: int) -> None:
    done, _ = wait(running, return_when=FIRST_COMPLETED)
    for fut in done:
        n = running.pop(fut)
        out[n] = fut.result()
        logger.info("OCR %s: page %d done (%d/%d)", path.name, n, len(out), total)


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
