"""``rag bench --scale`` on a small size: every measure is there and the approximate indexes hold up."""

from pathlib import Path

import pytest

from rag import bench_scale
from rag.config import Settings

from .conftest import FakeEmbedder


def test_scale_rows_for_the_faiss_store(corpus_copy: Path) -> None:
    s = Settings(corpus_dir=str(corpus_copy), index_dir="/nonexistent", hnsw_threshold=500)
    rows = bench_scale.scale([800], ["faiss", "postgres:100"], s, FakeEmbedder(), corpus_copy)
    assert len(rows) == 1  # postgres is capped at 100 chunks: skipped at 800
    r = rows[0]
    assert (r["backend"], r["n"], r["index"]) == ("faiss", 800, "hnsw-sq8")
    assert r["recall@10"] >= 0.9 and r["bm25_recall@10"] == 1.0
    assert (
        r["hybrid_p50_ms"] > 0
        and r["hybrid_warm_p50_ms"] > 0
        and r["rss_mb"] > 0
        and r["load_first_query_s"] > 0
    )
    text = bench_scale.markdown(None, rows, "rag bench --scale 800", "test")
    assert "| faiss | 800 | hnsw-sq8 |" in text


def test_scale_rows_for_the_postgres_store_kept_and_measured_again(pg, corpus_copy: Path) -> None:  # type: ignore[no-untyped-def]
    import math

    primary, _ = pg
    s = Settings(corpus_dir=str(corpus_copy), index_dir="/nonexistent", store=primary.url)
    first = bench_scale.scale([300], ["postgres"], s, FakeEmbedder(), corpus_copy, keep=True)[0]
    again = bench_scale.scale([300], ["postgres"], s, FakeEmbedder(), corpus_copy, keep=True)[0]
    assert first["build_s"] > 0 and math.isnan(again["build_s"])  # the kept collection was reused
    for r in (first, again):
        assert r["index"] == "hnsw" and r["recall@10"] >= 0.9
        assert r["bm25_recall@10"] == 1.0  # a small collection: no term has more postings than are read
        assert r["bm25_exhaustive_s"] > 0
    from rag.stores.postgres import PostgresStore

    PostgresStore.drop(primary.url, "scale_300")


def test_kept_faiss_collection_is_measured_again(
    corpus_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import math
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t"))
    (tmp_path / "t").mkdir()
    s = Settings(corpus_dir=str(corpus_copy), index_dir="/nonexistent", hnsw_threshold=500)
    first = bench_scale.scale([600], ["faiss"], s, FakeEmbedder(), corpus_copy, keep=True)[0]
    assert (tmp_path / "t" / "rag-scale-faiss-600" / "manifest.json").exists()
    again = bench_scale.scale([600], ["faiss"], s, FakeEmbedder(), corpus_copy, keep=True)[0]
    assert first["build_s"] > 0 and math.isnan(again["build_s"])
    assert again["recall@10"] == first["recall@10"] and again["index"] == "hnsw-sq8"
