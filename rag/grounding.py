"""Where an answer sits in its passages: checks that read the answer's place, not the question's wording.

- An answer that only repeats its question ("Quốc gia nào không tán thành …?") answers nothing.
- A borderline answer is given only when a second reading, of its cited sentences alone, finds the
  same words (``agrees``).
- A short answer is more likely right when the passage sentence that holds it also speaks of what
  the question asks. ``colocation`` is the share of the question's words found in that sentence,
  each word weighted by how rare it is among the sentences of the cited passages (so "của", "là"
  weigh little and names weigh much). "Nhật Bản" taken from a sentence about another war scores low
  for "Ottoman đánh bại quốc gia nào?", even though every word of the claim is in the passage.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from .prompt import says_not_found, strip_format
from .short import QUESTION_SYLLABLES, question_word_at, question_words, short_answer
from .text import CITATION, NUMBER, looks_english, norm_number, split_sentences, syllables
from .types import Answer

if TYPE_CHECKING:
    from .generators import Generator

# English words an answer adds to its question's words without saying anything new
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}
_LINKS = {"a", "an", "the", "it", "is", "are", "was", "were", "to", "of", "in", "on", "for", "by", "and"}
AGREE = 0.5  # two readings agree when this share of the shorter answer's syllables is in the other


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def echoes_question(question: str, answer: str) -> bool:
    """Whether ``answer`` says nothing its question did not: a question that asks for something
    (has a question word) answered with only its own word pairs, in the same order ("Quốc gia nào
    không tán thành …?" → "Quốc gia nào không tán thành … [1]"). "Trung Quốc" is new to a question
    about "Trung Hoa Dân Quốc": the pair (trung, quốc) is not in it. An English answer echoes when
    it has no word but its question's and a few linking ones ("What kind of workforce does Vinh Phuc
    want to train …?" → "Vinh Phuc wants to train a workforce … [1]")."""
    said = syllables(CITATION.sub("", answer))
    asked = syllables(question)
    if not said:
        return True
    if looks_english(question):  # English reorders the question's words: "does X want" → "X wants"
        if not _WH & set(asked):
            return False  # "Is Hanoi the capital?" may be answered by saying it again
        return all(_stem(w) in {_stem(a) for a in asked} or w in _LINKS for w in said)
    if question_word_at(question_words(question)) is None:
        return False
    if len(said) == 1:
        return said[0] in asked
    pairs = set(zip(asked, asked[1:]))
    return all(p in pairs for p in zip(said, said[1:]))


def colocation(question: str, answer: str, passages: list[str]) -> float:
    """The weighted share of the question's words found in the best sentence of ``passages``
    that holds every syllable of ``answer``; 0.0 when no single sentence holds it."""
    sentences = [set(syllables(p[s:e])) for p in passages for s, e in split_sentences(p)]
    said = set(syllables(CITATION.sub("", answer)))
    asked = set(syllables(question)) - said - QUESTION_SYLLABLES
    if not sentences or not said or not asked:
        return 0.0
    n = len(sentences)
    weight = {w: math.log((n + 1) / (0.5 + sum(w in s for s in sentences))) for w in asked}
    total = sum(max(v, 0.0) for v in weight.values()) or 1.0
    best = 0.0
    for sent in sentences:
        if said <= sent:
            best = max(best, sum(max(weight[w], 0.0) for w in asked & sent) / total)
    return best


def _units(text: str) -> tuple[set[str], set[str]]:
    """The numbers of ``text`` whole ("13.000", not "13" and "000"), and the syllables of the rest."""
    text = CITATION.sub("", text)
    return {norm_number(m.group()) for m in NUMBER.finditer(text)}, set(syllables(NUMBER.sub(" ", text)))


def agrees(first: str, second: str) -> bool | None:
    """Whether two short answers to one question name the same thing: at least half the syllables
    of the shorter are in the longer, and numbers, when both give some, are shared ("Mạc My" and
    "Mạc My ủng hộ nên không chịu quy phục" agree; "1923" and "1925", "2.000" and "13.000", "Tào
    Tháo" and "Viên Thiệu" do not). None when ``second`` gives no answer (nothing, or "not found"):
    that reading has nothing to say for or against ``first``."""
    (a_num, a_words), (b_num, b_words) = _units(first), _units(second)
    a, b = a_num | a_words, b_num | b_words
    if not b or says_not_found(second):
        return None
    if not a or (a_num and b_num and not a_num & b_num):
        return False  # two different numbers of the same thing ("2.000 điểm", "13.000 điểm")
    return len(a & b) >= AGREE * min(len(a), len(b))


def read_again(answer: Answer, gen: Generator, question: str) -> bool:
    """Whether a borderline ``answer`` holds up when the model reads its cited sentences alone:
    False when that second reading names something else ("Viên Thiệu" where the answer, read
    from all the passages, said "Tào Tháo"). ``question`` is in the documents' language.
    Recorded in ``answer.signals["reread"]``: 1 agrees, 0 names something else, None gives no
    answer (no record: not read again)."""
    reread = getattr(gen, "reread", None)
    if reread is None or not answer.citations or looks_english(answer.text):
        return True  # an answer in English cannot be compared word for word with the passages
    t = time.perf_counter()
    evidence = list(dict.fromkeys(f"({c.title}) {c.quote}" for c in answer.citations))  # a quote once
    second = strip_format(str(reread(question, evidence)))
    answer.timings.check_ms += (time.perf_counter() - t) * 1000
    if says_not_found(second):  # judged on the whole reply: its short part may leave the words out
        verdict = None
    else:
        verdict = agrees(answer.short or answer.text, short_answer(question, CITATION.sub("", second)))
    answer.signals["reread"] = None if verdict is None else float(verdict)
    return verdict is not False
