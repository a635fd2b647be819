"""Collections: named knowledge bases — index, list, remove; what the chat and ``ask`` pick from.

With the default FAISS store, the collection ``corpus`` is the committed index (``RAG_INDEX_DIR``,
``embeddings/``) and every other collection is a folder ``<RAG_STORE>/<name>/`` (default
``~/.cache/rag-vi/collections/<name>/``). With ``RAG_STORE=postgresql://…`` all collections,
``corpus`` included, are rows of the same database.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from .config import Settings
from .embed import Embedder
from .errors import CollectionError, IndexNotFoundError
from .index import BuildReport, Progress, build_index
from .retrieve import Retriever
from .stores import DEFAULT_COLLECTION, Build, Store, StoreInfo, check_name, is_postgres, open_store

logger = logging.getLogger(__name__)


class CollectionExistsError(CollectionError):
    """A collection of that name exists already."""


def root(settings: Settings) -> Path:
    """The folder that holds the FAISS collections other than ``corpus``."""
    return Path(settings.store or Path(settings.cache_dir) / "collections")


def location(settings: Settings, name: str) -> str:
    """Where collection ``name`` lives: a folder, or the database URL."""
    check_name(name)
    if is_postgres(settings.store):
        return settings.store
    if name == DEFAULT_COLLECTION:
        return settings.index_dir
    return str(root(settings) / name)


def open_collection(settings: Settings, name: str | None = None, writable: bool = False) -> Store:
    name = name or settings.collection
    loc = location(settings, name)
    if is_postgres(loc):
        read = "" if writable else settings.store_read
        return open_store(loc, name, read_location=read, writable=writable)
    from .stores.faiss import FaissStore

    return FaissStore(loc, name, hnsw_threshold=settings.hnsw_threshold)


def open_retriever(settings: Settings, embedder: Embedder, uploads: str | Path | None = None) -> Retriever:
    """A retriever over the chosen collection, plus a user's uploads collection when it exists."""
    stores = [open_collection(settings)]
    if uploads is not None and (Path(uploads) / "manifest.json").exists():
        from .stores.faiss import FaissStore

        stores.append(FaissStore(uploads, "uploads"))
    return Retriever.open(stores, embedder, settings.reranker)


def index_collection(
    settings: Settings,
    folder: str | Path,
    name: str | None = None,
    *,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """``rag index FOLDER --collection NAME``: only new or changed files are embedded."""
    st = open_collection(settings, name, writable=True)
    return build_index(folder, settings=settings, embedder=embedder, progress=progress, store=st)


def create_collection(settings: Settings, name: str, embedder: Embedder) -> StoreInfo:
    """An empty collection, ready for documents made with ``embedder`` and the configured chunking."""
    st = open_collection(settings, check_name(name), writable=True)
    try:
        if st.build() is not None:
            raise CollectionExistsError(f"collection {name!r} already exists — see: rag collections")
        build = Build(embedder.id, embedder.dim, settings.chunk_tokens, settings.overlap_sentences)
        st.add([], np.zeros((0, embedder.dim), np.float32), [], {}, build)
        st.commit()
        return st.info()
    finally:
        close_store(st)


def close_store(st: Store) -> None:
    """Give back a store's connections (PostgreSQL); a folder store holds none."""
    close = getattr(st, "close", None)
    if close is not None:
        close()


def folder_names(settings: Settings) -> list[str]:
    """The collections of the folder (FAISS) store: ``corpus`` when it is built, then the others."""
    names = [DEFAULT_COLLECTION] if Path(settings.index_dir, "manifest.json").exists() else []
    r = root(settings)
    if r.is_dir():
        names += sorted(p.name for p in r.iterdir() if (p / "manifest.json").exists())
    return names


def list_collections(settings: Settings) -> list[StoreInfo]:
    """Every collection with its files, chunks, embedder and size."""
    if is_postgres(settings.store):
        from .stores.postgres import PostgresStore

        return PostgresStore.list_all(settings.store)
    return [open_collection(settings, n).info() for n in folder_names(settings)]


def remove_collection(settings: Settings, name: str) -> None:
    """``rag remove NAME``: the whole collection. The committed ``corpus`` folder is kept."""
    if not is_postgres(settings.store) and name == DEFAULT_COLLECTION:
        raise CollectionError(
            f"'{DEFAULT_COLLECTION}' is the committed index in {settings.index_dir}; "
            "remove its files with: rag remove corpus --file DOC_ID"
        )
    if is_postgres(settings.store):
        from .stores.postgres import PostgresStore

        PostgresStore.drop(settings.store, check_name(name))
        return
    folder = Path(location(settings, name))
    if not (folder / "manifest.json").exists():
        raise CollectionError(f"no collection {name!r} in {root(settings)} — see: rag collections")
    shutil.rmtree(folder)


def remove_file(settings: Settings, name: str, doc_id: str) -> None:
    """Remove one file (by its doc id, the path in the folder without extension) from a collection."""
    st = open_collection(settings, name, writable=True)
    try:
        files = st.files()
    except IndexNotFoundError as exc:
        raise CollectionError(f"no collection {name!r} — see: rag collections") from exc
    if doc_id not in files:
        raise CollectionError(
            f"{doc_id!r} is not in collection {name!r}; its files are: {', '.join(sorted(files)[:10])}"
        )
    st.delete_file(doc_id)
    st.commit()
