"""Command line: ``rag index | search | ask | chat | serve | eval | bench``."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from .config import PROJECT_ROOT, Settings
from .errors import EmptyQuestionError, RagError


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the options actually given; the rest from RAG_* variables or defaults."""
    given = {
        "index_dir": getattr(args, "index", None),
        "generator": getattr(args, "generator", None),
        "collection": getattr(args, "collection", None),
    }
    return Settings(**{k: v for k, v in given.items() if v})


def _progress_bar(desc: str, unit: str = "chunk"):  # type: ignore[no-untyped-def]
    """A tqdm bar on stderr: done/total, rate and time left."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def cmd_index(args: argparse.Namespace) -> int:
    from .collections import index_collection

    s = Settings(**({"index_dir": args.out} if args.out else {}))
    logging.getLogger("rag.formats.ocr").setLevel(logging.INFO)  # page-by-page progress of long scans
    if args.batch:
        s.index_batch = args.batch
    report = index_collection(
        s, args.corpus or s.corpus_dir, args.collection, progress=_progress_bar("indexing", unit="file")
    )
    print(
        f"indexed {report.files} files → {report.chunks} chunks in {report.out_dir} "
        f"({report.index_type}; embedded {report.embedded}, reused {report.reused}) in {report.seconds:.1f}s"
    )
    if report.removed:
        print(f"dropped {len(report.removed)} deleted files: {', '.join(report.removed)}")
    if report.ocr_pages:
        print(f"OCR: {report.ocr_pages} pages read by OCR in {', '.join(report.ocr_files)}")
    for doc_id, encoding in report.converted:
        print(f"converted {doc_id} from {encoding} to Unicode")
    for sk in report.skipped:
        print(f"skipped {sk.path}: {sk.reason}")
    return 0


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"


def cmd_collections(args: argparse.Namespace) -> int:
    from .collections import list_collections

    rows = list_collections(Settings())
    if not rows:
        print("no collections yet — create one with: rag index FOLDER --collection NAME")
    for c in rows:
        print(
            f"{c.collection:<20} {c.files:>6} files {c.chunks:>8} chunks  {_size(c.bytes):>9}  "
            f"{c.embedder}  {c.location}"
        )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .collections import remove_collection, remove_file

    s = Settings()
    if args.file:
        remove_file(s, args.name, args.file)
        print(f"removed {args.file} from {args.name}")
    else:
        remove_collection(s, args.name)
        print(f"removed collection {args.name}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .pipeline import RAG

    rag = RAG(_settings(args))
    q = args.query.strip()
    if not q:
        raise EmptyQuestionError(
            'the query is empty — type a question, e.g. rag search "chuyển đổi số là gì"'
        )
    t = time.perf_counter()
    hits = rag.retrieve(q, args.k, args.mode)
    ms = (time.perf_counter() - t) * 1000
    for h in hits:
        dense = f"{h.dense:.3f}" if h.dense is not None else "-"
        sparse = f"{h.sparse:.2f}" if h.sparse is not None else "-"
        where = f" — {h.chunk.location}" if h.chunk.location else ""
        print(f"[{h.rank + 1}] {h.score:.4f}  (cos {dense}, bm25 {sparse})  {h.title}{where}  ‹{h.chunk_id}›")
        print("    " + h.text.replace("\n", "\n    "))
        print()
    print(f"{len(hits)} passages in {ms:.0f} ms", file=sys.stderr)
    return 0


def _print_answer(answer, streamed: str) -> None:  # type: ignore[no-untyped-def]
    """``answer`` after the text ``streamed`` as it was generated: the checked answer is printed
    again when it is not that text (held back, put into English, citations renumbered)."""
    if streamed:
        print()
    again = answer.text.strip() != streamed.strip()
    if again:
        print(f"\n{answer.text}" if streamed else answer.text)
    if answer.abstained:
        if answer.related:
            print("\nCó thể liên quan:")
            for h in answer.related:
                print(f"  - {h.title} ‹{h.chunk_id}›")
    else:
        print("\nNguồn:")
        for c in answer.citations:
            where = f" — {c.location}" if c.location else ""
            print(f"  [{c.n}] {c.title}{where} ‹{c.chunk_id}›")
            print(f"      “{c.quote}”")
    for w in answer.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if answer.searched:
        print(f"{answer.reading_label()}: «{answer.searched}»", file=sys.stderr)
    t = answer.timings
    ttft = f", first token {t.first_token_ms / 1000:.1f}s" if t.first_token_ms else ""
    print(
        f"({answer.generator}: retrieval {t.retrieval_ms:.0f} ms{ttft}, total {t.total_ms / 1000:.1f}s)",
        file=sys.stderr,
    )


def cmd_ask(args: argparse.Namespace) -> int:
    from .pipeline import RAG

    rag = RAG(_settings(args))
    stream = rag.stream(args.question, generator=args.generator, k=args.k)
    streamed = ""
    if args.stream:
        for delta in stream:
            print(delta, end="", flush=True)
            streamed += delta
    _print_answer(stream.answer, streamed)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import load_qa, without_diacritics
    from .pipeline import RAG
    from .report import per_question_markdown, run_eval, summary_markdown, write_reports

    items = load_qa(args.qa)
    if args.no_diacritics:
        items = [without_diacritics(i) for i in items]
    rag = RAG(_settings(args))
    report = run_eval(
        rag, items, args.generator, args.k, progress=_progress_bar("questions", unit="question")
    )
    print(summary_markdown(report))
    if args.verbose or len(items) <= 80:
        print()
        print(per_question_markdown(report))
    jp, mp = write_reports(report, args.out)
    print(f"\nreports: {jp} {mp}", file=sys.stderr)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    try:
        from ui.app import launch
    except ImportError as exc:
        if "gradio" not in str(exc):
            raise
        print("error: the chat needs Gradio — pip install 'rag-vi[ui]'", file=sys.stderr)
        return 1
    launch(args.host, args.port, _settings(args))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .api import serve
    except ImportError as exc:
        if not any(m in str(exc) for m in ("fastapi", "uvicorn", "starlette")):
            raise
        print("error: the API needs FastAPI and uvicorn — pip install 'rag-vi[api]'", file=sys.stderr)
        return 1
    serve(args.host, args.port, _settings(args), chat=args.chat)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import bench
    from .evaluate import load_qa

    sizes = [int(x) for x in args.scale.split(",") if x.strip()] if args.scale else []
    command = "rag " + " ".join(a for a in sys.argv[1:] if a not in ("-v", "--verbose"))
    if args.scale is not None:
        from . import bench_scale

        text = bench_scale.run(
            _settings(args),
            sizes,
            [b for b in args.backends.split(",") if b],
            Path(args.corpus),
            args.copies,
            command.strip(),
            Path(args.out),
            bench.machine(),
            keep=args.keep,
        )
        print(text)
        return 0
    res = bench.run(
        _settings(args),
        load_qa(args.qa),
        args.runs,
        args.llm_questions,
        sizes,
        Path(args.out),
        command.strip(),
    )
    print(bench.markdown(res, command.strip()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Hỏi đáp có trích dẫn trên tài liệu tiếng Việt")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="cmd", required=True)

    from .ingest import FORMATS

    pi = sub.add_parser(
        "index",
        help="index a folder of documents",
        description=f"Index a folder of documents. Formats: {FORMATS}. Old TCVN3/VNI/Windows-1258 text "
        "is converted to Unicode; files that cannot be read are skipped with the reason.",
    )
    pi.add_argument("corpus", nargs="?", help="folder of documents (default: corpus/)")
    pi.add_argument("--out", help="index folder of the 'corpus' collection (default: RAG_INDEX_DIR)")
    pi.add_argument("--collection", help="collection name (default: RAG_COLLECTION or 'corpus')")
    pi.add_argument("--batch", type=int, help="chunks embedded and stored per batch (default 256)")
    pi.set_defaults(func=cmd_index)

    pl = sub.add_parser("collections", help="list collections: files, chunks, size, embedder")
    pl.set_defaults(func=cmd_collections)

    pr = sub.add_parser("remove", help="remove a collection, or one file from it")
    pr.add_argument("name", help="collection name")
    pr.add_argument("--file", help="doc id of one file (its path in the folder, without extension)")
    pr.set_defaults(func=cmd_remove)

    ps = sub.add_parser("search", help="print the passages that best match a query")
    ps.add_argument("query")
    ps.add_argument("-k", type=int, default=5)
    ps.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    ps.add_argument("--index", help="index folder")
    ps.add_argument("--collection", help="collection to search (default: RAG_COLLECTION or 'corpus')")
    ps.set_defaults(func=cmd_search)

    pa = sub.add_parser("ask", help="answer a question with cited sources")
    pa.add_argument("question")
    pa.add_argument("--generator", choices=["local", "transformers", "openai", "extractive"])
    pa.add_argument("-k", type=int, default=None, help="passages to retrieve")
    pa.add_argument("--no-stream", dest="stream", action="store_false", help="print only the final answer")
    pa.add_argument("--index", help="index folder")
    pa.add_argument("--collection", help="collection to search (default: RAG_COLLECTION or 'corpus')")
    pa.set_defaults(func=cmd_ask)

    pe = sub.add_parser("eval", help="evaluate retrieval and answers on a JSONL question file")
    pe.add_argument("--qa", required=True, help="JSONL: {id, question, gold_quote?, keywords?, answerable}")
    pe.add_argument("--generator", choices=["local", "transformers", "openai", "extractive"])
    pe.add_argument("--k", type=int, default=None)
    pe.add_argument("--out", default="eval/out", help="folder for the JSON and Markdown reports")
    pe.add_argument("--index", help="index folder")
    pe.add_argument("--collection", help="collection to search (default: RAG_COLLECTION or 'corpus')")
    pe.add_argument(
        "--no-diacritics",
        action="store_true",
        help="ask every question (and its history) typed without diacritics, as on a keyboard without Vietnamese",
    )
    pe.set_defaults(func=cmd_eval)

    pc = sub.add_parser("chat", help="start the chat UI (Gradio) on http://127.0.0.1:7860")
    pc.add_argument("--host", default=None, help="default 127.0.0.1 (0.0.0.0 on a Space)")
    pc.add_argument("--port", type=int, default=None, help="default 7860 (GRADIO_SERVER_PORT)")
    pc.add_argument("--generator", choices=["local", "transformers", "openai", "extractive"])
    pc.add_argument("--index", help="index folder")
    pc.add_argument("--collection", help="collection to search (default: RAG_COLLECTION or 'corpus')")
    pc.set_defaults(func=cmd_chat)

    pv = sub.add_parser("serve", help="the HTTP API (OpenAI-compatible) with the chat at / (port 8000)")
    pv.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1; 0.0.0.0 to serve other machines")
    pv.add_argument("--port", type=int, default=8000)
    pv.add_argument("--generator", choices=["local", "transformers", "openai", "extractive"])
    pv.add_argument("--index", help="index folder")
    pv.add_argument("--no-chat", dest="chat", action="store_false", help="the API only, without Gradio")
    pv.set_defaults(func=cmd_serve)

    pb = sub.add_parser("bench", help="measure speed and memory; writes BENCHMARKS.md")
    pb.add_argument("--qa", default=str(PROJECT_ROOT / "eval" / "qa.jsonl"), help="questions used as queries")
    pb.add_argument("--runs", type=int, default=3, help="repetitions (medians are reported)")
    pb.add_argument(
        "--llm-questions", type=int, default=8, help="questions answered by the local LLM (0 = skip)"
    )
    pb.add_argument(
        "--scale",
        nargs="?",
        const="100000",
        help="collections at scale instead: build throughput, then these synthetic sizes (default 100000)",
    )
    pb.add_argument(
        "--backends", default="faiss,postgres", help="stores for --scale (postgres needs RAG_STORE)"
    )
    pb.add_argument(
        "--keep",
        action="store_true",
        help="--scale: keep the collections (PostgreSQL, and FAISS in the temp dir), and measure a complete one again instead of refilling it",
    )
    pb.add_argument(
        "--corpus", default=str(PROJECT_ROOT.parent / "shared" / "corpora" / "viquad2-dev" / "corpus"),
        help="real documents for --scale",
    )  # fmt: skip
    pb.add_argument(
        "--copies", type=int, default=4, help="copies of --corpus for the build throughput (0 = skip)"
    )
    pb.add_argument("--out", default=".", help="folder for BENCHMARKS.md and bench/")
    pb.add_argument("--index", help="index folder")
    pb.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except EmptyQuestionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
