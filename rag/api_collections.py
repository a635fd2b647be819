"""The collections the HTTP API serves: ``default`` and every collection of the configured store.

``default`` is the collection searched by default (``RAG_COLLECTION``, the committed ``corpus``)
plus the documents added to it through the API, which live in an upload workspace of their own
(``rag/uploads.py``) so the committed index is never written; its name in the store (``corpus``)
is an alias. Every other collection (``rag index FOLDER --collection NAME``, a FAISS folder or
rows in PostgreSQL) is served under its own name, and documents added to it through the API go
into the store itself, through the same reading, chunking and embedding as ``rag index``.

Collections are opened on first use and kept; each access compares a cheap signature (the FAISS
manifest's stat, or the PostgreSQL row's id and size) with the one seen when it was opened, so a
collection created, changed or removed by ``rag index`` / ``rag remove`` while the server runs is
seen at the next request.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from . import collections as colls
from .api_errors import (
    DocumentNotFoundError,
    InvalidCollectionNameError,
    ReadOnlyError,
    UnknownCollectionError,
)
from .api_models import DEFAULT_COLLECTION
from .collections import CollectionExistsError, close_store, open_collection
from .errors import CollectionError, EmptyCorpusError, IndexNotFoundError, RagError, UploadError
from .index import build_index
from .ingest import SUPPORTED, doc_id_for, list_files, read_file
from .pipeline import RAG
from .retrieve import Retriever
from .stores import DEFAULT_COLLECTION as STORE_DEFAULT
from .stores import Build, check_name, is_postgres
from .uploads import UploadReport, Workspace, refusal, safe_name

logger = logging.getLogger(__name__)

Origin = Literal["corpus", "upload", "collection"]


@dataclass
class DocumentInfo:
    name: str
    origin: Origin
    bytes: int | None = None
    title: str = ""
    chunks: int | None = None


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    chunks: int = 0  # passages in the collection afterwards


def _workspace_id(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"rag-vi:collection:{name}").hex


class _Probe:
    """Cheap questions to the store: which collections exist, and has one changed."""

    def __init__(self, rag: RAG) -> None:
        self.settings = rag.settings
        self.pg = is_postgres(self.settings.store)
        self._conn: Any = None
        self._lock = threading.Lock()

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        from .stores.postgres import _connect

        with self._lock:
            for attempt in (1, 2):
                if self._conn is None or self._conn.closed:
                    self._conn = _connect(self.settings.store)  # the primary: it knows of writes first
                try:
                    return list(self._conn.execute(sql, args).fetchall())
                except psycopg.errors.UndefinedTable:
                    return []  # nothing was ever indexed into this database
                except psycopg.OperationalError:
                    self._conn = None  # the connection was lost: one new one
                    if attempt == 2:
                        raise
        return []

    def names(self) -> list[str]:
        if self.pg:
            return [r[0] for r in self._query("SELECT name FROM rag_collections ORDER BY name")]
        return colls.folder_names(self.settings)

    def signature(self, name: str) -> Hashable | None:
        """Changes whenever the collection is rebuilt, changed or removed; ``None`` when absent."""
        if self.pg:
            rows = self._query("SELECT id, n_chunks FROM rag_collections WHERE name = %s", (name,))
            return tuple(rows[0]) if rows else None
        try:
            st = (Path(colls.location(self.settings, name)) / "manifest.json").stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)


class Collections:
    """Collection name → the RAG that answers from it (one per collection, shared by all requests,
    re-opened when the store changes). Document changes run one at a time."""

    def __init__(self, rag: RAG) -> None:
        self.base = rag
        self.settings = rag.settings
        self.uploads = Workspace(rag.settings, _workspace_id(DEFAULT_COLLECTION))
        self._probe = _Probe(rag)
        self._open: dict[str, tuple[Hashable, RAG]] = {}
        self._default: RAG | None = None
        self._lock = threading.Lock()
        self._writing = threading.Lock()

    # names ----------------------------------------------------------------------------------

    def resolve(self, name: str | None) -> str:
        """The collection's name in the API: ``default`` for the default one (also under its name
        in the store); 400 for a name that cannot be a collection."""
        if not name or name in (DEFAULT_COLLECTION, self.settings.collection):
            return DEFAULT_COLLECTION
        try:
            return check_name(name)
        except CollectionError as exc:
            raise InvalidCollectionNameError(str(exc)) from exc

    def names(self) -> list[str]:
        hidden = {DEFAULT_COLLECTION, self.settings.collection}
        return [DEFAULT_COLLECTION, *(n for n in self._probe.names() if n not in hidden)]

    def _unknown(self, name: str) -> UnknownCollectionError:
        return UnknownCollectionError(
            f"no collection named {name!r}; the collections are: {', '.join(self.names())} "
            f"(GET /v1/models) — create it with POST /v1/collections or: rag index FOLDER --collection {name}"
        )

    # reading --------------------------------------------------------------------------------

    def get(self, name: str | None) -> RAG:
        """The RAG for ``name`` (empty: the default collection); 404 when there is none."""
        name = self.resolve(name)
        if name == DEFAULT_COLLECTION:
            return self._default_rag()
        sig = self._probe.signature(name)
        with self._lock:
            if sig is None:
                self._open.pop(name, None)
                raise self._unknown(name)
            seen = self._open.get(name)
            if seen is not None and seen[0] == sig:
                return seen[1]
            rag = self.base.for_collection(name)
            # replaced at once: requests already searching the previous one finish with it
            rag.__dict__["retriever"] = self._retriever(rag, name)
            self._open[name] = (sig, rag)
            return rag

    def _retriever(self, rag: RAG, name: str) -> Retriever:
        st = open_collection(rag.settings, name)
        try:
            empty = st.info().chunks == 0
        except IndexNotFoundError as exc:
            raise self._unknown(name) from exc
        # an empty collection answers every search with nothing (its stores cannot search)
        return (
            Retriever(rag.embedder, [])
            if empty
            else Retriever.open([st], rag.embedder, rag.settings.reranker)
        )

    def _default_rag(self) -> RAG:
        with self._lock:
            if self._default is None:
                # the collection and the added documents are searched together and fused (never copied)
                has = self.uploads.has_uploads
                self._default = (
                    self.base.for_collection(None, str(self.uploads.index_dir)) if has else self.base
                )
            return self._default

    def chunks(self, name: str) -> int:
        return sum(st.info().chunks for st in self.get(name).retriever.stores)

    def documents(self, name: str) -> list[DocumentInfo]:
        name = self.resolve(name)
        if name != DEFAULT_COLLECTION:
            return [self._entry(d, m) for d, m in sorted(self._files(name).items())]
        corpus = Path(self.settings.corpus_dir)
        indexed = self._stored(self.base)
        out = []
        if self.settings.collection != STORE_DEFAULT:  # RAG_COLLECTION: its documents, read-only here
            out = [self._entry(d, m) for d, m in sorted(indexed.items())]
        for p in list_files(corpus) if corpus.is_dir() and not out else []:
            meta = indexed.get(doc_id_for(p, corpus), {})
            out.append(self._info(p.relative_to(corpus).as_posix(), "corpus", p, meta))
        ws = self.uploads
        added = self._stored(self._default_rag(), skip=1) if ws.has_uploads else {}
        out += [self._info(n, "upload", ws.docs / n, added.get(Path(n).stem, {})) for n in ws.uploaded()]
        return out

    @staticmethod
    def _entry(doc_id: str, meta: dict[str, Any]) -> DocumentInfo:
        return DocumentInfo(
            doc_id, "collection", title=meta.get("title", ""), chunks=int(meta.get("chunks", 0))
        )

    @staticmethod
    def _info(name: str, origin: Origin, path: Path, meta: dict[str, Any]) -> DocumentInfo:
        chunks = int(meta["chunks"]) if "chunks" in meta else None
        return DocumentInfo(name, origin, path.stat().st_size, meta.get("title", ""), chunks)

    @staticmethod
    def _stored(rag: RAG, skip: int = 0) -> dict[str, dict[str, Any]]:
        """doc_id → {title, chunks} of the files indexed in a RAG's stores (``skip`` the first ones)."""
        out: dict[str, dict[str, Any]] = {}
        try:
            for st in rag.retriever.stores[skip:]:
                out.update(st.files())
        except RagError as exc:  # the listing still shows the files
            logger.warning("cannot read the index: %s", exc)
        return out

    def _files(self, name: str) -> dict[str, dict[str, Any]]:
        stores = self.get(name).retriever.stores  # the open store: no new connection
        return stores[0].files() if stores else {}

    # writing --------------------------------------------------------------------------------

    def add(self, name: str, files: list[Path]) -> AddReport:
        """Add files: to the upload workspace for ``default``, into the store for the others."""
        name = self.resolve(name)
        if name == DEFAULT_COLLECTION:
            with self._writing:
                report: UploadReport = self.uploads.add(list(files), self.base.embedder)
                self._forget_default()
            out = AddReport(report.added, [], report.rejected)
        else:
            self.get(name)  # 404 before anything is written
            self._check_writable(name)
            with self._writing:
                return self._add_to_store(name, files)
        out.chunks = self.chunks(name)
        return out

    def _add_to_store(self, name: str, files: list[Path]) -> AddReport:
        """The files that pass the upload checks are indexed like ``rag index`` does, into the
        collection's store; a file that cannot be read is reported, the others are added."""
        out = AddReport()
        with tempfile.TemporaryDirectory(prefix="rag-add-") as tmp:
            folder = Path(tmp)
            accepted: dict[str, str] = {}  # doc id (the file name without extension) → file name
            for src in files:
                fname = safe_name(src.name)
                why = refusal(src, fname)
                doc_id = Path(fname).stem
                if why is None and doc_id in accepted:
                    why = f"trùng tên với {accepted[doc_id]} (tên tài liệu là tên tệp không có phần mở rộng)"
                if why:
                    out.rejected.append((src.name, why))
                    continue
                accepted[doc_id] = src.name
                shutil.copyfile(src, folder / fname)
            if not accepted:
                return out
            st = open_collection(self.settings, name, writable=True)
            try:
                self._check_build(name, st.build())
                before = st.files()
                build = build_index(
                    folder,
                    settings=self.settings,
                    embedder=self.base.embedder,
                    store=st,
                    workers=1,
                    prune=False,
                )
                skipped = {Path(k.path).stem: k.reason for k in build.skipped}
            except EmptyCorpusError:  # every file unreadable, and the collection is empty
                skipped = {d: self._why_unreadable(folder, d) for d in accepted}
            except BaseException:
                discard = getattr(st, "discard_pending", None)
                if discard is not None:  # a folder store: nothing staged may be committed later
                    discard()
                raise
            else:
                out.chunks = st.info().chunks  # from the primary: a replica may not have it yet
            finally:
                close_store(st)
        for doc_id, fname in accepted.items():
            if doc_id in skipped:
                out.rejected.append((fname, f"không đọc được: {skipped[doc_id]}"))
            else:
                (out.replaced if doc_id in before else out.added).append(doc_id)
        return out

    def _check_build(self, name: str, built: Build | None) -> None:
        """Documents are added only beside chunks made the same way (else rag index would redo all)."""
        s, emb = self.settings, self.base.embedder
        if built is not None and not built.same_chunks(
            Build(emb.id, emb.dim, s.chunk_tokens, s.overlap_sentences)
        ):
            raise CollectionError(
                f"collection {name!r} was built with {built.embedder}, {built.chunk_tokens}-token chunks and "
                f"{built.overlap_sentences} sentence(s) of overlap; this server makes {emb.id}, "
                f"{s.chunk_tokens} and {s.overlap_sentences} — serve it with the same RAG_EMBEDDER and "
                f"chunking, or rebuild it with: rag index FOLDER --collection {name}"
            )

    @staticmethod
    def _why_unreadable(folder: Path, doc_id: str) -> str:
        path = next(folder.glob(f"{doc_id}.*"))
        try:
            read_file(path, doc_id)
        except Exception as exc:  # noqa: BLE001 - the reason is reported to the client
            return str(exc)
        return "no text"

    def remove(self, name: str, document: str) -> str:
        """Remove one document; returns its name. Corpus files are read-only here."""
        name = self.resolve(name)
        if name == DEFAULT_COLLECTION:
            if any(d.name == document and d.origin != "upload" for d in self.documents(name)):
                raise ReadOnlyError(
                    f"{document!r} is part of the default collection's index, not a document added "
                    "through the API; change that index with: rag index"
                )
            with self._writing:
                try:
                    self.uploads.remove(document, self.base.embedder)
                except UploadError as exc:
                    raise DocumentNotFoundError(str(exc)) from exc
                self._forget_default()
            return document
        self._check_writable(name)
        with self._writing:
            files = self._files(name)
            doc_id, p = document, PurePosixPath(document)
            if doc_id not in files and p.suffix.lower() in SUPPORTED:
                doc_id = str(p.with_suffix(""))  # the file name is accepted for the document's name
            if doc_id not in files:
                raise DocumentNotFoundError(
                    f"no document named {document!r} in collection {name!r} — list them with "
                    f"GET /v1/collections/{name}/documents"
                )
            st = open_collection(self.settings, name, writable=True)
            try:
                st.delete_file(doc_id)
                st.commit()
            finally:
                close_store(st)
        return doc_id

    def create(self, name: str) -> None:
        """A new, empty collection in the store."""
        if self.resolve(name) == DEFAULT_COLLECTION:
            raise CollectionExistsError(f"{name!r} is the default collection; it exists already")
        with self._writing:
            colls.create_collection(self.settings, name, self.base.embedder)

    def drop(self, name: str) -> None:
        """Remove a whole collection from the store (not the default one)."""
        if self.resolve(name) == DEFAULT_COLLECTION:
            raise ReadOnlyError(
                "the default collection cannot be removed through the API; remove its added documents "
                "one by one"
            )
        self._check_writable(name)
        with self._writing:
            try:
                colls.remove_collection(self.settings, name)
            except (CollectionError, IndexNotFoundError) as exc:
                raise self._unknown(name) from exc
            with self._lock:
                self._open.pop(name, None)

    def _check_writable(self, name: str) -> None:
        if name == STORE_DEFAULT and not is_postgres(self.settings.store):
            raise ReadOnlyError(
                f"{name!r} is the committed index in {self.settings.index_dir}; change it with: rag index"
            )

    def _forget_default(self) -> None:
        with self._lock:
            self._default = None
