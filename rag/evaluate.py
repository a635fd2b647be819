"""Evaluation: question files, retrieval metrics (recall@k, MRR) and answer metrics."""

from __future__ import annotations

import json
import re
import statistics
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import QAFileError
from .prompt import in_english
from .text import CITATION, fold, looks_english, overlap_f1
from .types import Answer, Hit

KS = (1, 3, 5, 10)


@dataclass
class QAItem:
    id: str
    question: str
    answerable: bool = True
    gold_quote: str = ""
    keywords: list[str] = field(default_factory=list)
    kind: str = ""
    history: list[str] = field(default_factory=list)  # earlier questions of the conversation
    answers: list[str] = field(default_factory=list)  # reference answer spans, for exact match and F1


def without_diacritics(item: QAItem) -> QAItem:
    """The question as typed without diacritics ("Ai là ..." → "Ai la ..."); answers are judged as before."""
    return replace(item, question=fold(item.question), history=[fold(h) for h in item.history])


def load_qa(path: str | Path) -> list[QAItem]:
    """Read a JSONL question file; a bad line fails with its line number."""
    items = []
    p = Path(path)
    if not p.is_file():
        raise QAFileError(f"question file {p} does not exist")
    for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAFileError(
                f"{p}:{no}: not valid JSON ({exc.msg}); each line must be one JSON object"
            ) from exc
        if not isinstance(obj, dict):
            raise QAFileError(f"{p}:{no}: expected a JSON object, got {type(obj).__name__}")
        q = obj.get("question")
        if not isinstance(q, str) or not q.strip():
            raise QAFileError(f'{p}:{no}: missing "question" (a non-empty string)')
        kw = obj.get("keywords", [])
        if not isinstance(kw, list) or not all(isinstance(k, str) for k in kw):
            raise QAFileError(f'{p}:{no}: "keywords" must be a list of strings')
        hist = obj.get("history", [])
        if not isinstance(hist, list) or not all(isinstance(h, str) for h in hist):
            raise QAFileError(f'{p}:{no}: "history" must be a list of earlier questions (strings)')
        refs = obj.get("answers", [])
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise QAFileError(f'{p}:{no}: "answers" must be a list of reference answers (strings)')
        items.append(
            QAItem(
                id=str(obj.get("id", f"line{no}")),
                question=q,
                answerable=bool(obj.get("answerable", True)),
                gold_quote=str(obj.get("gold_quote") or ""),
                keywords=kw,
                kind=str(obj.get("kind", "")),
                history=hist,
                answers=refs,
            )
        )
    if not items:
        raise QAFileError(f"{p} holds no questions")
    return items


def fold_ws(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _canon(text: str) -> str:
    return fold_ws(unicodedata.normalize("NFC", text)).lower()


def contains_quote(passage: str, quote: str) -> bool:
    """A passage is a hit when it contains the gold quote (whitespace folded)."""
    return fold_ws(quote) in fold_ws(passage)


def _has(text: str, phrase: str) -> bool:
    """``phrase`` in ``text`` as whole syllables: "ba" is not found in "bao", "15" not in "150"."""
    p = _canon(phrase)
    if not p:
        return False
    pattern = re.escape(p)
    if p[0].isalnum() and p[-1].isalnum():
        pattern = rf"(?<!\w){pattern}(?!\w)"
    return re.search(pattern, text) is not None


def keywords_ok(answer: str, keywords: Sequence[str]) -> bool:
    """Every entry has one of its ``|`` alternatives in the answer as whole syllables (NFC, case
    and spaces folded)."""
    text = _canon(CITATION.sub("", answer))
    return all(any(_has(text, alt) for alt in entry.split("|")) for entry in keywords)


_PUNCT = re.compile(r"[^\w\s]")


def answer_syllables(text: str) -> list[str]:
    """Syllables for exact match and F1 as the ViQuAD papers score them: NFC, lower case, [n]
    markers and punctuation removed."""
    return _PUNCT.sub(" ", _canon(CITATION.sub("", text))).split()


def exact_match(prediction: str, references: Sequence[str]) -> float:
    pred = answer_syllables(prediction)
    return float(any(pred == answer_syllables(r) for r in references))


def syllable_f1(prediction: str, references: Sequence[str]) -> float:
    """The best SQuAD-style F1 over the references, on syllables."""
    pred = answer_syllables(prediction)
    best = 0.0
    for ref in references:
        best = max(best, overlap_f1(Counter(pred), Counter(answer_syllables(ref))))
    return best


def first_hit_rank(hits: Sequence[Hit], quote: str) -> int | None:
    for i, h in enumerate(hits):
        if contains_quote(h.chunk.text, quote):
            return i + 1
    return None


def retrieval_metrics(ranks: Sequence[int | None], ks: Sequence[int] = KS) -> dict[str, float]:
    """recall@k and MRR from the 1-based rank of the first relevant passage (None = not found)."""
    n = len(ranks)
    if n == 0:
        return {**{f"recall@{k}": 0.0 for k in ks}, "mrr": 0.0}
    out = {f"recall@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n
    return out


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    vs = sorted(values)
    idx = min(len(vs) - 1, max(0, int(round(q / 100 * (len(vs) - 1)))))
    return vs[idx]


@dataclass
class QAResult:
    id: str
    question: str
    answerable: bool
    answer: str
    abstained: bool
    correct: bool | None
    citation_ok: bool | None
    citations: list[dict[str, Any]]
    retrieval_ms: float
    first_token_ms: float | None
    total_ms: float
    tokens_per_s: float | None
    kind: str = ""
    exact: float | None = None  # exact match against ``answers`` (None without references)
    f1: float | None = None  # syllable F1 against ``answers``
    confidence: float | None = None
    signals: dict[str, float | None] = field(default_factory=dict)
    withheld: str = ""  # the answer held back by the confidence check
    withheld_correct: bool | None = None  # whether that answer would have been right
    check_ms: float = 0.0
    in_english: bool | None = None  # for an English question: whether the reply is in English

    @property
    def verdict(self) -> str:
        if not self.answerable:
            return "ok (abstained)" if self.abstained else "WRONG (answered)"
        if self.abstained:
            return "WRONG (abstained)"
        parts = ["correct" if self.correct else "WRONG"]
        if self.citation_ok is not None:
            parts.append("cited" if self.citation_ok else "bad citation")
        return ", ".join(parts)


def score_answer(item: QAItem, answer: Answer) -> QAResult:
    cites = [
        {"n": c.n, "doc_id": c.doc_id, "title": c.title, "chunk_id": c.chunk_id, "quote": c.quote}
        for c in answer.citations
    ]
    correct = citation_ok = None
    if item.answerable:
        correct = (not answer.abstained) and keywords_ok(answer.text, item.keywords)
        if item.gold_quote:
            citation_ok = (not answer.abstained) and any(
                contains_quote(c.text, item.gold_quote) for c in answer.citations
            )
    exact = f1 = None
    if item.answerable and item.answers:
        short = "" if answer.abstained else (answer.short or answer.text)
        exact, f1 = exact_match(short, item.answers), syllable_f1(short, item.answers)
    t = answer.timings
    return QAResult(
        id=item.id,
        question=item.question,
        answerable=item.answerable,
        answer=answer.text,
        abstained=answer.abstained,
        correct=correct,
        citation_ok=citation_ok,
        citations=cites,
        retrieval_ms=t.retrieval_ms,
        first_token_ms=t.first_token_ms,
        total_ms=t.total_ms,
        tokens_per_s=t.tokens_per_s,
        kind=item.kind,
        exact=exact,
        f1=f1,
        confidence=answer.confidence,
        signals=answer.signals,
        withheld=answer.withheld,
        withheld_correct=(item.answerable and keywords_ok(answer.withheld, item.keywords))
        if answer.withheld
        else None,
        check_ms=t.check_ms,
        in_english=in_english(answer.text) if looks_english(item.question) else None,
    )


def answer_metrics(results: Sequence[QAResult]) -> dict[str, float]:
    ans = [r for r in results if r.answerable]
    una = [r for r in results if not r.answerable]
    cited = [r for r in ans if r.citation_ok is not None]
    out: dict[str, float] = {
        "answerable": len(ans),
        "unanswerable": len(una),
        "correctness": sum(bool(r.correct) for r in ans) / len(ans) if ans else float("nan"),
        "citation_precision": sum(bool(r.citation_ok) for r in cited) / len(cited) if cited else float("nan"),
        # the same over the answers given: whether a citation, when there is one, holds the gold quote
        "citation_precision_answered": (
            sum(bool(r.citation_ok) for r in shown) / len(shown)
            if (shown := [r for r in cited if not r.abstained])
            else float("nan")
        ),
        "abstention_unanswerable": sum(r.abstained for r in una) / len(una) if una else float("nan"),
        "false_abstention": sum(r.abstained for r in ans) / len(ans) if ans else float("nan"),
        # answered with citations but wrong: what a reader is misled by
        "wrong_but_cited": (
            sum((not r.abstained) and bool(r.citations) and not r.correct for r in results) / len(results)
            if results
            else float("nan")
        ),
    }
    english = [r for r in results if r.in_english is not None]
    if english:  # the reply, an answer or "not found", in the question's language
        out["english_in_english"] = sum(bool(r.in_english) for r in english) / len(english)
    scored = [r for r in ans if r.f1 is not None]
    if scored:
        out["exact_match"] = sum(r.exact or 0.0 for r in scored) / len(scored)
        out["f1"] = sum(r.f1 or 0.0 for r in scored) / len(scored)
    for name, vals in (
        ("retrieval_ms", [r.retrieval_ms for r in results]),
        ("first_token_ms", [r.first_token_ms for r in results if r.first_token_ms is not None]),
        ("total_ms", [r.total_ms for r in results]),
    ):
        out[f"{name}_p50"] = percentile(vals, 50)
        out[f"{name}_p95"] = percentile(vals, 95)
    tps = [r.tokens_per_s for r in results if r.tokens_per_s]
    out["tokens_per_s_p50"] = statistics.median(tps) if tps else float("nan")
    return out


SWEEP_CUTS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)


def _shown(r: QAResult, cut: float) -> bool:
    """Whether the answer would be shown with ``RAG_MIN_CONFIDENCE=cut`` (an answer its second
    reading contradicted is held back at every cut: it was read again because it was borderline)."""
    if r.signals.get("reread") == 0.0:
        return False
    if r.withheld:
        return r.confidence is not None and r.confidence >= cut
    return not r.abstained and (r.confidence is None or r.confidence >= cut)


def _right(r: QAResult) -> bool:
    return bool(r.withheld_correct) if r.withheld else bool(r.correct)


def confidence_sweep(
    results: Sequence[QAResult], cuts: Sequence[float] = SWEEP_CUTS
) -> list[dict[str, float]]:
    """The answer metrics each ``RAG_MIN_CONFIDENCE`` would give, from one run: every rated answer
    keeps its confidence whether it was shown or held back, so the trade-off between wrong answers
    and false abstentions can be read for the user's own documents without rerunning the model."""
    return [_at_cut(results, cut) for cut in cuts]


def _at_cut(results: Sequence[QAResult], cut: float) -> dict[str, float]:
    ans = [r for r in results if r.answerable]
    una = [r for r in results if not r.answerable]
    nan = float("nan")
    wrong_cited = [_shown(r, cut) and bool(r.withheld or r.citations) and not _right(r) for r in results]
    return {
        "min_confidence": cut,
        "correctness": sum(_shown(r, cut) and _right(r) for r in ans) / len(ans) if ans else nan,
        "abstention_unanswerable": sum(not _shown(r, cut) for r in una) / len(una) if una else nan,
        "false_abstention": sum(not _shown(r, cut) for r in ans) / len(ans) if ans else nan,
        "wrong_but_cited": sum(wrong_cited) / len(results) if results else nan,
    }


def evaluate_retrieval(
    items: Sequence[QAItem],
    search: Callable[[str, int, str], list[Hit]],
    modes: Sequence[str] = ("dense", "bm25", "hybrid"),
) -> dict[str, dict[str, float]]:
    """recall@1/3/5/10 and MRR per retrieval mode, over answerable items with a gold quote."""
    golden = [it for it in items if it.answerable and it.gold_quote]
    out = {}
    for mode in modes:
        ranks = []
        times = []
        for it in golden:
            t = time.perf_counter()
            hits = search(it.question, max(KS), mode)
            times.append((time.perf_counter() - t) * 1000)
            ranks.append(first_hit_rank(hits, it.gold_quote))
        m = retrieval_metrics(ranks)
        m["ms_p50"] = percentile(times, 50)
        m["n"] = len(golden)
        out[mode] = m
    return out


def result_dicts(results: Sequence[QAResult]) -> list[dict[str, Any]]:
    return [{**asdict(r), "verdict": r.verdict} for r in results]
