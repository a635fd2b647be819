"""Fit the answer-confidence calibration (rag/calibration.json) from `rag eval` reports.

    RAG_MIN_CONFIDENCE=0 rag eval --qa eval/qa.jsonl --out /tmp/ev-seed
    RAG_MIN_CONFIDENCE=0 rag eval --qa ../shared/corpora/viquad2-dev/qa.jsonl --index /tmp/vq --out /tmp/ev-vq
    python scripts/calibrate.py seed=/tmp/ev-seed/eval-local.json vq=/tmp/ev-vq/eval-local.json \
        --qa eval/qa.jsonl ../shared/corpora/viquad2-dev/qa.jsonl

For another model (a GGUF in RAG_LLM_PATH, a server, a Hugging Face model), run `rag eval` with it
and `--generator` naming it, write the result elsewhere with `--out`, and point RAG_CALIBRATION at it.

Every answer the local model gave (kept or held back) is a row: its label is whether it was right
(keywords of an answerable question), its signals those the report stored, with the model's support
judgement read again with the shipped prompt (so the weights match the code). Each corpus is held
out in turn, the others fit, and the held-out corpus scored at the 0.5 cut; then all are fitted
together and saved.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.confidence import CALIBRATION, Calibration, Signals, fit_logistic  # noqa: E402
from rag.evaluate import keywords_ok  # noqa: E402

FEATURES = ("support_logit", "mean_logprob", "min_logprob", "top_cosine", "coverage", "colocation")


def rows_of(report: Path, qa: dict[str, dict]) -> list[dict]:
    rows = []
    for r in json.loads(report.read_text(encoding="utf-8"))["results"]:
        text = r.get("withheld") or ("" if r["abstained"] else r["answer"])
        if not text or not r.get("signals") or r["signals"].get("support") is None:
            continue  # abstained before any answer was rated
        item = qa.get(r["id"], {})
        right = bool(r["answerable"]) and keywords_ok(text, item.get("keywords", []))
        rows.append({"id": r["id"], "question": r["question"], "answer": text, "citations": r["citations"],
                     "signals": r["signals"], "label": int(right)})  # fmt: skip
    return rows


def rejudge(rows: list[dict], generator: str) -> None:
    """The model's support judgement with the prompt the code ships (``generator`` configured as
    ``RAG_*`` says: the model whose answers the reports hold)."""
    from rag.cite import _MARK
    from rag.config import Settings
    from rag.generators import make_generator
    from rag.short import short_answer

    gen = make_generator(generator, Settings())
    if not hasattr(gen, "support_probability"):
        sys.exit(f"generator {generator!r} has no support check to rate answers with")
    for r in rows:
        evidence = [
            f"({c.get('title', '')}) {c['quote']}" if c.get("title") else c["quote"] for c in r["citations"]
        ]
        claim = short_answer(r["question"], r["answer"]) or _MARK.sub("", r["answer"]).strip()
        r["signals"]["support"] = gen.support_probability(r["question"], claim, evidence)


def features(rows: list[dict], names: tuple[str, ...]) -> list[dict[str, float | None]]:
    from rag.text import is_vietnamese

    out = []
    for r in rows:
        s = Signals(**{k: r["signals"].get(k) for k in ("support", "mean_logprob", "min_logprob")},
                    top_cosine=r["signals"].get("top_cosine") or 0.0, coverage=r["signals"].get("coverage") or 0.0,
                    colocation=r["signals"].get("colocation"),
                    # as the answer was rated: a question typed without marks is read restored, in Vietnamese
                    foreign=r["signals"].get("foreign", not is_vietnamese(r["question"])),
                    translated=bool(r["signals"].get("translated")))  # fmt: skip
        f = s.features()
        out.append({n: f[n] for n in names})
    return out


def auc(scores: list[float], labels: list[int]) -> float:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def score(cal: Calibration, rows: list[dict], names: tuple[str, ...]) -> str:
    feats = features(rows, names)
    probs = [cal.score(f) for f in feats]
    kept = [r for r, p in zip(rows, probs) if p >= 0]
    held = [r for r, p in zip(rows, probs) if p < 0]
    return (
        f"AUC {auc(probs, [r['label'] for r in rows]):.3f}; kept {len(kept)} ({sum(r['label'] for r in kept)} right, "
        f"{sum(1 - r['label'] for r in kept)} wrong), held back {len(held)} ({sum(r['label'] for r in held)} right, "
        f"{sum(1 - r['label'] for r in held)} wrong)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="*", help="NAME=eval-local.json (with its question file beside --qa)")
    ap.add_argument("--qa", nargs="*", default=[], help="the question files, in the same order")
    ap.add_argument("--rows", help="fit from rated answers saved by --save-rows instead of reports")
    ap.add_argument("--features", default=",".join(FEATURES))
    ap.add_argument("--no-rejudge", action="store_true", help="use the support stored in the reports")
    ap.add_argument(
        "--generator", default="local", help="the model whose answers the reports hold (RAG_* settings)"
    )
    ap.add_argument("--out", default=str(CALIBRATION))
    ap.add_argument("--save-rows", help="write the rated answers (with the new judgements) to this JSON file")
    args = ap.parse_args()
    names = tuple(args.features.split(","))
    corpora: dict[str, list[dict]] = (
        json.loads(Path(args.rows).read_text(encoding="utf-8")) if args.rows else {}
    )
    for spec, qa_path in zip(args.reports, args.qa):
        name, path = spec.split("=", 1)
        qa = {}
        for line in Path(qa_path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                qa[str(obj.get("id"))] = obj
        corpora[name] = rows_of(Path(path), qa)
        print(f"{name}: {len(corpora[name])} rated answers, {sum(r['label'] for r in corpora[name])} right")
    if not args.no_rejudge and not args.rows:
        for rows in corpora.values():
            rejudge(rows, args.generator)
    if args.save_rows:
        Path(args.save_rows).write_text(json.dumps(corpora, ensure_ascii=False), encoding="utf-8")
    for name, rows in corpora.items():
        rest = [r for n, rs in corpora.items() if n != name for r in rs]
        if rest:
            cal = fit_logistic(features(rest, names), [r["label"] for r in rest])
            print(f"held out {name}: {score(cal, rows, names)}")
        print(f"  {name}, no check: {len(rows)} answers, {sum(1 - r['label'] for r in rows)} wrong")
    everything = [r for rs in corpora.values() for r in rs]
    cal = fit_logistic(features(everything, names), [r["label"] for r in everything])
    note = f"fitted by scripts/calibrate.py on {', '.join(corpora)}: {len(everything)} answers of generator {args.generator}"
    cal = Calibration(cal.weights, cal.bias, note, cal.means)
    print(f"all: {score(cal, everything, names)}")
    cal.save(Path(args.out))
    print(f"wrote {args.out}: {json.dumps(cal.weights)} bias {cal.bias:.3f}")


if __name__ == "__main__":
    main()
