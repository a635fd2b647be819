"""The short answer inside a full-sentence answer: the words that fill the question word's place.

A grounded answer restates the question: "Ấn bản thứ bao nhiêu vẫn chưa được thay thế?" → "Ấn bản
thứ ba vẫn chưa được thay thế [1]." Aligning the two on syllables leaves the words the answer put
where the question had its question word ("ba"). When the question word has no counterpart ("Tại sao
…?" answered "… do …"), the longest run of words the question does not have is the answer. The
question words are a closed class of the language, not a list fitted to any set of questions.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from .text import fold, match_form

_MARK = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")
_WORD = re.compile(r"\w+(?:[.,/:\-]\w+)*", re.UNICODE)
# Vietnamese question words (accent-folded), longest first; and the English ones.
_QUESTION_WORDS = [
    ("bao", "nhieu"), ("khi", "nao"), ("luc", "nao"), ("bao", "gio"), ("tai", "sao"), ("vi", "sao"),
    ("the", "nao"), ("o", "dau"), ("nam", "nao"), ("nao",), ("gi",), ("ai",), ("may",), ("dau",),
    ("sao",), ("what",), ("which",), ("who",), ("whom",), ("when",), ("where",), ("why",), ("how",),
]  # fmt: skip
QUESTION_SYLLABLES = {s for qw in _QUESTION_WORDS for s in qw}
_EDGE = {
    "la",
    "co",
    "va",
    "cua",
    "o",
    "tai",
    "trong",
    "duoc",
    "vao",
    "nam",
    "do",
    "boi",
    "the",
    "is",
    "was",
    "are",
    "of",
}


def _words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def question_word_at(folded: list[str]) -> tuple[int, int] | None:
    for i in range(len(folded)):
        for qw in _QUESTION_WORDS:
            if tuple(folded[i : i + len(qw)]) == qw:
                return i, i + len(qw)
    return None


def short_answer(question: str, answer: str) -> str:
    """The part of ``answer`` that answers ``question`` (the whole answer when it cannot tell)."""
    text = _MARK.sub("", answer).strip().rstrip(" .!?;:…")
    a_words, q_words = _words(text), _words(question)
    if not a_words or not q_words:
        return text
    a = [fold(match_form(m.group())) for m in a_words]
    q = [fold(match_form(m.group())) for m in q_words]
    gaps: list[tuple[int, int, int, int]] = []  # (q_start, q_end, a_start, a_end) of unmatched runs
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, q, a, autojunk=False).get_opcodes():
        if tag != "equal" and j2 > j1:
            gaps.append((i1, i2, j1, j2))
    if not gaps:
        return text
    where = question_word_at(q)
    chosen = None
    if where:
        qs, qe = where
        over = [g for g in gaps if g[0] < qe and g[1] > qs]  # the answer words in the question word's place
        if over:
            chosen = (over[0][2], over[-1][3])
    if chosen is None:
        best = max(gaps, key=lambda g: g[3] - g[2])
        chosen = (best[2], best[3])
    j1, j2 = chosen
    while j2 - j1 > 1 and a[j1] in _EDGE:  # "là 15" → "15"
        j1 += 1
    if j2 - j1 >= len(a) - 1:
        return text
    return text[a_words[j1].start() : a_words[j2 - 1].end()]
