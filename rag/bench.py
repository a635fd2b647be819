"""``rag bench``: speed and memory, measured and written to BENCHMARKS.md.

Timings on shared 2-core machines are noisy: every figure is a median over repeated runs, and
the number of runs is printed beside it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .evaluate import QAItem, percentile
from .index import build_index, passage_text
from .pipeline import RAG


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )
        mem_s = f"{mem / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        mem_s = "?"
    return f"{cpu}, {os.cpu_count()} cores, {mem_s} RAM, Python {platform.python_version()}, {platform.system()} {platform.machine()}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ms(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def bench_index(rag: RAG, corpus: str, runs: int) -> dict[str, float]:
    """Full build throughput vs the embedder's raw throughput on the same chunk texts."""
    builds, raws = [], []
    texts: list[str] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            r = build_index(corpus, tmp, settings=rag.settings, embedder=rag.embedder)
            builds.append(r.chunks / r.seconds)
            if not texts:
                from .stores.faiss import FaissStore

                texts = [passage_text(c) for c in FaissStore(tmp).chunks(list(range(r.chunks)))]
        t = time.perf_counter()
        for i in range(0, len(texts), 16):
            rag.embedder.embed_documents(texts[i : i + 16])
        raws.append(len(texts) / (time.perf_counter() - t))
    b, e = statistics.median(builds), statistics.median(raws)
    return {"chunks": len(texts), "build_chunks_per_s": b, "embed_chunks_per_s": e, "build_vs_embed": b / e}


def bench_queries(rag: RAG, items: Sequence[QAItem], runs: int) -> dict[str, float]:
    qs = [it.question for it in items]
    rag.retrieve(qs[0])  # load the index
    emb = [_ms(partial(rag.embedder.embed_query, [q])) for _ in range(runs) for q in qs]
    ret = [_ms(partial(rag.retrieve, q)) for _ in range(runs) for q in qs]
    ext = [_ms(partial(rag.ask, q, generator="extractive")) for _ in range(runs) for q in qs]
    return {
        "query_embed_ms_p50": percentile(emb, 50),
        "retrieval_ms_p50": percentile(ret, 50),
        "retrieval_ms_p95": percentile(ret, 95),
        "extractive_ask_ms_p50": percentile(ext, 50),
        "extractive_ask_ms_p95": percentile(ext, 95),
        "query_runs": runs * len(qs),
    }


def llama_cpp_build() -> str:
    """The CPU features llama.cpp was compiled with ("AVX2 = 1 | AVX512 = 1 …")."""
    try:
        import llama_cpp
    except ImportError:
        return ""
    info = llama_cpp.llama_print_system_info()
    return " ".join((info.decode() if isinstance(info, bytes) else str(info)).split())


def bench_llm(rag: RAG, items: Sequence[QAItem], n: int) -> dict[str, float]:
    t = time.perf_counter()
    gen = rag.generator("local")
    load_s = time.perf_counter() - t
    if gen.name != "local":
        return {"llm": 0}
    dec: Any = getattr(gen, "decoder", None)
    k = dec.draft_tokens if dec is not None else 0

    checks: list[float] = []

    def run(draft_tokens: int) -> tuple[list[float], list[float], list[float]]:
        if dec is not None:
            dec.draft_tokens = draft_tokens
        ttft, tps, total = [], [], []
        checks.clear()
        for it in list(items)[:n]:
            a = rag.ask(it.question, generator="local")
            if a.timings.first_token_ms is not None:
                ttft.append(a.timings.first_token_ms)
                total.append(a.timings.total_ms)
                checks.append(a.timings.check_ms)
            if a.timings.tokens_per_s:
                tps.append(a.timings.tokens_per_s)
        return ttft, tps, total

    plain_tps: list[float] = []
    try:
        if dec is not None and k:  # the same questions without drafts, to show what they bring
            _, plain_tps, _ = run(0)
        before = dict(dec.stats) if dec is not None else {}
        ttft, tps, total = run(k)
    finally:
        if dec is not None:
            dec.draft_tokens = k
    out = {
        "llm_load_s": load_s,
        "ttft_ms_p50": percentile(ttft, 50),
        "ttft_ms_p95": percentile(ttft, 95),
        "llm_total_ms_p50": percentile(total, 50),
        # the support check after generation, and its share of the whole answer time
        "check_ms_p50": percentile(checks, 50),
        "check_share_p50": statistics.median(c / t for c, t in zip(checks, total))
        if checks
        else float("nan"),
        "tokens_per_s_p50": statistics.median(tps) if tps else float("nan"),
        "llm_questions": len(ttft),
        "peak_rss_mb": peak_rss_mb(),
    }
    if plain_tps:
        drafted = dec.stats["drafted"] - before["drafted"]
        out["tokens_per_s_no_drafts_p50"] = statistics.median(plain_tps)
        out["draft_tokens_accepted"] = (
            (dec.stats["accepted"] - before["accepted"]) / drafted if drafted else 0.0
        )
    return out


def fmt(x: float) -> str:
    if isinstance(x, float) and np.isnan(x):
        return "-"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:.3f}" if abs(x) < 1 else f"{x:.1f}"


def eval_sections(folder: Path) -> str:
    """The summaries of the committed ``rag eval`` reports, so every target is on one page."""
    from .report import summary_markdown

    parts = []
    for name in ("local", "extractive"):
        f = folder / f"eval-{name}.json"
        if f.exists():
            parts.append(summary_markdown(json.loads(f.read_text("utf-8"))))
    if not parts:
        return ""
    head = (
        "## Answer quality (`rag eval --qa eval/qa.jsonl --generator NAME --out eval/out`)\n\n"
        "Per-question tables: `eval/out/eval-*.md`.\n\n"
    )
    return head + "\n\n".join(parts) + "\n"


def kept_sections(folder: Path) -> str:
    """Sections other scripts write to ``bench/*.md`` (the load test of `rag serve`), kept on
    every rewrite of BENCHMARKS.md."""
    return "".join("\n" + p.read_text("utf-8") for p in sorted(folder.glob("*.md")))


def markdown(res: dict[str, Any], command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {res['machine']}  ",
        f"Command: `{command}`  ",
        f"Date: {res['date']}",
        "",
    ]
    lines += ["## Serving", "", "| measure | value |", "|---|---|"]
    for k, v in {**res["index"], **res["queries"], **res.get("llm", {})}.items():
        lines.append(f"| {k} | {fmt(v)} |")
    lines += [
        "",
        f"Medians over {res['runs']} runs for the index build, and over {res['queries'].get('query_runs', 0)} queries.",
    ]
    if res.get("llm", {}).get("tokens_per_s_no_drafts_p50"):
        lines += [
            "",
            "LLM figures: the same questions are answered twice, first with plain greedy decoding",
            "(`tokens_per_s_no_drafts_p50`), then with prompt-lookup drafts (the default; the answers are",
            "the same). `draft_tokens_accepted` is the share of drafted tokens the model kept.",
        ]
    if res.get("llama_cpp"):
        lines += ["", f"llama.cpp build: `{res['llama_cpp']}`"]
    text = "\n".join(lines) + "\n" + ("\n" + res["eval"] if res.get("eval") else "")
    return text


def run(
    settings: Settings,
    items: Sequence[QAItem],
    runs: int,
    llm_questions: int,
    sizes: Sequence[int],
    out: Path,
    command: str,
) -> dict[str, Any]:
    rag = RAG(settings)
    res: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "runs": runs}
    res["index"] = bench_index(rag, settings.corpus_dir, runs)
    res["queries"] = bench_queries(rag, [i for i in items if i.question], runs)
    if llm_questions:
        res["llm"] = bench_llm(rag, [i for i in items if i.answerable], llm_questions)
        res["llama_cpp"] = llama_cpp_build()
    from .config import PROJECT_ROOT

    res["eval"] = eval_sections(PROJECT_ROOT / "eval" / "out") + kept_sections(PROJECT_ROOT / "bench")
    (out / "bench").mkdir(parents=True, exist_ok=True)
    (out / "bench" / "results.json").write_text(json.dumps(res, indent=1, default=float), "utf-8")
    text = markdown(res, command)
    path = out / "BENCHMARKS.md"
    if path.exists() and "## Collections at scale" in path.read_text("utf-8"):  # kept: rag bench --scale
        rest = path.read_text("utf-8").partition("## Collections at scale")[2]
        section = "## Collections at scale" + (rest[: rest.find("\n## ") + 1] if "\n## " in rest else rest)
        head, mark, tail = text.partition("## Answer quality")
        text = head + section.rstrip() + "\n\n" + mark + tail if mark else text + "\n" + section
    path.write_text(text, "utf-8")
    return res
