import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.config import Settings
from rag.errors import EmptyCorpusError, IndexMismatchError, IndexNotFoundError
from rag.index import build_index
from rag.ingest import list_files, sha256_file
from rag.retrieve import Retriever
from rag.stores.faiss import FaissStore, read_manifest

from .conftest import CORPUS, INDEX, FakeEmbedder


def test_build_then_search(fake_index: Settings, fake_embedder: FakeEmbedder) -> None:
    r = Retriever.load(fake_index.index_dir, fake_embedder)
    hits = r.search("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", k=3)
    assert "13.000 điểm giao dịch" in hits[0].text
    assert hits[0].doc_id == "001_98b07f8de306c9c3"
    assert [h.rank for h in hits] == [0, 1, 2]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_incremental_rebuild_embeds_only_changes(tmp_path: Path, corpus_copy: Path) -> None:
    s = Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus_copy))
    first = build_index(settings=s, embedder=FakeEmbedder())
    assert first.embedded == first.chunks and first.reused == 0

    same = build_index(settings=s, embedder=FakeEmbedder())
    assert same.embedded == 0 and same.reused == first.chunks

    changed = corpus_copy / "003_4a60302ab2f43409.txt"
    changed.write_text(changed.read_text("utf-8").replace("169 điểm cầu", "170 điểm cầu"), "utf-8")
    (corpus_copy / "000_f9ec1f25dfb5d511.txt").unlink()
    (corpus_copy / "new.md").write_text("# Mới\n\nTỉnh Bắc Ninh có 999 điểm phát sóng 5G.", "utf-8")
    emb = FakeEmbedder()
    third = build_index(settings=s, embedder=emb)
    assert third.removed == ["000_f9ec1f25dfb5d511"]
    assert sorted(third.changed) == ["003_4a60302ab2f43409", "new"]
    assert emb.calls == third.embedded < third.chunks
    r = Retriever.load(s.index_dir, FakeEmbedder())
    st = FaissStore(s.index_dir)
    chunks = st.chunks(list(range(third.chunks)))
    assert all(c.doc_id != "000_f9ec1f25dfb5d511" for c in chunks)
    assert "999 điểm" in r.search("Bắc Ninh có bao nhiêu điểm phát sóng 5G", k=1)[0].text
    # reused vectors are the same as freshly computed ones
    fresh = FakeEmbedder().embed_documents([f"{c.title}\n{c.text}" if c.title else c.text for c in chunks])
    assert np.allclose(st.loaded.vectors, fresh, atol=1e-6)
    # old build files are gone, only one build remains
    assert len(list(Path(s.index_dir).glob("chunks-*.jsonl"))) == 1


def test_crash_mid_build_leaves_previous_index_usable(
    fake_index: Settings, corpus_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = read_manifest(fake_index.index_dir)
    (corpus_copy / "extra.txt").write_text("Một tài liệu mới về chuyển đổi số.", "utf-8")

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(OSError, match="disk full"):
        build_index(settings=fake_index, embedder=FakeEmbedder())
    monkeypatch.undo()
    after = read_manifest(fake_index.index_dir)
    assert after == before
    assert FaissStore(fake_index.index_dir).info().chunks == before.count
    r = Retriever.load(fake_index.index_dir, FakeEmbedder())
    assert "13.000" in r.search("Bưu điện Việt Nam có bao nhiêu điểm giao dịch", k=1)[0].text
    assert not list(Path(fake_index.index_dir).glob("*.tmp"))
    assert not list(Path(fake_index.index_dir).glob(".build-*"))


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag index"):
        Retriever.load(str(tmp_path / "nothing"), FakeEmbedder())


def test_other_embedder_is_a_clear_error(fake_index: Settings) -> None:
    class Other(FakeEmbedder):
        id = "st:some/other-model"

    with pytest.raises(IndexMismatchError, match=r"rag index .* RAG_EMBEDDER"):
        Retriever.load(fake_index.index_dir, Other())


def test_empty_corpus_builds_nothing(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    with pytest.raises(EmptyCorpusError):
        build_index(tmp_path / "c", tmp_path / "idx", embedder=FakeEmbedder())
    assert not (tmp_path / "idx" / "manifest.json").exists()


def test_hnsw_above_threshold(tmp_path: Path, corpus_copy: Path) -> None:
    s = Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus_copy), hnsw_threshold=10)
    report = build_index(settings=s, embedder=FakeEmbedder())
    assert report.index_type == "hnsw-sq8"
    r = Retriever.load(s.index_dir, FakeEmbedder())
    assert "HNSW" in type(FaissStore(s.index_dir).loaded.index).__name__
    assert "13.000" in r.search("Bưu điện Việt Nam có bao nhiêu điểm giao dịch", k=1)[0].text


def test_committed_index_is_fresh() -> None:
    """Fails when corpus/ changed and embeddings/ was not rebuilt (run: rag index)."""
    m = read_manifest(INDEX)
    files = {p.relative_to(CORPUS).with_suffix("").as_posix(): sha256_file(p) for p in list_files(CORPUS)}
    assert {k: v["sha256"] for k, v in m.files.items()} == files, "embeddings/ is stale: run `rag index`"
    d = Settings()
    assert (m.chunk_tokens, m.overlap_sentences) == (d.chunk_tokens, d.overlap_sentences)
    assert m.embedder.startswith("e5-small-onnx-int8@")
    loaded = FaissStore(INDEX).loaded
    vectors = loaded.vectors
    assert len(loaded.offsets) - 1 == len(vectors) == loaded.index.ntotal == m.count
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert json.loads((INDEX / "manifest.json").read_text())["dim"] == vectors.shape[1] == 384
