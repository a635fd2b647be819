"""The embedded store: FAISS + bm25s in a folder, for one machine.

Layout of a collection's folder::

    manifest.json            what was built, with what; names the files below
    chunks-<build>.jsonl     one chunk a line; offsets-<build>.npy says where each line starts
    tokens-<build>.jsonl     each chunk's BM25 tokens (to rebuild BM25 when files change)
    dense-<build>.faiss      normalised vectors: exact inner product; above a threshold, HNSW over
                             8-bit quantised vectors (older builds: HNSW over float vectors)
    vectors-<build>.npy      the float vectors of a quantised build (exact re-ranking reads them by row)
    bm25-<build>/norm|fold/  the two BM25 indexes (``compact.py``; older builds: bm25s'), memory-mapped
    pending/                 files added since the last commit (kept if the process is killed)

A commit writes a new build beside the old one and replaces the manifest last with
``os.replace``: readers see the old build or the new one, never half of one. Loading reads no
chunk text (lines are read on demand), memory-maps BM25 (``compact.py`` reads it in when it fits
in memory) and a quantised build's float vectors, and takes an exact index's vectors from the FAISS
index itself rather than from a second copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexMismatchError, IndexNotFoundError
from ..types import Chunk
from . import DEFAULT_COLLECTION, FIELDS, Build, QueryKey, StoreInfo, Tokens, query_key
from .compact import CompactPostings, is_compact
from .compact import write as write_postings
from .faiss_index import (
    EF_SEARCH,
    HNSW_THRESHOLD,
    SQ8,
    dense_search,
    faiss_vectors,
    fill,
    index_type,
    make_faiss,
    top_k,
)
from .manifest import MANIFEST, Manifest, atomic_write, read_manifest, versions
from .postings import Field, Fields, Postings, bm25_at, bm25_top

__all__ = ["FaissStore", "Manifest", "make_faiss", "read_manifest", "top_k"]

logger = logging.getLogger(__name__)

PENDING = "pending"


def _bytes(folder: Path) -> int:
    """Size of the files under ``folder``; those a commit removes meanwhile (an old build) count 0."""
    total = 0
    for root, _, names in os.walk(folder):  # os.walk skips folders that vanish; rglob raises
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def _postings(folder: Path) -> Field:
    if is_compact(folder):
        return CompactPostings(folder)
    import bm25s  # a build from before the compact postings

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return Postings(bm25s.BM25.load(str(folder), mmap=True, show_progress=False), folder)


class _Loaded:
    """A committed build, opened for searching."""

    def __init__(self, folder: Path, m: Manifest) -> None:
        import faiss

        b = m.build
        self.manifest = m
        self.index = faiss.read_index(str(folder / f"dense-{b}.faiss"))
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = EF_SEARCH
        self.rerank = m.index_type == SQ8  # quantised: the float vectors are kept beside, memory-mapped
        if self.rerank:
            self.vectors = np.load(folder / f"vectors-{b}.npy", mmap_mode="r")
            self._vfh = open(folder / f"vectors-{b}.npy", "rb")  # noqa: SIM115 - kept open, as the chunks
        else:
            self.vectors = faiss_vectors(self.index)
        self.offsets = np.load(folder / f"offsets-{b}.npy", mmap_mode="r")
        self.chunk_path = folder / f"chunks-{b}.jsonl"
        self._fh = open(self.chunk_path, "rb")  # noqa: SIM115 - kept open: readable after a new commit
        self.bm25 = {f: _postings(folder / f"bm25-{b}" / f) for f in (FIELDS if m.count else ())}
        if not (self.index.ntotal == len(self.offsets) - 1 == m.count == len(self.vectors)):
            raise IndexMismatchError(
                f"the index in {folder} is inconsistent ({m.count} chunks, {self.index.ntotal} "
                f"vectors) — rebuild it with: rag index <corpus folder> --out {folder}"
            )

    def floats(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The float vectors of ``rows``. A quantised build reads them from the file by row rather
        than through its memory map: the kernel would map the pages around each scattered read
        too, and a server's resident memory would grow by half the file (600 MB at 1M) for ~100
        vectors a query."""
        if not self.rerank:
            return np.asarray(self.vectors[rows], np.float32)
        d = self.vectors.shape[1]
        size, base = 4 * d, self.vectors.offset
        fd = self._vfh.fileno()
        out = np.empty((len(rows), d), np.float32)
        for i, r in enumerate(rows):
            out[i] = np.frombuffer(os.pread(fd, size, base + int(r) * size), np.float32)
        return out

    def fields(self, query: Tokens) -> Fields:
        return [(self.bm25[f], list(query[f])) for f in self.bm25 if query.get(f)]

    def chunks(self, rows: list[int]) -> list[Chunk]:
        out = []
        for r in rows:
            start, end = int(self.offsets[r]), int(self.offsets[r + 1])
            raw = json.loads(os.pread(self._fh.fileno(), end - start, start))
            raw["spans"] = [tuple(s) for s in raw["spans"]]
            out.append(Chunk(**raw))
        return out

    def close(self) -> None:
        self._fh.close()
        if self.rerank:
            self._vfh.close()


class FaissStore:
    """One collection in a folder. Safe for concurrent readers; one writer at a time."""

    def __init__(
        self, folder: str | Path, collection: str = DEFAULT_COLLECTION, hnsw_threshold: int = HNSW_THRESHOLD
    ) -> None:
        self.dir = Path(folder)
        self.collection = collection
        self.hnsw_threshold = hnsw_threshold
        self._loaded: _Loaded | None = None
        self._sig: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._last: tuple[QueryKey, _Loaded, dict[int, float]] | None = None

    # reading --------------------------------------------------------------------------------

    @property
    def loaded(self) -> _Loaded:
        """The committed build; re-opened when another process commits a new one."""
        with self._lock:
            for attempt in range(3):
                sig = self._signature()
                if self._loaded is not None and sig == self._sig:
                    break
                try:
                    self._loaded, self._sig = _Loaded(self.dir, read_manifest(self.dir)), sig
                except FileNotFoundError:  # a commit removed that build while it was being opened
                    if attempt == 2 or self._signature() == sig:
                        raise
            assert self._loaded is not None
            return self._loaded

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = (self.dir / MANIFEST).stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def manifest(self) -> Manifest | None:
        return read_manifest(self.dir) if (self.dir / MANIFEST).exists() else None

    def build(self) -> Build | None:
        m = self.manifest()
        if m is None:
            return None
        return Build(m.embedder, m.dim, m.chunk_tokens, m.overlap_sentences, m.calibration)

    def dense_search(self, qv: np.ndarray, k: int) -> list[tuple[int, float]]:
        ld = self.loaded
        return dense_search(ld.index, qv, k, ld.floats if ld.rerank else None)

    def sparse_search(self, query: Tokens, k: int) -> list[tuple[int, float]]:
        ld = self.loaded
        found = bm25_top(ld.fields(query), k)
        self._last = (query_key(query), ld, dict(found))  # scores() of these candidates: no second pass
        return found

    def scores(
        self, rows: list[int], qv: np.ndarray | None, query: Tokens | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        ld = self.loaded
        dense = ld.floats(rows) @ np.asarray(qv, np.float32) if qv is not None else None
        sparse = None
        if query is not None:
            last = self._last
            known = last[2] if last is not None and last[1] is ld and last[0] == query_key(query) else {}
            missing = [r for r in rows if r not in known]
            got = dict(zip(missing, bm25_at(ld.fields(query), missing).tolist())) if missing else {}
            sparse = np.array([known[r] if r in known else got[r] for r in rows], np.float32)
        return dense, sparse

    def chunks(self, rows: list[int]) -> list[Chunk]:
        return self.loaded.chunks(rows)

    def info(self) -> StoreInfo:
        m = read_manifest(self.dir)
        size = _bytes(self.dir)
        return StoreInfo(
            self.collection, m.embedder, m.dim, len(m.files), m.count, size, str(self.dir), m.index_type
        )

    # writing: files are staged in pending/ and become visible at commit -----------------------

    @property
    def _pending(self) -> Path:
        return self.dir / PENDING

    def _pending_state(self) -> dict[str, Any]:
        p = self._pending / "state.json"
        return json.loads(p.read_text("utf-8")) if p.exists() else {"deleted": [], "dropped": []}

    def _save_state(self, state: dict[str, Any]) -> None:
        self._pending.mkdir(parents=True, exist_ok=True)
        text = json.dumps(state, ensure_ascii=False)
        atomic_write(self._pending / "state.json", lambda tmp: Path(tmp).write_text(text, "utf-8"))

    def _batches(self) -> list[tuple[int, dict[str, Any]]]:
        """Complete staged batches (their marker is written last), in order."""
        out = []
        for p in sorted(self._pending.glob("batch-*.json")) if self._pending.is_dir() else []:
            out.append((int(p.stem.split("-")[1]), json.loads(p.read_text("utf-8"))))
        return out

    def _pending_build(self) -> Build | None:
        p = self._pending / "build.json"
        return Build(**json.loads(p.read_text("utf-8"))) if p.exists() else None

    def files(self) -> dict[str, dict[str, Any]]:
        m = self.manifest()
        state = self._pending_state()
        out = {k: v for k, v in (m.files if m else {}).items() if k not in set(state["deleted"])}
        dropped = {tuple(d) for d in state["dropped"]}
        for n, meta in self._batches():
            out.update({k: v for k, v in meta["files"].items() if (n, k) not in dropped})
        return out

    def begin(self, build: Build) -> None:
        """Prepare to add files made with ``build``: rows staged by another build are dropped."""
        staged = self._pending_build()
        if staged is not None and not staged.same_chunks(build):
            logger.info("dropping rows staged in %s by %s", self._pending, staged.embedder)
            self.discard_pending()

    def discard_pending(self) -> None:
        shutil.rmtree(self._pending, ignore_errors=True)

    def add(
        self,
        chunks: list[Chunk],
        vectors: np.ndarray,
        toks: list[Tokens],
        files: dict[str, dict[str, Any]],
        build: Build,
    ) -> None:
        self.begin(build)
        self._pending.mkdir(parents=True, exist_ok=True)
        if not (self._pending / "build.json").exists():
            text = json.dumps(asdict(build))
            atomic_write(self._pending / "build.json", lambda tmp: Path(tmp).write_text(text, "utf-8"))
        n = max((b for b, _ in self._batches()), default=-1) + 1
        base = self._pending / f"batch-{n:06d}"

        def write_rows(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                for c, t in zip(chunks, toks):
                    f.write(json.dumps({"chunk": asdict(c), "tokens": t}, ensure_ascii=False) + "\n")

        def write_vectors(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(vectors, np.float32))

        atomic_write(base.with_suffix(".jsonl"), write_rows)
        atomic_write(base.with_suffix(".npy"), write_vectors)
        text = json.dumps({"files": files}, ensure_ascii=False)
        atomic_write(base.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text, "utf-8"))

    def delete_file(self, doc_id: str) -> None:
        state = self._pending_state()
        m = self.manifest()
        if m and doc_id in m.files and doc_id not in state["deleted"]:
            state["deleted"].append(doc_id)
        for n, meta in self._batches():
            if doc_id in meta["files"] and [n, doc_id] not in state["dropped"]:
                state["dropped"].append([n, doc_id])
        self._save_state(state)

    def has_changes(self) -> bool:
        state = self._pending_state()
        return bool(state["deleted"] or state["dropped"] or self._batches())

    def _rows(self, m: Manifest | None, state: dict[str, Any]) -> Iterator[tuple[str, Tokens, np.ndarray]]:
        """(chunk json line, tokens, vector) of every row of the next build, committed rows first."""
        if m is not None:
            deleted = set(state["deleted"])
            ld = _Loaded(self.dir, m)
            with (
                open(ld.chunk_path, encoding="utf-8") as cf,
                open(self.dir / f"tokens-{m.build}.jsonl", encoding="utf-8") as tf,
            ):
                for i, (line, tline) in enumerate(zip(cf, tf)):
                    if json.loads(line)["doc_id"] not in deleted:
                        yield line.rstrip("\n"), json.loads(tline), ld.vectors[i]
        dropped = {tuple(d) for d in state["dropped"]}
        for n, _ in self._batches():
            base = self._pending / f"batch-{n:06d}"
            vecs = np.load(base.with_suffix(".npy"), mmap_mode="r")
            with open(base.with_suffix(".jsonl"), encoding="utf-8") as f:
                for i, line in enumerate(f):
                    row = json.loads(line)
                    if (n, row["chunk"]["doc_id"]) not in dropped:
                        yield json.dumps(row["chunk"], ensure_ascii=False), row["tokens"], vecs[i]

    def commit(self) -> None:
        """Write a new build from the committed rows and the staged ones, then switch to it."""
        m = self.manifest()
        build = self._pending_build() or self.build()
        if build is None:
            raise IndexNotFoundError(f"nothing to commit in {self.dir}: no files were added")
        if m is not None and not self.has_changes() and m.embedder == build.embedder:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._pending_state()
        files = self.files()
        count = sum(int(v["chunks"]) for v in files.values())
        index = make_faiss(build.dim, count, self.hnsw_threshold)
        tmp = Path(tempfile.mkdtemp(dir=self.dir, prefix=".build-"))
        try:
            digest, n = self._write_rows(tmp, m, state, index, count)
            bid = digest.hexdigest()[:12]
            self._write_bm25(tmp, n)
            manifest = Manifest(
                build=bid,
                embedder=build.embedder,
                dim=build.dim,
                chunk_tokens=build.chunk_tokens,
                overlap_sentences=build.overlap_sentences,
                index_type=index_type(index),
                count=n,
                files=files,
                versions=versions(),
                calibration=build.calibration,
            )
            for final in manifest.names():
                name = final.replace(f"-{bid}", "")  # chunks-<build>.jsonl was written as chunks.jsonl
                if (self.dir / final).exists() and m is not None and m.build == bid:
                    continue  # the same build again (e.g. a removed file re-added)
                os.replace(tmp / name, self.dir / final)
            text = json.dumps(asdict(manifest), ensure_ascii=False, indent=1) + "\n"
            atomic_write(self.dir / MANIFEST, lambda t: Path(t).write_text(text, "utf-8"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if m is not None and m.build != bid:
            for name in m.names():
                p = self.dir / name
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        self.discard_pending()
        with self._lock:
            self._loaded = None

    def _write_rows(
        self, tmp: Path, m: Manifest | None, state: dict[str, Any], index: Any, count: int
    ) -> tuple[Any, int]:
        """Chunks, tokens and vectors of the next build; a quantised index keeps the floats beside."""
        import faiss

        digest = hashlib.sha1()
        offsets = [0]
        batch: list[np.ndarray] = []
        n = 0
        floats = None
        if index_type(index) == SQ8:  # written as they come, then the quantiser trained on them
            floats = np.lib.format.open_memmap(tmp / "vectors.npy", "w+", np.float32, (count, index.d))
        with open(tmp / "chunks.jsonl", "wb") as cf, open(tmp / "tokens.jsonl", "w", encoding="utf-8") as tf:
            for line, toks, vec in self._rows(m, state):
                data = (line + "\n").encode("utf-8")
                cf.write(data)
                offsets.append(offsets[-1] + len(data))
                tf.write(json.dumps(toks, ensure_ascii=False) + "\n")
                digest.update(data)
                if floats is not None:
                    if n >= count:
                        raise IndexMismatchError(f"more chunks than the {count} the files list in {self.dir}")
                    floats[n] = vec
                else:
                    batch.append(np.array(vec, np.float32))  # a copy: ``vec`` may view the old index
                n += 1
                if len(batch) == 4096:
                    index.add(np.stack(batch))
                    batch = []
            if batch:
                index.add(np.stack(batch))
            os.fsync(cf.fileno())
            os.fsync(tf.fileno())
        if floats is not None:
            if n != count:
                raise IndexMismatchError(f"{n} chunks where the files list {count} in {self.dir}")
            fill(index, floats)
            floats.flush()
            del floats
        np.save(tmp / "offsets.npy", np.asarray(offsets, np.int64))
        faiss.write_index(index, str(tmp / "dense.faiss"))
        return digest, n

    def _write_bm25(self, tmp: Path, n: int) -> None:
        (tmp / "bm25").mkdir()
        for f in FIELDS if n else ():
            with open(tmp / "tokens.jsonl", encoding="utf-8") as tf:
                write_postings(tmp / "bm25" / f, (json.loads(line)[f] for line in tf))
