"""No LLM: the answer is the passage sentences that best match the question, cited. Instant."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from ..cite import asked_units, counts_any
from ..text import folded_tokens, match_form, split_sentences
from ..types import Hit

# The words a question asks about: "những hệ thống nào" → hệ thống; "bao nhiêu giải pháp" → giải pháp.
_FOCUS = (
    re.compile(r"(?:bao nhiêu|mấy)\s+(\w+(?:\s+\w+)?)"),
    re.compile(r"(\w+(?:\s+\w+)?)\s+(?:nào|gì)\b"),
)
_NOT_FOCUS = {"là", "những", "các", "cái", "được", "điều", "có", "thể", "như"}
FOCUS_WEIGHT = 2.0
LENGTH_POWER = 0.5  # cosine-style: divide by sqrt(length), as long sentences match words by chance


def focus_tokens(question: str) -> set[str]:
    """Folded tokens of the phrase next to the question word (what the answer must be about)."""
    q = match_form(question)
    out: set[str] = set()
    for pat in _FOCUS:
        for m in pat.finditer(q):
            words = [w for w in m.group(1).split() if w not in _NOT_FOCUS]
            out |= set(folded_tokens(" ".join(words))) if words else set()
    return out


def rank_sentences(question: str, passages: list[Hit]) -> list[tuple[float, int, str]]:
    """(score, passage index, sentence) by idf-weighted overlap with the question, best first."""
    sents: list[tuple[int, str, set[str]]] = []
    for i, h in enumerate(passages):
        text = h.chunk.text
        for s, e in split_sentences(text):
            sents.append((i, text[s:e], set(folded_tokens(text[s:e]))))
    if not sents:
        return []
    df: dict[str, int] = {}
    for _, _, toks in sents:
        for t in toks:
            df[t] = df.get(t, 0) + 1
    n = len(sents)
    q = set(folded_tokens(question))
    focus = focus_tokens(question)
    best: dict[str, tuple[float, int, str]] = {}  # overlapping chunks repeat their edge sentences
    for i, sent, toks in sents:
        score = sum(math.log(1 + n / df[t]) * (FOCUS_WEIGHT if t in focus else 1) for t in q & toks)
        score *= (1 - 0.05 * i) / max(len(toks), 1) ** LENGTH_POWER
        key = " ".join(sent.split())
        if key not in best or score > best[key][0]:
            best[key] = (score, i, sent)
    return sorted(best.values(), key=lambda x: -x[0])


class ExtractiveGenerator:
    """Builds "sentence [n]" answers from the top passages; the same reply format as the LLMs."""

    name = "extractive"

    def __init__(self, max_sentences: int = 2) -> None:
        self.max_sentences = max_sentences

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        ranked = rank_sentences(question, passages)
        units = asked_units(question)
        if units:  # "bao nhiêu nhân viên": only a sentence that counts staff answers it
            ranked = [r for r in ranked if counts_any(r[2], units)]
        if not ranked or ranked[0][0] <= 0:
            yield "Trả lời: Không tìm thấy thông tin trong tài liệu."
            return
        best = ranked[0][0]
        chosen = [r for r in ranked[: self.max_sentences] if r[0] >= 0.6 * best]
        parts = [f"{sent} [{i + 1}]" for _, i, sent in chosen]
        yield "Trả lời: " + " ".join(parts)
