"""Per-user document workspaces: safe uploads, a small collection of their own.

Each workspace has its own folder (``<upload_dir>/<id>/``) holding the user's files under
``docs/`` and an index of those files only under ``index/``. The chat searches it together with
the shared collection and fuses the results (``RAG.for_collection(uploads=…)``); the shared index
is never copied. Users never see each other's uploads. A failed upload leaves the workspace's
previous index as it was.
"""

from __future__ import annotations

import logging
import re
import shutil
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings
from .embed import Embedder
from .errors import UploadError
from .index import BuildReport, Progress, build_index
from .ingest import SUPPORTED, read_file

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES = 20


def safe_name(name: str) -> str:
    """A file name that cannot leave its folder: no path parts, no leading dots, plain characters."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").split("/")[-1])
    base = re.sub(r"[^\w.\-]+", "_", base).strip("._") or "tai_lieu"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = stem[:80] or "tai_lieu"
    return f"{stem}.{ext.lower()}" if ext else stem


def refusal(src: Path, name: str) -> str | None:
    """Why a file named ``name`` cannot be added (type, size, symlink), or ``None``."""
    if src.is_symlink():
        return "liên kết (symlink) không được chấp nhận"
    if not src.is_file():
        return "không phải tệp"
    ext = Path(name).suffix.lower()
    if ext not in SUPPORTED:
        return f"định dạng {ext or '(không có)'} không được hỗ trợ; dùng {', '.join(sorted(SUPPORTED))}"
    size = src.stat().st_size
    if size > MAX_FILE_BYTES:
        return f"tệp quá lớn ({size / 1e6:.1f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)"
    if size == 0:
        return "tệp rỗng"
    return None


@dataclass
class UploadReport:
    added: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    build: BuildReport | None = None


class Workspace:
    """One user's documents and index."""

    def __init__(self, settings: Settings, workspace_id: str | None = None) -> None:
        self.id = workspace_id or uuid.uuid4().hex
        if not re.fullmatch(r"[0-9a-f]{32}", self.id):
            raise UploadError("invalid workspace id")
        self.root = Path(settings.upload_dir) / self.id
        self.docs = self.root / "docs"
        self.index_dir = self.root / "index"
        self.base = settings
        self.settings = Settings(**{**settings.__dict__, "index_dir": str(self.index_dir)})

    @property
    def has_uploads(self) -> bool:
        return self.docs.is_dir() and any(self.docs.iterdir())

    def uploaded(self) -> list[str]:
        return sorted(p.name for p in self.docs.iterdir()) if self.docs.is_dir() else []

    def add(
        self, files: list[str | Path], embedder: Embedder, progress: Progress | None = None
    ) -> UploadReport:
        """Copy accepted files in, then re-index; unreadable files are reported and removed."""
        report = UploadReport()
        self.docs.mkdir(parents=True, exist_ok=True)
        staged: list[Path] = []
        for f in files:
            src = Path(f)
            name = safe_name(src.name)
            why = refusal(src, name)
            if why is None and len(self.uploaded()) + len(staged) >= MAX_FILES:
                why = f"tối đa {MAX_FILES} tệp cho mỗi phiên"
            if why is None:
                try:
                    read_file(src, name)  # parse before accepting: a broken file never enters the corpus
                except Exception as exc:  # noqa: BLE001
                    why = f"không đọc được: {exc}"
            if why:
                report.rejected.append((src.name, why))
                continue
            dest = self.docs / name
            n = 1
            while dest.exists():
                dest = self.docs / f"{Path(name).stem}_{n}{Path(name).suffix}"
                n += 1
            if dest.resolve().parent != self.docs.resolve():
                report.rejected.append((src.name, "tên tệp không hợp lệ"))
                continue
            shutil.copyfile(src, dest)
            staged.append(dest)
            report.added.append(dest.name)
        if not staged:
            return report
        try:
            report.build = self._reindex(embedder, progress)
        except Exception:
            for p in staged:  # undo: the previous index is still the one in use
                p.unlink(missing_ok=True)
            report.added.clear()
            raise
        return report

    def remove(self, name: str, embedder: Embedder, progress: Progress | None = None) -> BuildReport:
        """Delete one uploaded file and re-index; if that fails, the file is put back."""
        path = self.docs / name
        if safe_name(name) != name or not path.is_file():
            raise UploadError(f"no uploaded document named {name!r} — list them to see their names")
        data = path.read_bytes()
        path.unlink()
        if not self.has_uploads:  # the last one: no uploads index any more (the collection is searched alone)
            shutil.rmtree(self.index_dir, ignore_errors=True)
            return BuildReport(0, 0, 0, 0, [name], [], 0.0, 0.0, str(self.index_dir))
        try:
            return self._reindex(embedder, progress)
        except Exception:
            path.write_bytes(data)
            raise

    def _reindex(self, embedder: Embedder, progress: Progress | None) -> BuildReport:
        return build_index(
            self.docs, self.index_dir, settings=self.settings, embedder=embedder, progress=progress
        )
