"""``rag bench --scale``: index build throughput, and both stores at 100k+ chunks.

1. Build throughput: ``build_index`` on a folder of real documents against the embedder's raw
   rate on the same chunk texts (the build should spend its time embedding).
2. Scale: ``n`` synthetic chunks whose texts are real chunk texts and whose vectors are real
   embeddings of those texts plus small Gaussian noise (so nearest neighbours mean something),
   stored through the Store protocol of each backend. Measured: build time, load and first query
   in a fresh process, its RSS, hybrid query p50/p95 (query vectors given: the embedder's own time
   is reported apart), and recall@10 of the dense index against exact search.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .embed import Embedder, make_embedder
from .index import build_index
from .stores import Build, Store, chunk_tokens, passage_text
from .text import expand_abbreviations
from .types import Chunk

logger = logging.getLogger(__name__)

NOISE = 0.35  # norm of the noise added to a unit vector: cosine to the original ≈ 0.94
QUERIES = 200
BM25_CHECKS = 20  # queries whose pruned BM25 is compared with the exhaustive sum (PostgreSQL)


def throughput(folder: Path, copies: int, settings: Settings, emb: Embedder) -> dict[str, float]:
    """Build rate vs raw embedder rate on ``copies`` copies of ``folder`` under new names."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "docs"
        corpus.mkdir()
        for c in range(copies):
            for p in sorted(folder.iterdir()):
                if p.is_file() and p.suffix in {".txt", ".md"}:
                    shutil.copyfile(p, corpus / f"c{c}_{p.name}")
        from .stores.faiss import FaissStore

        r = build_index(corpus, Path(tmp) / "idx", settings=settings, embedder=emb)
        texts = [passage_text(c) for c in FaissStore(Path(tmp) / "idx").chunks(list(range(r.chunks)))]
    t = time.perf_counter()
    for i in range(0, len(texts), 16):
        emb.embed_documents(texts[i : i + 16])
    raw = len(texts) / (time.perf_counter() - t)
    build = r.chunks / r.seconds
    return {
        "chunks": r.chunks,
        "build_chunks_per_s": build,
        "embed_chunks_per_s": raw,
        "build_vs_embed": build / raw,
    }


def synthetic(base: list[Chunk], vecs: np.ndarray, n: int, seed: int = 0) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), n)
    noise = rng.standard_normal((n, vecs.shape[1])).astype(np.float32)
    noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
    out = vecs[pick] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    chunks = [replace(base[j], chunk_id=f"syn#{i}", doc_id=f"syn{i // 100}") for i, j in enumerate(pick)]
    return chunks, out


def _fill(st: Store, chunks: list[Chunk], vecs: np.ndarray, build: Build, batch: int = 5000) -> None:
    toks_by_text: dict[str, Any] = {}
    for i in range(0, len(chunks), batch):
        part = chunks[i : i + batch]
        toks = [toks_by_text.setdefault(c.text, chunk_tokens(c)) for c in part]
        files: dict[str, dict[str, Any]] = {}
        for c in part:
            f = files.setdefault(c.doc_id, {"sha256": c.doc_id, "title": c.title, "chunks": 0})
            f["chunks"] += 1
        st.add(part, vecs[i : i + batch], toks, files, build)
    st.commit()


class _Given:
    """An embedder whose query vectors were computed beforehand (to time the store alone)."""

    def __init__(self, emb_id: str, dim: int, table: dict[str, np.ndarray]) -> None:
        self.id, self.dim, self.table = emb_id, dim, table

    def embed_query(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def _serve(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: open the store, first query, then timed hybrid queries."""
    from .retrieve import Retriever
    from .stores import open_store

    t = time.perf_counter()
    st = open_store(spec["location"], spec["collection"])
    table = {expand_abbreviations(q): v for q, v in zip(spec["queries"], spec["qvecs"])}
    r = Retriever.open([st], _Given(spec["embedder"], spec["qvecs"].shape[1], table))  # type: ignore[arg-type]
    r.search(spec["queries"][0], 10)
    load = time.perf_counter() - t
    lat = []
    for q in spec["queries"]:
        t = time.perf_counter()
        r.search(q, 10)
        lat.append((time.perf_counter() - t) * 1000)
    found = []
    for qv in spec["qvecs"]:
        rows = [i for i, _ in st.dense_search(qv, 10)]
        found.append([int(c.chunk_id.split("#")[1]) for c in st.chunks(rows)])
    if spec["backend"] != "faiss":  # pruned BM25 against the sum of every posting
        from .stores import query_tokens

        hit, full_ms = [], []
        for q in spec["queries"][:BM25_CHECKS]:
            qt = query_tokens(q)
            t = time.perf_counter()
            want = [s for _, s in st.sparse_search(qt, 10, exhaustive=True)]  # type: ignore[call-arg]
            full_ms.append((time.perf_counter() - t) * 1000)
            got = [s for _, s in st.sparse_search(qt, 10)]
            # by score: copies of one text tie, and either copy is as right as the other
            hit.append(sum(g >= want[-1] * (1 - 1e-6) for g in got) / len(want) if want else 1.0)
        extra = {"bm25_recall@10": float(np.mean(hit)), "bm25_exhaustive_p50_ms": float(np.median(full_ms))}
    else:
        extra = {"bm25_recall@10": 1.0}  # bm25s sums every posting
    rss = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            rss = int(line.split()[1]) / 1024
    return {"load_first_query_s": load, "hybrid_p50_ms": float(np.percentile(lat, 50)),
            "hybrid_p95_ms": float(np.percentile(lat, 95)), "rss_mb": rss, "found": found, **extra}  # fmt: skip


def scale(
    sizes: Sequence[int],
    backends: Sequence[str],
    settings: Settings,
    emb: Embedder,
    corpus: Path,
    keep: bool = False,
) -> list[dict[str, Any]]:
    """One row per size and backend; ``keep``: PostgreSQL collections stay, and a complete one is reused."""
    from .stores import open_store
    from .stores.faiss import FaissStore

    with tempfile.TemporaryDirectory() as tmp:
        build_index(corpus, Path(tmp) / "base", settings=settings, embedder=emb)
        base_store = FaissStore(Path(tmp) / "base")
        n0 = base_store.info().chunks
        base = base_store.chunks(list(range(n0)))
        base_vecs = np.array(base_store.loaded.vectors)
    rng = np.random.default_rng(1)
    qtexts = [base[int(j)].text.split(". ")[0][:200] for j in rng.integers(0, n0, QUERIES)]
    qtexts = list(dict.fromkeys(qtexts))
    qvecs = emb.embed_query([expand_abbreviations(q) for q in qtexts])  # as the retriever embeds them
    one = []
    for q in qtexts[:20]:
        t = time.perf_counter()
        emb.embed_query([q])
        one.append((time.perf_counter() - t) * 1000)
    embed_ms = float(np.median(one))
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for n in sizes:
        chunks, vecs = synthetic(base, base_vecs, n)
        exact = [list(np.argsort(-(vecs @ q), kind="stable")[:10]) for q in qvecs]
        build = Build(emb.id, emb.dim, settings.chunk_tokens, settings.overlap_sentences)
        for spec_backend in backends:
            backend, _, cap = spec_backend.partition(":")  # "postgres:20000": only up to 20,000 chunks
            if cap and n > int(cap):
                continue
            tmp = tempfile.mkdtemp(prefix="rag-scale-")
            try:
                if backend == "faiss":
                    location, name = str(Path(tmp) / "idx"), "scale"
                    st: Store = FaissStore(location, name, hnsw_threshold=settings.hnsw_threshold)
                else:
                    location, name = settings.store, f"scale_{n}"
                    st = open_store(location, name, writable=True)
                    st.begin(build)
                t = time.perf_counter()
                reused = keep and backend != "faiss" and st.info().chunks == n
                if not reused:
                    _fill(st, chunks, vecs, build)
                build_s = float("nan") if reused else time.perf_counter() - t
                if backend != "faiss":
                    from .stores.postgres import PostgresStore

                    PostgresStore.vacuum(location, name)  # as autovacuum would after a bulk load
                info = st.info()
                spec = {"location": location, "collection": name, "embedder": emb.id, "queries": qtexts,
                        "qvecs": qvecs, "backend": backend}  # fmt: skip
                with ctx.Pool(1) as pool:
                    served = pool.apply(_serve, (spec,))
                found = served.pop("found")
                recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
                row = {"backend": backend, "n": n, "build_s": build_s, "size_mb": info.bytes / 2**20,
                       "index": info.index_type, **served, "recall@10": recall, "query_embed_ms": embed_ms}  # fmt: skip
                logger.info("scale %s", row)
                rows.append(row)
                if backend != "faiss" and not keep:
                    from .stores.postgres import PostgresStore

                    PostgresStore.drop(location, name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return rows


def markdown(tp: dict[str, float] | None, rows: list[dict[str, Any]], command: str, machine: str) -> str:
    out = ["## Collections at scale (`" + command + "`)", "", f"Machine: {machine}", ""]
    if tp:
        out += [
            f"Build throughput on {tp['chunks']:,} real chunks (copies of the foreign corpus under new names): "
            f"**{tp['build_chunks_per_s']:.2f} chunks/s** for the whole build against "
            f"{tp['embed_chunks_per_s']:.2f} chunks/s for the embedder alone "
            f"(**{tp['build_vs_embed']:.0%}**).",
            "",
        ]
    if rows:
        out += [
            f"Synthetic chunks: real chunk texts, vectors = their real embeddings + noise of norm {NOISE} "
            f"(re-normalised). {QUERIES} queries (a real sentence, its real query embedding). Load, first "
            "query, RSS and latency measured in a fresh process; hybrid = dense + BM25 + fusion, without "
            f"the query embedding ({rows[0]['query_embed_ms']:.1f} ms p50 for one query with this embedder).",
            "",
            "| store | chunks | index | build s | size MB | load + first query s | RSS MB | hybrid p50 ms | hybrid p95 ms | dense recall@10 vs exact | BM25 recall@10 vs exhaustive |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            built = "(kept)" if r["build_s"] != r["build_s"] else f"{r['build_s']:.1f}"  # NaN: reused
            out.append(
                f"| {r['backend']} | {r['n']:,} | {r['index']} | {built} | {r['size_mb']:.0f} | "
                f"{r['load_first_query_s']:.2f} | {r['rss_mb']:.0f} | {r['hybrid_p50_ms']:.1f} | "
                f"{r['hybrid_p95_ms']:.1f} | {r['recall@10']:.3f} | {r.get('bm25_recall@10', 1.0):.3f} |"
            )
    return "\n".join(out) + "\n"


def run(
    settings: Settings, sizes: Sequence[int], backends: Sequence[str], corpus: Path, copies: int, command: str,
    out: Path, machine: str, keep: bool = False,
) -> str:  # fmt: skip
    emb = make_embedder(settings.embedder)
    tp = throughput(corpus, copies, settings, emb) if copies else None
    rows = scale(sizes, backends, settings, emb, corpus, keep) if sizes else []
    text = markdown(tp, rows, command, machine)
    path = out / "BENCHMARKS.md"
    old = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    head, _, rest = old.partition("## Collections at scale")
    tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""  # the sections after this one
    path.write_text(head.rstrip() + "\n\n" + text + ("\n" + tail if tail else ""), "utf-8")
    return text
