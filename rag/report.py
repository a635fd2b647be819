"""Running an evaluation and writing its reports (stdout table, JSON, Markdown)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .evaluate import (
    QAItem,
    QAResult,
    answer_metrics,
    confidence_sweep,
    evaluate_retrieval,
    result_dicts,
    score_answer,
)
from .pipeline import RAG


def run_eval(
    rag: RAG,
    items: Sequence[QAItem],
    generator: str | None = None,
    k: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Retrieval metrics per mode, then every question through ``ask()``."""
    k = k or rag.settings.top_k
    # a follow-up is retrieved as the conversation would retrieve it
    queries = [replace(it, question=rag.search_query(it.question, _history(it))) for it in items]
    retrieval = evaluate_retrieval(queries, lambda q, kk, m: rag.retrieve(q, kk, m))  # type: ignore[arg-type]
    gen = rag.generator(generator)
    results: list[QAResult] = []
    for i, it in enumerate(items):
        answer = rag.ask(it.question, _history(it), generator=gen.name, k=k)
        results.append(score_answer(it, answer))
        if progress:
            progress(i + 1, len(items))
    return {
        "generator": gen.name,
        "k": k,
        "retrieval": retrieval,
        "answers": answer_metrics(results),
        "confidence_sweep": confidence_sweep(results),
        "results": result_dicts(results),
    }


def _history(item: QAItem) -> list[tuple[str, str]]:
    return [(q, "") for q in item.history]


def _f(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:.3f}" if x < 10 else f"{x:.0f}"
    return str(int(x)) if isinstance(x, float) else str(x)


def summary_markdown(report: dict[str, Any]) -> str:
    r = report["retrieval"]
    cols = ["recall@1", "recall@3", "recall@5", "recall@10", "mrr", "ms_p50"]
    lines = [
        f"### Retrieval (n={next(iter(r.values()))['n'] if r else 0}, answerable questions with a gold quote)",
        "",
    ]
    lines.append("| mode | " + " | ".join(cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for mode, m in r.items():
        lines.append(f"| {mode} | " + " | ".join(_f(m[c]) for c in cols) + " |")
    a = report["answers"]
    lines += [
        "",
        f"### Answers (generator `{report['generator']}`, top-k {report['k']})",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key, val in a.items():
        lines.append(f"| {key} | {_f(val)} |")
    sweep = report.get("confidence_sweep") or []
    if any(r.get("confidence") is not None for r in report.get("results", [])):
        cols = ["correctness", "false_abstention", "abstention_unanswerable", "wrong_but_cited"]
        lines += ["", "### The same answers at other `RAG_MIN_CONFIDENCE` cuts", ""]
        lines += ["| min_confidence | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for row in sweep:
            lines.append(f"| {row['min_confidence']:.1f} | " + " | ".join(_f(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def per_question_markdown(report: dict[str, Any]) -> str:
    lines = ["| id | question | answer | citations | verdict |", "|---|---|---|---|---|"]
    for r in report["results"]:
        ans = r["answer"].replace("\n", " ").replace("|", "\\|")
        cites = ", ".join(f"[{c['n']}] {c['doc_id']}" for c in r["citations"])
        q = r["question"].replace("|", "\\|")
        lines.append(f"| {r['id']} | {q} | {ans} | {cites} | {r['verdict']} |")
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"eval-{report['generator']}"
    jp, mp = out / f"{name}.json", out / f"{name}.md"
    jp.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=float), encoding="utf-8")
    mp.write_text(
        f"# Evaluation: {report['generator']}\n\n{summary_markdown(report)}\n\n## Per question\n\n{per_question_markdown(report)}\n",
        encoding="utf-8",
    )
    return jp, mp
