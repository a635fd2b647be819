"""The short answer inside a full-sentence answer: the words that fill the question word's place.

A grounded answer restates the question: "Ấn bản thứ bao nhiêu vẫn chưa được thay thế?" → "Ấn bản
thứ ba vẫn chưa được thay thế [1]." Aligning the two on syllables leaves the words the answer put
where the question had its question word ("ba"). When the question word has no counterpart ("Tại sao
…?" answered "… do …"), the longest run of words the question does not have is the answer. The
question words are a closed class of the language, not a list fitted to any set of questions.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

from .text import CITATION, fold, match_form, overlap_f1, syllables

# A run of passage words holding all of a short answer's words and few more (syllable F1 at least
# this) is the answer in the document's wording ("Ireland, Malta và Anh Quốc" for "Ireland, Malta,
# Anh Quốc"); with more words added it is a longer statement, not the same answer.
SNAP_F1 = 0.75
_WORD = re.compile(r"\w+(?:[.,/:\-]\w+)*", re.UNICODE)
_SYLLABLE = re.compile(r"\w+")
# Vietnamese question words, longest first; and the English ones. They are matched as written:
# "đầu" (first), "máy" (machine) and "não" (brain) are not "đâu", "mấy" and "nào"; only a syllable
# typed without any marks matches by its folded form ("bao nhieu").
_QUESTION_WORDS = [
    ("bao", "nhiêu"), ("khi", "nào"), ("lúc", "nào"), ("bao", "giờ"), ("tại", "sao"), ("vì", "sao"),
    ("thế", "nào"), ("ở", "đâu"), ("năm", "nào"), ("nào",), ("gì",), ("ai",), ("mấy",), ("đâu",),
    ("sao",), ("what",), ("which",), ("who",), ("whom",), ("when",), ("where",), ("why",), ("how",),
]  # fmt: skip
QUESTION_SYLLABLES = {fold(s) for qw in _QUESTION_WORDS for s in qw}  # accent-folded
# the units of a date, written before a question word that asks for one ("vào ngày tháng năm nào")
_DATE_UNITS = {"ngày", "tháng", "năm", "giờ"}
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


def _is(word: str, question_word: str) -> bool:
    return word == question_word or (word == fold(word) and word == fold(question_word))


def question_word_at(words: list[str]) -> tuple[int, int] | None:
    """Where the first question word is among ``words`` (lower case, as written; see
    ``question_words``): its start and end index, or None."""
    for i in range(len(words)):
        for qw in _QUESTION_WORDS:
            if len(words) - i >= len(qw) and all(_is(w, q) for w, q in zip(words[i : i + len(qw)], qw)):
                return i, i + len(qw)
    return None


def question_words(text: str) -> list[str]:
    """The syllables of ``text`` in lower case with their marks, as ``question_word_at`` reads them."""
    return _SYLLABLE.findall(match_form(text))


def _bare(text: str) -> str:
    """Text without its surrounding spaces and closing punctuation."""
    return text.strip().rstrip(" .!?;:…")


def short_answer(question: str, answer: str) -> str:
    """The part of ``answer`` that answers ``question`` (the whole answer when it cannot tell)."""
    text = _bare(CITATION.sub("", answer))
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
    written = [match_form(m.group()) for m in q_words]
    where = question_word_at(written)
    chosen = None
    if where:
        qs, qe = where
        while qs > 0 and written[qs - 1] in _DATE_UNITS:  # "ngày tháng năm nào" asks for a whole date
            qs -= 1
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
    start, end = a_words[j1].start(), a_words[j2 - 1].end()
    if text.count("(", start, end) > text.count(")", start, end) and text[end : end + 1] == ")":
        end += 1  # "Sultan Ahmed III (1703-1730)", not "… (1703-1730"
    return text[start:end]


_SPAN_WORD = re.compile(r"\S+")
_SPAN_PUNCT = " ,.;:!?…()[]\"'“”"


def snap(answer: str, passages: list[str], min_f1: float = SNAP_F1) -> str:
    """The shortest run of passage words that holds every word of ``answer`` and little more
    (syllable F1 ≥ ``min_f1``), so the short answer shown is the document's own wording:
    "Ireland, Malta, Anh Quốc" → "Ireland, Malta và Anh Quốc". Otherwise ``answer`` unchanged."""
    want = syllables(answer)
    if not want:
        return answer
    need = Counter(want)
    best, best_score, best_len = answer, 0.0, 0
    for text in passages:
        words = list(_SPAN_WORD.finditer(text))
        sylls = [syllables(w.group()) for w in words]
        for i in range(len(words)):
            got: list[str] = []
            for j in range(i, min(len(words), i + len(want) + 3)):
                got += sylls[j]
                if need - Counter(got):
                    continue  # a run that leaves out a word of the answer says something else
                score = overlap_f1(Counter(got), need)
                if score > best_score or (score == best_score and 0 < len(got) < best_len):
                    best, best_score, best_len = text[words[i].start() : words[j].end()], score, len(got)
    return best.strip(_SPAN_PUNCT) if best_score >= min_f1 else answer


_TRAILING_MARKS = re.compile(rf"^(.*?)((?:{CITATION.pattern})+)\s*[.!?…]?\s*$", re.DOTALL)


def verbatim(answer: str, short: str, snapped: str) -> str:
    """A phrase answer ("Ireland, Malta, Anh Quốc [1]") shown in its passage's own words
    ("Ireland, Malta và Anh Quốc [1]") when ``snap`` found them: what the reader sees is then a
    copy of the cited text. A sentence, or a phrase that was not snapped, stays as it was."""
    m = _TRAILING_MARKS.match(answer)
    if snapped == short or not m or CITATION.search(m.group(1)):
        return answer
    if _bare(m.group(1)) != short:
        return answer  # a sentence around the short answer: its wording is the model's, checked as such
    return snapped + m.group(2)
