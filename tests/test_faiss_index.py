"""The FAISS store at scale, on a small synthetic set: quantised HNSW, pruned BM25, the generator."""

import json
import shutil
from collections import Counter
from pathlib import Path

import bm25s
import faiss
import numpy as np
import pytest

from rag import bench_scale
from rag.index import build_index
from rag.retrieve import Retriever
from rag.stores import Build, chunk_tokens, compact, faiss_index, postings, query_tokens
from rag.stores import faiss as faiss_store
from rag.stores.faiss import FaissStore
from rag.types import Chunk

from .conftest import FakeEmbedder

N = 3000


@pytest.fixture
def base(tmp_path: Path, corpus_copy: Path) -> tuple[list[Chunk], np.ndarray]:
    build_index(corpus_copy, tmp_path / "base", embedder=FakeEmbedder())
    st = FaissStore(tmp_path / "base")
    n = st.info().chunks
    return st.chunks(list(range(n))), np.array(st.loaded.vectors)


def _store(folder: Path, syn: bench_scale.Synthetic) -> FaissStore:
    st = FaissStore(folder, hnsw_threshold=1000)
    bench_scale._fill(st, syn, Build(FakeEmbedder.id, FakeEmbedder.dim, 200, 1), batch=1000)
    return FaissStore(folder)  # a fresh reader, as a server opens it


def test_synthetic_vectors_are_distinct_and_keep_neighbour_structure(base) -> None:  # type: ignore[no-untyped-def]
    chunks, vecs, toks = bench_scale.synthetic(*base, N)
    bvecs = base[1]
    assert len({c.text for c in chunks}) > N / 2  # texts are not a few repeated either (57 real ones here)
    same = [Counter(t["norm"]) == Counter(chunk_tokens(c)["norm"]) for c, t in zip(chunks[:200], toks)]
    assert np.mean(same) > 0.9  # the tokens of its two pieces are the tokens of its text
    assert vecs.shape == (N, bvecs.shape[1]) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    sim = vecs @ vecs.T
    np.fill_diagonal(sim, -1)
    assert sim.max() < 0.99  # no exact or near duplicates
    to_base = vecs @ bvecs.T
    assert np.mean(to_base.max(1) > 0.98) < 0.05  # not copies of the real vectors either
    own = np.array(
        [next(j for j, b in enumerate(base[0]) if c.text.startswith(b.text + " ")) for c in chunks]
    )
    near3 = np.argsort(-to_base, axis=1)[:, :3]
    assert np.mean([o in row for o, row in zip(own, near3)]) > 0.9  # its text's own vector is near
    shape = bench_scale.structure(vecs, bvecs[:20])
    assert shape["near_duplicates"] == 0 and shape["nn_cos_max"] < 0.99 and shape["gap_10_11_p50"] > 0


def test_quantised_hnsw_recall_reload_and_incremental_commit(tmp_path: Path, base) -> None:  # type: ignore[no-untyped-def]
    syn = chunks, vecs, _ = bench_scale.synthetic(*base, N)
    st = _store(tmp_path / "idx", syn)
    m = st.manifest()
    assert m is not None and m.index_type == "hnsw-sq8"
    assert (tmp_path / "idx" / f"vectors-{m.build}.npy").exists()
    ld = st.loaded
    assert isinstance(ld.index, faiss.IndexHNSWSQ) and isinstance(ld.vectors, np.memmap)
    assert np.array_equal(np.asarray(ld.vectors), vecs)  # the float vectors, kept exactly
    assert np.array_equal(ld.floats([7, 2, N - 1]), vecs[[7, 2, N - 1]])  # read by row, not mapped
    queries = base[1][:40] + 0.05
    recall = []
    for q in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        got = st.dense_search(q, 10)
        want = faiss_index.top_k(vecs @ q, 10)
        recall.append(len({r for r, _ in got} & set(want.tolist())) / 10)
        assert np.allclose([s for _, s in got], vecs[[r for r, _ in got]] @ q, atol=1e-5)  # re-ranked exactly
    assert np.mean(recall) >= 0.95
    hit = Retriever.open([st], FakeEmbedder()).search(chunks[7].text, k=3)
    assert any(h.chunk.text == chunks[7].text for h in hit)
    writer = FaissStore(tmp_path / "idx", hnsw_threshold=1000)
    writer.delete_file("syn0")  # rows 0-99: the next build re-reads the memory-mapped floats of this one
    writer.commit()
    again = FaissStore(tmp_path / "idx")
    assert again.info().chunks == N - 100 and again.info().index_type == "hnsw-sq8"
    assert np.array_equal(np.asarray(again.loaded.vectors), vecs[100:])
    assert not (tmp_path / "idx" / f"vectors-{m.build}.npy").exists()  # the old build is gone


def test_float_hnsw_index_built_before_still_loads(
    tmp_path: Path, base, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    syn = chunks, vecs, _ = bench_scale.synthetic(*base, 1500)

    def float_hnsw(dim: int, n: int, threshold: int) -> faiss.Index:
        return faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)

    monkeypatch.setattr(faiss_store, "make_faiss", float_hnsw)
    _store(tmp_path / "idx", syn)
    monkeypatch.undo()
    st = FaissStore(tmp_path / "idx")
    assert st.info().index_type == "hnsw" and not list((tmp_path / "idx").glob("vectors-*"))
    q = vecs[5]
    assert st.dense_search(q, 1)[0][0] == 5


def _bm25s(folder: Path, field: str) -> bm25s.BM25:
    """bm25s' own index of a build's tokens: the reference the compact postings must equal."""
    vocab: dict[str, int] = {}
    lines = next(folder.glob("tokens-*.jsonl")).read_text(encoding="utf-8").splitlines()
    ids = [[vocab.setdefault(t, len(vocab)) for t in json.loads(line)[field]] for line in lines]
    bm = bm25s.BM25()
    bm.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return bm


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_pruned_bm25_equals_every_posting_summed(
    tmp_path: Path, base, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:  # type: ignore[no-untyped-def]
    if compiled and not postings.NUMBA:
        pytest.skip("numba is not installed (pip install 'rag-vi[fast]')")
    monkeypatch.setattr(postings, "NUMBA", compiled)
    _store(tmp_path / "idx", bench_scale.synthetic(*base, N))
    st = FaissStore(tmp_path / "idx")
    full = {f: _bm25s(tmp_path / "idx", f) for f in ("norm", "fold")}
    if not compiled:  # and a build saved by bm25s, from before the compact postings, searched the same way
        for f, bm in full.items():
            folder = next((tmp_path / "idx").glob(f"bm25-*/{f}"))
            shutil.rmtree(folder)
            bm.save(str(folder), show_progress=False)
        st = FaissStore(tmp_path / "idx")
        assert isinstance(st.loaded.bm25["fold"], postings.Postings)
    lookups: list[int] = []
    pruned = 0
    real = postings._lookup
    monkeypatch.setattr(postings, "_lookup", lambda *a: (lookups.append(1), real(*a))[1])
    words = [{w for w in c.text.lower().split() if w.isalpha()} for c in base[0]]
    df = Counter(w for ws in words for w in ws)
    texts = [c.text.split(". ")[0] for c in base[0]] + ["của và là các những", "thủ tục và hồ sơ"]
    for ws in words:  # a word of one text only, and common words it lacks: the long terms decide
        rare = sorted(w for w in ws if df[w] == 1)[:1]
        texts.append(" ".join(rare + [w for w, c in df.most_common(40) if w not in ws][:8]))
    for text, k in zip(texts, [20, 300] * len(texts)):
        qt = query_tokens(text)
        want = np.zeros(N, np.float32)
        for f, bm in full.items():
            if qt[f]:
                want += bm.get_scores(list(qt[f]))
        top = [int(i) for i in faiss_index.top_k(want, k) if want[i] > 0]
        got = st.sparse_search(qt, k)
        pruned += len(lookups)
        assert np.allclose([s for _, s in got], want[top], rtol=1e-5)
        assert {r for r, _ in got} == set(top) or np.isclose(got[-1][1], want[top[-1]], rtol=1e-5)
        at = postings.bm25_at(st.loaded.fields(qt), [r for r, _ in got])
        assert at.tolist() == [s for _, s in got]  # the same float32 sums
        _, kept = st.scores([r for r, _ in got][::-1], None, qt)  # the search's own scores, kept
        assert kept is not None and kept.tolist() == [s for _, s in got][::-1]
        lookups.clear()
    assert pruned or not compiled  # the long postings were pruned for some queries, not summed


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_compact_postings_are_bm25s_weights_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """Rows past 65,536 (several segments), a count past 255 (uint16): the same rows, weights and bounds."""
    if compiled and not postings.NUMBA:
        pytest.skip("numba is not installed (pip install 'rag-vi[fast]')")
    monkeypatch.setattr(postings, "NUMBA", compiled)
    rng = np.random.default_rng(0)
    n = 140_000
    docs = [[f"w{int(x)}" for x in rng.zipf(1.5, rng.integers(1, 12)) % 500] for _ in range(n)]
    docs[70_000] = ["w1"] * 300 + ["only"]
    compact.write(tmp_path / "f", docs, batch=30_000)
    cp = compact.CompactPostings(tmp_path / "f")
    assert cp.segs == 3 and cp.tf.dtype == np.uint16 and cp.low.dtype == np.uint16
    assert cp.low.nbytes + cp.tf.nbytes == 4 * sum(map(len, map(set, docs)))  # 2 + 2 bytes a posting
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in d] for d in docs]
    bm = bm25s.BM25()
    bm.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    sc = bm.scores
    assert all(cp.vocab[t] == vocab[t] for t in cp.vocab) and len(cp.vocab) == len(set(vocab) - {""})
    for t in range(len(cp.vocab)):
        s, e = sc["indptr"][t], sc["indptr"][t + 1]
        rows, w = cp.postings(t)
        assert rows.tolist() == sc["indices"][s:e].tolist() and w.tobytes() == sc["data"][s:e].tobytes()
        assert cp.maxima[t] == sc["data"][s:e].max()
    for q in (["w1", "w7"], ["w1", "w2", "w3", "w499"], ["w0", "w13", "w1", "nowhere"]):
        want = bm.get_scores([x for x in q if x in vocab])
        top = [int(i) for i in faiss_index.top_k(want, 10)]
        got = postings.bm25_top([(cp, q)], 10)
        assert np.allclose([s for _, s in got], want[top], rtol=1e-6)  # bm25s sums in another order
        assert {r for r, _ in got} == set(top) or np.isclose(got[-1][1], want[top[-1]], rtol=1e-6)
        at = postings.bm25_at([(cp, q)], [r for r, _ in got][::-1])
        assert at.tolist() == [s for _, s in got][::-1]  # the same float32 sums as the search
    assert postings.bm25_top([(cp, ["only", "w1"])], 1)[0][0] == 70_000  # a row in the second segment
    for term in ("w1", "w3", "w250"):  # one term: the search's sums are its weights, bit for bit
        want = bm.get_scores([term])
        rows = np.flatnonzero(want)
        got = postings.bm25_top([(cp, [term])], len(rows))
        assert sorted(got) == sorted(zip(rows.tolist(), want[rows].tolist()))
        assert postings.bm25_at([(cp, [term])], rows.tolist()).tolist() == want[rows].tolist()


def test_postings_are_read_in_only_when_they_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compact.write(tmp_path / "f", [["a", "b"], ["b", "c", "c"]])
    seen: list[int] = []
    monkeypatch.setattr(compact, "_map_in", lambda *a: seen.append(sum(x.nbytes for x in a)))
    monkeypatch.setattr(compact, "_available", lambda: 4 * 2**30)
    compact.CompactPostings(tmp_path / "f")
    assert seen == [4 * 3]  # four postings: a row's low bits (2 bytes) and a count (1 byte) each
    monkeypatch.setattr(compact, "_available", lambda: 40)  # the postings are over a quarter of it
    compact.CompactPostings(tmp_path / "f")
    assert len(seen) == 1
