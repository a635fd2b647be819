"""Building an index: list → hash → read (process pool) → chunk → embed → store, batch by batch.

Only new or changed files are read and embedded. Memory is bounded by a batch of chunks, not by
the corpus: each batch is stored as soon as it is embedded (whole files only), so a killed build
resumes where it stopped, and readers see the new files only when the store commits.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .chunk import chunk_document
from .config import Settings
from .embed import Embedder, make_embedder
from .errors import EmptyCorpusError, IndexMismatchError
from .ingest import FORMATS, Skipped, doc_id_for, list_files, read_file, sha256_file
from .stores import Build, Store, Tokens, chunk_tokens, passage_text
from .types import Chunk, Document

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total) files
EMBED_BATCH = 16  # texts per embedder call
POOL_MIN_FILES = 16  # below this, reading in the main process is faster than starting a pool

__all__ = ["BuildReport", "Progress", "build_index", "passage_text"]


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


def _read(path: str, doc_id: str) -> Document | str:
    try:
        return read_file(Path(path), doc_id)
    except Exception as exc:  # noqa: BLE001 - a broken file must never stop the rest
        return f"{type(exc).__name__}: {exc}"


def read_many(todo: list[tuple[Path, str]], workers: int) -> Iterator[tuple[Path, Document | str]]:
    """Documents in order, read by a process pool with a bounded window of files in flight."""
    if workers <= 1 or len(todo) < POOL_MIN_FILES:
        for path, doc_id in todo:
            yield path, _read(str(path), doc_id)
        return
    ctx = multiprocessing.get_context("spawn")  # safe in threaded processes (the chat)
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        window = workers * 8
        futures: list[tuple[Path, cf.Future[Document | str]]] = []
        for path, doc_id in todo:
            futures.append((path, pool.submit(_read, str(path), doc_id)))
            if len(futures) >= window:
                p, fut = futures.pop(0)
                yield p, fut.result()
        for p, fut in futures:
            yield p, fut.result()


class _Rate:
    """Chunks per second and the time left, for the progress line and the log."""

    def __init__(self, total_files: int) -> None:
        self.t0 = time.perf_counter()
        self.total = total_files
        self.files = 0
        self.chunks = 0

    def line(self) -> str:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - self.files) * dt / max(self.files, 1)
        return f"{self.files}/{self.total} files, {self.chunks} chunks, {self.chunks / dt:.1f} chunks/s, ETA {eta:.0f}s"


def build_index(
    corpus_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    store: Store | None = None,
    batch_chunks: int | None = None,
    workers: int | None = None,
    prune: bool = True,
) -> BuildReport:
    """Index every document in ``corpus_dir`` into ``store`` (default: the FAISS folder ``out_dir``).

    Only new or changed files are embedded; files gone from the folder are removed, unless
    ``prune`` is false (documents added to a collection one folder at a time).
    """
    from .stores.faiss import FaissStore

    s = settings or Settings()
    corpus = Path(corpus_dir or s.corpus_dir)
    out = str(out_dir or s.index_dir)
    st: Any = store or FaissStore(out, hnsw_threshold=s.hnsw_threshold)
    t0 = time.perf_counter()
    emb = embedder or make_embedder(s.embedder)
    build = Build(emb.id, emb.dim, s.chunk_tokens, s.overlap_sentences)
    batch_size = batch_chunks or s.index_batch
    paths = list_files(corpus)
    if not paths:
        raise EmptyCorpusError(f"no supported files in {corpus}. Add files in a supported format: {FORMATS}.")

    st.begin(build)
    old = st.build()
    stored = st.files()
    if old is not None and not old.same_chunks(build):
        logger.info("embedder or chunking changed (%s → %s): re-embedding everything", old.embedder, emb.id)
        for doc_id in stored:
            st.delete_file(doc_id)
        stored = {}
    current = {doc_id_for(p, corpus): p for p in paths}
    shas = {d: sha256_file(p) for d, p in current.items()}
    removed = sorted(set(stored) - set(current)) if prune else []
    changed = [d for d in current if d not in stored or stored[d]["sha256"] != shas[d]]
    for doc_id in removed + [d for d in changed if d in stored]:
        st.delete_file(doc_id)

    rate = _Rate(len(changed))
    skipped: list[Skipped] = []
    embedded, embed_seconds = 0, 0.0
    pending: list[tuple[Document, list[Chunk]]] = []
    ocr: dict[str, int] = {}  # pages read by OCR, per file read in this build
    converted: list[tuple[str, str]] = []  # files converted from an old encoding

    def flush() -> None:
        nonlocal embedded, embed_seconds
        chunks = [c for _, cs in pending for c in cs]
        t = time.perf_counter()
        texts = [passage_text(c) for c in chunks]
        parts = [emb.embed_documents(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        vecs = np.vstack(parts) if parts else np.zeros((0, emb.dim), np.float32)
        embed_seconds += time.perf_counter() - t
        toks: list[Tokens] = [chunk_tokens(c) for c in chunks]
        files = {d.doc_id: {"sha256": d.sha256, "title": d.title, "chunks": len(cs)} for d, cs in pending}
        st.add(chunks, np.asarray(vecs, np.float32).reshape(len(chunks), emb.dim), toks, files, build)
        embedded += len(chunks)
        rate.files += len(pending)
        rate.chunks += len(chunks)
        pending.clear()
        logger.info("indexing %s", rate.line())
        if progress:
            progress(rate.files, rate.total)

    todo = [(current[d], d) for d in changed]
    for path, doc in read_many(todo, workers if workers is not None else min(4, os.cpu_count() or 1)):
        if isinstance(doc, str):
            logger.warning("skipped %s: %s", path, doc)
            skipped.append(Skipped(str(path), doc))
            rate.total -= 1
            continue
        if doc.ocr_pages:
            ocr[doc.doc_id] = doc.ocr_pages
        if doc.encoding:
            converted.append((doc.doc_id, doc.encoding))
        pending.append(
            (doc, chunk_document(doc, s.chunk_tokens, s.overlap_sentences, count=emb.count_tokens))
        )
        if sum(len(cs) for _, cs in pending) >= batch_size:
            flush()
    if pending:
        flush()
    files = st.files()
    if not files:
        why = "; ".join(f"{k.path} ({k.reason})" for k in skipped) or "no supported files"
        raise EmptyCorpusError(
            f"no readable documents in {corpus} ({why}). Add files in a supported format: {FORMATS}."
        )
    st.commit()
    info = st.info()
    if info.embedder != emb.id:  # pragma: no cover - guarded above; a store must never mix embedders
        raise IndexMismatchError(f"{info.location} holds {info.embedder!r} vectors, not {emb.id!r}")
    return BuildReport(
        files=info.files,
        chunks=info.chunks,
        embedded=embedded,
        reused=info.chunks - embedded,
        removed=removed,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        embed_seconds=embed_seconds,
        out_dir=info.location,
        index_type=info.index_type,
        changed=changed,
        ocr_pages=sum(ocr.values()),
        ocr_files=list(ocr),
        converted=converted,
    )
