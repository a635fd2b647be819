import os
from pathlib import Path

import pytest

from rag.config import Settings
from rag.pipeline import RAG
from rag.uploads import MAX_FILE_BYTES, Workspace, safe_name

from .conftest import FakeEmbedder


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\win.ini.md", "win.ini.md"),
        (".bashrc", "bashrc"),
        ("Báo cáo <script>.TXT", "Báo_cáo_script_.txt"),
        ("..", "tai_lieu"),
    ],
)
def test_safe_name(name: str, safe: str) -> None:
    assert safe_name(name) == safe


@pytest.fixture
def ws_settings(fake_index: Settings, tmp_path: Path) -> Settings:
    return Settings(**{**fake_index.__dict__, "upload_dir": str(tmp_path / "uploads")})


def test_upload_is_indexed_and_private(ws_settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "bac_ninh.txt"
    src.write_text("Tỉnh Bắc Ninh có 777 trạm phát sóng 5G phục vụ chuyển đổi số.", "utf-8")
    emb = FakeEmbedder()
    ws = Workspace(ws_settings)
    report = ws.add([src], emb)
    assert report.added == ["bac_ninh.txt"] and not report.rejected
    # only the upload is embedded and stored: the shared index is never copied
    assert report.build is not None and report.build.embedded == report.build.chunks == 1
    assert not list(ws.root.rglob("*001_98b07f8de306c9c3*"))
    mine = RAG(ws_settings, embedder=emb).for_collection(uploads=str(ws.index_dir))
    assert "777 trạm" in mine.retrieve("Bắc Ninh có bao nhiêu trạm phát sóng 5G?", 1)[0].text
    # ... searched together with the shared collection and fused
    both = mine.retrieve("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", 3)
    assert "13.000 điểm giao dịch" in both[0].text
    # the shared index and other users do not see it
    shared = RAG(ws_settings, embedder=emb)
    assert all("777" not in h.text for h in shared.retrieve("Bắc Ninh có bao nhiêu trạm phát sóng 5G?", 5))
    other = Workspace(ws_settings)
    assert other.root != ws.root and not other.has_uploads


def test_traversal_symlink_type_size_and_broken_files_refused(ws_settings: Settings, tmp_path: Path) -> None:
    evil_dir = tmp_path / "in"
    evil_dir.mkdir()
    good = evil_dir / "good.md"
    good.write_text("Đà Nẵng có 12 khu công nghệ cao.", "utf-8")
    link = evil_dir / "link.txt"
    os.symlink("/etc/passwd", link)
    exe = evil_dir / "run.exe"
    exe.write_bytes(b"MZ")
    big = evil_dir / "big.txt"
    big.write_bytes(b"a" * (MAX_FILE_BYTES + 1))
    broken = evil_dir / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 garbage")
    ws = Workspace(ws_settings)
    report = ws.add([good, link, exe, big, broken], FakeEmbedder())
    assert report.added == ["good.md"]
    reasons = dict(report.rejected)
    assert set(reasons) == {"link.txt", "run.exe", "big.txt", "broken.pdf"}
    assert (
        "symlink" in reasons["link.txt"]
        and "quá lớn" in reasons["big.txt"]
        and "không đọc được" in reasons["broken.pdf"]
    )
    assert sorted(p.name for p in ws.docs.iterdir()) == ["good.md"]
    assert all(
        p.resolve().is_relative_to(ws.root.resolve()) for p in ws.root.rglob("*") if not p.is_symlink()
    )


def test_failed_reindex_keeps_previous_index(
    ws_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.uploads as uploads

    first = tmp_path / "a.txt"
    first.write_text("Huế có 5 di sản văn hóa.", "utf-8")
    ws = Workspace(ws_settings)
    ws.add([first], FakeEmbedder())
    before = (ws.index_dir / "manifest.json").read_text()

    def fail(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(uploads, "build_index", fail)
    second = tmp_path / "b.txt"
    second.write_text("Cần Thơ có 9 quận.", "utf-8")
    with pytest.raises(OSError):
        ws.add([second], FakeEmbedder())
    assert (ws.index_dir / "manifest.json").read_text() == before
    assert ws.uploaded() == ["a.txt"]


def test_workspace_id_cannot_escape(ws_settings: Settings) -> None:
    from rag.errors import UploadError

    with pytest.raises(UploadError):
        Workspace(ws_settings, "../../etc")
