"""The saved index: chunks, vectors, a FAISS index and a manifest, written atomically.

Layout of the index folder::

    manifest.json            what was built, with what; names the files below
    chunks-<build>.jsonl     one chunk a line
    vectors-<build>.npy      float32 (n, dim), L2-normalised
    dense-<build>.faiss      the FAISS index over those vectors

Files of a build are written first, the manifest is replaced last with ``os.replace``, and only
then are the previous build's files removed: a crash at any point leaves a usable index.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexMismatchError, IndexNotFoundError
from .types import Chunk

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass
class Manifest:
    build: str
    embedder: str
    dim: int
    chunk_tokens: int
    overlap_sentences: int
    index_type: str
    count: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # doc_id -> {sha256, path, chunks}
    versions: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    @property
    def chunks_file(self) -> str:
        return f"chunks-{self.build}.jsonl"

    @property
    def vectors_file(self) -> str:
        return f"vectors-{self.build}.npy"

    @property
    def faiss_file(self) -> str:
        return f"dense-{self.build}.faiss"


def make_faiss(vectors: np.ndarray, hnsw_threshold: int, force: str = "") -> Any:
    """Exact inner-product search below ``hnsw_threshold`` vectors, HNSW above (or ``force``)."""
    import faiss

    dim = vectors.shape[1]
    kind = force or ("hnsw" if len(vectors) >= hnsw_threshold else "flat")
    index: Any
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def faiss_kind(index: Any) -> str:
    return "hnsw" if type(index).__name__.startswith("IndexHNSW") else "flat"


def _atomic_write(path: Path, write: Any) -> None:
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


def save(
    out_dir: str | Path, manifest: Manifest, chunks: list[Chunk], vectors: np.ndarray, index: Any
) -> None:
    """Write a build, then switch the manifest to it, then remove older builds' files."""
    import faiss

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old = read_manifest(out) if (out / MANIFEST).exists() else None

    def write_chunks(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")

    def write_vectors(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(vectors, dtype=np.float32))

    _atomic_write(out / manifest.chunks_file, write_chunks)
    _atomic_write(out / manifest.vectors_file, write_vectors)
    _atomic_write(out / manifest.faiss_file, lambda tmp: faiss.write_index(index, tmp))

    def write_manifest(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=1) + "\n", "utf-8")

    _atomic_write(out / MANIFEST, write_manifest)
    if old is not None and old.build != manifest.build:
        for name in (old.chunks_file, old.vectors_file, old.faiss_file):
            (out / name).unlink(missing_ok=True)


def read_manifest(index_dir: str | Path) -> Manifest:
    path = Path(index_dir) / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(
            f"no index in {index_dir} — build it with: rag index <corpus folder> --out {index_dir}"
        )
    data = json.loads(path.read_text("utf-8"))
    if data.get("format") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index in {index_dir} has format {data.get('format')}, this version reads "
            f"{FORMAT_VERSION} — rebuild it with: rag index <corpus folder> --out {index_dir}"
        )
    return Manifest(**data)


def check_compatible(manifest: Manifest, embedder_id: str, index_dir: str | Path) -> None:
    if manifest.embedder != embedder_id:
        raise IndexMismatchError(
            f"the index in {index_dir} was built with embedder {manifest.embedder!r}, but "
            f"{embedder_id!r} is configured. Rebuild with: rag index <corpus folder> --out {index_dir}"
            f" (with the same RAG_EMBEDDER), or set RAG_EMBEDDER to match the index."
        )


def load(index_dir: str | Path) -> tuple[Manifest, list[Chunk], np.ndarray, Any]:
    import faiss

    d = Path(index_dir)
    manifest = read_manifest(d)
    with open(d / manifest.chunks_file, encoding="utf-8") as f:
        chunks = []
        for line in f:
            raw = json.loads(line)
            raw["spans"] = [tuple(s) for s in raw["spans"]]
            chunks.append(Chunk(**raw))
    vectors = np.load(d / manifest.vectors_file)
    index = faiss.read_index(str(d / manifest.faiss_file))
    if index.ntotal != len(chunks) or len(vectors) != len(chunks):
        raise IndexMismatchError(
            f"the index in {index_dir} is inconsistent ({len(chunks)} chunks, {index.ntotal} "
            f"vectors) — rebuild it with: rag index <corpus folder> --out {index_dir}"
        )
    return manifest, chunks, vectors, index
