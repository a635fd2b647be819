"""The FAISS store's manifest: what a build holds and how it was made, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import IndexMismatchError, IndexNotFoundError

MANIFEST = "manifest.json"
FORMAT_VERSION = 2


@dataclass
class Manifest:
    build: str
    embedder: str
    dim: int
    chunk_tokens: int
    overlap_sentences: int
    index_type: str
    count: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # doc_id -> {sha256, title, chunks}
    versions: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def names(self) -> list[str]:
        b = self.build
        out = [f"chunks-{b}.jsonl", f"offsets-{b}.npy", f"tokens-{b}.jsonl", f"dense-{b}.faiss", f"bm25-{b}"]
        if self.index_type == "hnsw-sq8":  # a quantised index: its float vectors beside it
            out.append(f"vectors-{b}.npy")
        return out


def atomic_write(path: Path, write: Callable[[str], Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(folder: str | Path) -> Manifest:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(
            f"no index in {folder} — build it with: rag index <corpus folder> --out {folder}"
        )
    data = json.loads(path.read_text("utf-8"))
    if data.get("format") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index in {folder} has format {data.get('format')}, this version reads "
            f"{FORMAT_VERSION} — rebuild it with: rag index <corpus folder> --out {folder}"
        )
    return Manifest(**data)


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("rag-vi", "faiss-cpu", "bm25s"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out
