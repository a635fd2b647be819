"""No LLM: the answer is the passage sentences that best match the question, cited. Instant."""

from __future__ import annotations

import math
from collections.abc import Iterator

from ..text import folded_tokens, split_sentences
from ..types import Hit


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
    scored = []
    for i, sent, toks in sents:
        score = sum(math.log(1 + n / df[t]) for t in q & toks)
        scored.append((score * (1 - 0.05 * i), i, sent))
    scored.sort(key=lambda x: -x[0])
    return scored


class ExtractiveGenerator:
    """Builds "sentence [n]" answers from the top passages; the same reply format as the LLMs."""

    name = "extractive"

    def __init__(self, max_sentences: int = 2) -> None:
        self.max_sentences = max_sentences

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        ranked = rank_sentences(question, passages)
        if not ranked or ranked[0][0] <= 0:
            yield "Trả lời: Không tìm thấy thông tin trong tài liệu."
            return
        best = ranked[0][0]
        chosen = [r for r in ranked[: self.max_sentences] if r[0] >= 0.6 * best]
        parts = [f"{sent} [{i + 1}]" for _, i, sent in chosen]
        yield "Trả lời: " + " ".join(parts)
