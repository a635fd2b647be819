"""``rag bench --scale``: index build throughput, and both stores at 100k+ chunks.

1. Build throughput: ``build_index`` on a folder of real documents against the embedder's raw
   rate on the same chunk texts (the build should spend its time embedding).
2. Scale: ``n`` synthetic chunks stored through the Store protocol of each backend. Measured:
   build time, load and first query in a fresh process, its RSS, hybrid query p50/p95 (query
   vectors given: the embedder's own time is reported apart), and recall@10 of the dense index
   against exact search.

Synthetic vectors: each is a random mixture (Dirichlet weights) of two or three real chunk
embeddings, plus noise drawn with the real embeddings' own covariance (``MIX_NOISE`` times their
spread), re-normalised: points on the real embeddings' span, each distinct. Its text is the real
text of its heaviest part plus one real sentence of the next (BM25 needs real tokens).

Why: an earlier version added isotropic noise (norm 0.35) to copies of the ~175 real vectors. At
1M that is ~5,700 copies of each text, and a query's exact top 10 were copies of one text told
apart only by 384-dimensional noise: no structure for an approximate index to follow (HNSW
recall@10 .68), and BM25 ties among thousands of identical texts. ``structure()`` measures a set
from the 118 real queries; at 100k the old set had a local intrinsic dimension (maximum
likelihood, 20 neighbours) of 97, the mixtures 74, with no point within cosine 0.99 of another
in either (the nearest other point: cosine 0.909 old, 0.965 new, at most 0.978), and the same
gap between the 10th and 11th neighbour (1.6e-4 and 1.5e-4): distinct, not tied, neighbours.
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
from .stores import Build, Store, Tokens, chunk_tokens, passage_text
from .text import expand_abbreviations, folded_tokens, split_sentences, tokens
from .types import Chunk

logger = logging.getLogger(__name__)

MIX_NOISE = 0.5  # noise of a synthetic vector, in units of the real embeddings' spread
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


Synthetic = tuple[list[Chunk], np.ndarray, list[Tokens]]


def synthetic(base: list[Chunk], vecs: np.ndarray, n: int, seed: int = 0) -> Synthetic:
    """``n`` chunks: vectors mixed from two or three real ones plus noise shaped like their spread.

    The text of each is the real text of its heaviest part and one real sentence of the next
    heaviest (so that texts, like vectors, are not thousands of copies of a few); its BM25 tokens
    are those of the two pieces.
    """
    rng = np.random.default_rng(seed)
    m, dim = vecs.shape
    centred = vecs - vecs.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    shape = ((sv / np.sqrt(m))[:, None] * vt).astype(np.float32)  # noise with the real covariance
    parts = np.stack([rng.integers(0, m, n), rng.integers(0, m, n), rng.integers(0, m, n)], 1)
    parts[:, 1] = (parts[:, 0] + 1 + rng.integers(0, m - 1, n)) % m  # two distinct parts at least
    w = rng.dirichlet([1.0, 1.0, 1.0], n).astype(np.float32)
    w[(rng.random(n) < 0.5) | (parts[:, 2] == parts[:, 0]) | (parts[:, 2] == parts[:, 1]), 2] = 0
    w /= w.sum(1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for i in range(0, n, 65536):  # in batches: the noise draw is (batch, m) float64
        sl = slice(i, min(n, i + 65536))
        v = np.einsum("bk,bkd->bd", w[sl], vecs[parts[sl]])
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v += MIX_NOISE * (rng.standard_normal((len(v), m)).astype(np.float32) @ shape)
        out[sl] = v / np.linalg.norm(v, axis=1, keepdims=True)
    order = np.argsort(-w, axis=1, kind="stable")
    first, second = parts[np.arange(n), order[:, 0]], parts[np.arange(n), order[:, 1]]
    sents = [[c.text[a:b] for a, b in split_sentences(c.text)] or [c.text] for c in base]
    pick = rng.random(n)
    base_toks = [chunk_tokens(c) for c in base]
    sent_toks: dict[tuple[int, int], Tokens] = {}
    piece_toks: dict[tuple[int, int, int], Tokens] = {}
    chunks, toks = [], []
    for i, (h, o) in enumerate(zip(first.tolist(), second.tolist())):
        j = int(pick[i] * len(sents[o]))
        chunks.append(
            replace(
                base[h], chunk_id=f"syn#{i}", doc_id=f"syn{i // 100}", text=f"{base[h].text} {sents[o][j]}"
            )
        )
        if (h, o, j) not in piece_toks:
            if (o, j) not in sent_toks:
                sent_toks[o, j] = {"norm": tokens(sents[o][j]), "fold": folded_tokens(sents[o][j])}
            piece_toks[h, o, j] = {f: base_toks[h][f] + sent_toks[o, j][f] for f in base_toks[h]}
        toks.append(piece_toks[h, o, j])
    return chunks, out, toks


def structure(vecs: np.ndarray, qvecs: np.ndarray) -> dict[str, float]:
    """How a vector set looks from real queries: near-duplicates, neighbour gaps, local dimension.

    ``lid_p50``: the local intrinsic dimension around each query, the maximum-likelihood estimate
    from its 20 nearest distances (Levina and Bickel); isotropic noise in 384 dimensions pushes it
    up, and with it the work an approximate index needs for the same recall.
    """
    rng = np.random.default_rng(5)
    probe = rng.choice(len(vecs), min(1000, len(vecs)), replace=False)
    nearest = []
    for i in range(0, len(probe), 100):
        s = vecs[probe[i : i + 100]] @ vecs.T
        s[np.arange(len(s)), probe[i : i + 100]] = -1
        nearest.append(s.max(1))
    nn = np.concatenate(nearest)
    gaps, lid = [], []
    k = min(20, len(vecs))
    for q in qvecs:
        s = vecs @ q
        top = np.sort(s[np.argpartition(-s, k - 1)[:k]])[::-1]
        gaps.append(top[9] - top[10])
        dist = np.sqrt(np.maximum(2 - 2 * top.astype(np.float64), 1e-12))
        lid.append(-1 / np.mean(np.log(dist[:-1] / dist[-1])))
    return {"nn_cos_p50": float(np.median(nn)), "nn_cos_max": float(nn.max()),
            "near_duplicates": float(np.mean(nn > 0.99)), "gap_10_11_p50": float(np.median(gaps)),
            "lid_p50": float(np.median(lid))}  # fmt: skip


def _fill(st: Store, syn: Synthetic, build: Build, batch: int = 5000) -> None:
    chunks, vecs, toks = syn
    for i in range(0, len(chunks), batch):
        part = chunks[i : i + batch]
        files: dict[str, dict[str, Any]] = {}
        for c in part:
            f = files.setdefault(c.doc_id, {"sha256": c.doc_id, "title": c.title, "chunks": 0})
            f["chunks"] += 1
        st.add(part, vecs[i : i + batch], toks[i : i + batch], files, build)
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
    lat: list[float] = []
    warm: list[
        float
    ] = []  # the first pass in a fresh process (pages mapped as queries touch them), then again
    for out in (lat, warm):
        for q in spec["queries"]:
            t = time.perf_counter()
            r.search(q, 10)
            out.append((time.perf_counter() - t) * 1000)
    from .stores import query_tokens

    dense_ms, bm25_ms = [], []
    for q, qv in zip(spec["queries"], spec["qvecs"]):  # each half of hybrid alone, as the retriever asks
        t = time.perf_counter()
        st.dense_search(qv, 50)
        dense_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        st.sparse_search(query_tokens(expand_abbreviations(q)), 50)
        bm25_ms.append((time.perf_counter() - t) * 1000)
    found = []
    for qv in spec["qvecs"]:
        rows = [i for i, _ in st.dense_search(qv, 10)]
        found.append([int(c.chunk_id.split("#")[1]) for c in st.chunks(rows)])
    if spec["backend"] != "faiss":  # pruned BM25 against every chunk scored
        qts = [query_tokens(q) for q in spec["queries"][:BM25_CHECKS]]
        t = time.perf_counter()
        wants = [[s for _, s in w] for w in st.exhaustive(qts, 10)]  # type: ignore[attr-defined]
        full_s = time.perf_counter() - t
        hit = []
        for qt, want in zip(qts, wants):
            got = [s for _, s in st.sparse_search(qt, 10)]
            # by score: copies of one text tie, and either copy is as right as the other
            hit.append(sum(g >= want[-1] * (1 - 1e-6) for g in got) / len(want) if want else 1.0)
        extra = {"bm25_recall@10": float(np.mean(hit)), "bm25_exhaustive_s": full_s}
    else:
        extra = {"bm25_recall@10": 1.0}  # exact top k (tests compare it with the sum of every posting)
    mem = {}  # VmRSS = RssAnon (the process's own memory) + RssFile (mapped files' pages in use) + shared
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "RssAnon", "RssFile")):
            mem[line.split(":")[0]] = int(line.split()[1]) / 1024
    rss = mem.get("VmRSS", 0.0)
    return {"load_first_query_s": load, "hybrid_p50_ms": float(np.percentile(lat, 50)),
            "hybrid_warm_p50_ms": float(np.median(warm)),
            "hybrid_p95_ms": float(np.percentile(lat, 95)), "rss_mb": rss, "found": found,
            "rss_anon_mb": mem.get("RssAnon", 0.0), "rss_file_mb": mem.get("RssFile", 0.0),
            "dense_p50_ms": float(np.median(dense_ms)), "bm25_p50_ms": float(np.median(bm25_ms)), **extra}  # fmt: skip


def scale(
    sizes: Sequence[int],
    backends: Sequence[str],
    settings: Settings,
    emb: Embedder,
    corpus: Path,
    keep: bool = False,
) -> list[dict[str, Any]]:
    """One row per size and backend.

    ``keep``: the collections stay (FAISS: in ``<temp dir>/rag-scale-faiss-<n>``) and a complete
    one is measured again instead of being filled again (the synthetic set is the same each run).
    """
    from .stores import open_store
    from .stores.faiss import FaissStore, top_k

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
    real_shape = structure(base_vecs, qvecs)
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for n in sizes:
        syn = synthetic(base, base_vecs, n)
        vecs = syn[1]
        exact = [top_k(vecs @ q, 10) for q in qvecs]
        shape = structure(vecs, qvecs)
        logger.info("synthetic set of %d: %s (real corpus: %s)", n, shape, real_shape)
        build = Build(emb.id, emb.dim, settings.chunk_tokens, settings.overlap_sentences)
        for spec_backend in backends:
            backend, _, cap = spec_backend.partition(":")  # "postgres:20000": only up to 20,000 chunks
            if cap and n > int(cap):
                continue
            tmp = tempfile.mkdtemp(prefix="rag-scale-")
            kept = Path(tempfile.gettempdir()) / f"rag-scale-faiss-{n}"
            try:
                if backend == "faiss":
                    location, name = str(kept if keep else Path(tmp) / "idx"), "scale"
                    st: Store = FaissStore(location, name, hnsw_threshold=settings.hnsw_threshold)
                else:
                    location, name = settings.store, f"scale_{n}"
                    st = open_store(location, name, writable=True)
                    st.begin(build)
                t = time.perf_counter()
                done = backend != "faiss" or (kept / "manifest.json").exists()
                reused = keep and done and st.info().chunks == n
                if backend == "faiss" and keep and not reused:
                    shutil.rmtree(kept, ignore_errors=True)  # an unfinished or other-sized run
                if not reused:
                    _fill(st, syn, build)
                build_s = float("nan") if reused else time.perf_counter() - t
                if backend != "faiss":
                    from .stores.postgres import PostgresStore

                    st.commit()  # a kept collection whose fill was cut short gets its HNSW index now
                    PostgresStore.vacuum(location, name)  # as autovacuum would after a bulk load
                info = st.info()
                spec = {"location": location, "collection": name, "embedder": emb.id, "queries": qtexts,
                        "qvecs": qvecs, "backend": backend}  # fmt: skip
                with ctx.Pool(1) as pool:
                    served = pool.apply(_serve, (spec,))
                found = served.pop("found")
                recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
                row = {"backend": backend, "n": n, "build_s": build_s, "size_mb": info.bytes / 2**20,
                       "index": info.index_type, **served, "recall@10": recall, "query_embed_ms": embed_ms,
                       "synthetic": shape, "real": real_shape, "queries": len(found)}  # fmt: skip
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
            f"Synthetic chunks: a real chunk's text and a real sentence of another; each vector a random mixture of two or three real chunk "
            f"embeddings plus noise shaped like their spread (x{MIX_NOISE}), re-normalised. {rows[0]['queries']} "
            "queries (a real sentence, its real query embedding). Load, first query, RSS and latency measured "
            "in a fresh process; hybrid = dense + BM25 + fusion, without the query embedding "
            f"({rows[0]['query_embed_ms']:.1f} ms p50 for one query with this embedder): p50 and p95 over the "
            "queries' first pass in that process (the files' pages mapped as they are first touched), warm p50 "
            "over their second pass; dense and BM25 = each store search alone (50 candidates, as hybrid asks).",
            "",
            "| store | chunks | index | build s | size MB | load + first query s | RSS MB (own + mapped files) | hybrid p50 ms | hybrid p95 ms | hybrid warm p50 ms | dense p50 ms | BM25 p50 ms | dense recall@10 vs exact | BM25 recall@10 vs exhaustive |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            built = "(kept)" if r["build_s"] != r["build_s"] else f"{r['build_s']:.1f}"  # NaN: reused
            out.append(
                f"| {r['backend']} | {r['n']:,} | {r['index']} | {built} | {r['size_mb']:.0f} | "
                f"{r['load_first_query_s']:.2f} | {r['rss_mb']:.0f} ({r.get('rss_anon_mb', 0):.0f} + "
                f"{r.get('rss_file_mb', 0):.0f}) | {r['hybrid_p50_ms']:.1f} | "
                f"{r['hybrid_p95_ms']:.1f} | {r.get('hybrid_warm_p50_ms', float('nan')):.1f} | "
                f"{r['dense_p50_ms']:.1f} | {r['bm25_p50_ms']:.1f} | "
                f"{r['recall@10']:.3f} | {r.get('bm25_recall@10', 1.0):.3f} |"
            )
        out += [
            "",
            "The vectors seen from the real queries (nearest other point: for 1,000 random points):",
            "",
            "| set | chunks | nearest other point cos p50 | max | share with one above 0.99 | 10th-11th neighbour gap p50 | local intrinsic dimension p50 |",
            "|---|---|---|---|---|---|---|",
        ]
        seen: dict[tuple[str, int], dict[str, float]] = {}
        for r in rows:
            seen.setdefault(("real corpus", 0), r["real"])  # its size: in the text above
            seen.setdefault(("synthetic", r["n"]), r["synthetic"])
        for (name, n), x in seen.items():
            out.append(
                f"| {name} | {f'{n:,}' if n else '-'} | {x['nn_cos_p50']:.4f} | {x['nn_cos_max']:.4f} | "
                f"{x['near_duplicates']:.3f} | {x['gap_10_11_p50']:.2e} | {x['lid_p50']:.0f} |"
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
    out.mkdir(parents=True, exist_ok=True)  # a new --out folder
    path = out / "BENCHMARKS.md"
    old = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    head, _, rest = old.partition("## Collections at scale")
    tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""  # the sections after this one
    path.write_text(head.rstrip() + "\n\n" + text + ("\n" + tail if tail else ""), "utf-8")
    return text
