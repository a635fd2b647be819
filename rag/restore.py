"""Diacritics put back into a question typed without them, from the words of the passages it found.

"nghi quyet dai hoi dang bo tinh hai duong co nhiem ky nao" finds its passages through the accent-folded
BM25 copy, but the embedder, the reader and the checks all read it worse than the same question
written with its marks. The passages hold most of its words written properly: each run of the question's
syllables is given the form that the same folded run has most often in them, the question cut into
runs so that long ones win (so "hai duong" becomes "Hải Dương" where the passages speak of it, not
"hai đường"). Question words the passages rarely hold ("nao", "gi", "bao nhieu") come from a short
list; a syllable found nowhere, or written two ways with nothing to choose between them, is left as
typed. No model is involved, and nothing is guessed beyond what the documents write.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from .text import fold, is_vietnamese, looks_english, match_form, nfc

LONGEST = 4  # syllables in the longest run looked up
MARKED = 0.25  # a question with fewer of its words marked than this was typed without marks
_WORD = re.compile(r"\w+")
_BREAK = re.compile(r"[^\w\s]+")  # a run does not cross punctuation
_SENTENCE_END = re.compile(r"[.!?…:]")

# Words of questions and the commonest function words, which passages may not hold in the
# question's sense: the form a question most likely means ("nao" is "nào", not "não").
_COMMON_WORDS = [
    "gì", "nào", "ai", "đâu", "mấy", "là", "của", "có", "không", "được", "những", "các", "và", "với",
    "trong", "để", "cho", "về", "đã", "sẽ", "đang", "người", "nhiều", "gồm", "bằng", "theo", "từ",
    "đến", "nêu", "hãy", "việc", "điều", "thì", "hoặc", "nhất", "ông", "bà", "ở",
]  # fmt: skip
_COMMON_PHRASES = [
    "bao nhiêu", "như thế nào", "thế nào", "khi nào", "tại sao", "vì sao", "ở đâu", "là gì", "là ai",
    "đầu tiên", "thì sao",
]  # fmt: skip
COMMON = {fold(w): w for w in _COMMON_WORDS + _COMMON_PHRASES}


def typed_without_marks(question: str) -> bool:
    """Whether ``question`` is Vietnamese typed (mostly) without diacritics: at least two words,
    fewer than MARKED of them with a Vietnamese letter ("chuyển doi so la gi"), and not English.
    A question written with its marks has far more: 44% at the least over the questions of
    eval/qa.jsonl and ViQuAD dev, where names are many."""
    words = [w for w in _WORD.findall(question) if any(c.isalpha() for c in w)]
    if len(words) < 2 or looks_english(question):
        return False
    return sum(map(is_vietnamese, words)) < MARKED * len(words)


def _runs(text: str) -> Iterable[tuple[list[str], str]]:
    """Runs of words between punctuation, a sentence's first capital lowered ("Tỉnh có ..." counts
    as "tỉnh"; "UBND" stays); with the first word as written when it opens a name ("Hải Dương đẩy
    mạnh ..."), for the runs that hold the whole name, else ""."""
    start = True
    for piece in re.split(f"({_BREAK.pattern})", nfc(text)):
        words = _WORD.findall(piece)
        if _BREAK.fullmatch(piece):
            start = start or bool(_SENTENCE_END.search(piece))
        elif words:
            first = ""
            if start and not words[0].isupper():
                if len(words) > 1 and words[1][:1].isupper():
                    first = words[0]
                words[0] = words[0][:1].lower() + words[0][1:]
            yield words, first
            start = False


def vocabulary(texts: Iterable[str]) -> dict[str, Counter[str]]:
    """Folded lower-case runs of 1..LONGEST syllables → how often each written form occurs."""
    vocab: dict[str, Counter[str]] = defaultdict(Counter)
    for text in texts:
        for words, first in _runs(text):
            folded = [fold(w).lower() for w in words]
            for n in range(1, LONGEST + 1):
                for i in range(len(words) - n + 1):
                    run = words[i : i + n]
                    if i == 0 and n > 1 and first:  # "Hải Dương", not "hải Dương"; alone, "hải"
                        run = [first, *run[1:]]
                    vocab[" ".join(folded[i : i + n])][" ".join(run)] += 1
    return vocab


def _form(forms: Counter[str]) -> str:
    """The commonest spelling, in lower case when the passages ever write it so (a title's or a
    sentence's capital is not kept), else as they write it ("Hải Dương")."""
    by_spelling: Counter[str] = Counter()
    for f, c in forms.items():
        by_spelling[f.lower()] += c
    spelling = by_spelling.most_common(1)[0][0]
    if spelling in forms:
        return spelling
    return max((f for f in forms if f.lower() == spelling), key=lambda f: forms[f])


def restore(question: str, texts: Iterable[str]) -> str:
    """``question`` (typed without marks) with the diacritics of ``texts``, the passages it found,
    put back; a syllable they do not write is kept as typed."""
    vocab = vocabulary(texts)
    spans = [(m.start(), m.end()) for m in _WORD.finditer(question)]
    keys = [fold(question[a:b]).lower() for a, b in spans]
    fixed = _question_phrases(keys)
    for j, (a, b) in enumerate(spans):  # a word the user wrote with its marks stays as written
        if is_vietnamese(question[a:b]):
            fixed[j] = match_form(question[a:b])
    # best[i]: the best score of restoring words i.. and the first run's length and form
    best: list[tuple[float, int, str | None]] = [(0.0, 0, None)] * (len(keys) + 1)
    for i in range(len(keys) - 1, -1, -1):
        options: list[tuple[float, int, str | None]] = [(best[i + 1][0], 1, None)]  # as typed
        for n, form, score in _candidates(question, spans, keys, i, vocab):
            if all(fixed.get(i + j, w) == w for j, w in enumerate(match_form(form).split())):
                options.append((score + best[i + n][0], n, form))
        best[i] = max(options, key=lambda o: o[0])
    out: list[str] = []
    last = i = 0
    while i < len(keys):
        _, n, found = best[i]
        a, b = spans[i][0], spans[i + n - 1][1]
        typed = question[a:b]
        if found is not None and typed[:1].isupper():
            found = found[:1].upper() + found[1:]
        out += [question[last:a], found or typed]
        last, i = b, i + n
    out.append(question[last:])
    return "".join(out)


def _question_phrases(keys: list[str]) -> dict[int, str]:
    """Word position → its form, for the question's phrases of several words in COMMON ("bao
    nhieu" is "bao nhiêu"): no run from the passages may spell them otherwise ("tình báo nhiều")."""
    fixed: dict[int, str] = {}
    for n in range(LONGEST, 1, -1):
        for i in range(len(keys) - n + 1):
            form = COMMON.get(" ".join(keys[i : i + n]))
            if form and not any(i + j in fixed for j in range(n)):
                fixed.update({i + j: w for j, w in enumerate(form.split())})
    return fixed


def _candidates(
    question: str, spans: list[tuple[int, int]], keys: list[str], i: int, vocab: dict[str, Counter[str]]
) -> Iterable[tuple[int, str, float]]:
    """Runs that may restore the words from ``i``: (length, form, score). A run the passages write
    scores its length squared, so one long run beats pieces of it; one word scores 1 when COMMON
    has it or the passages write it one way only."""
    for n in range(min(LONGEST, len(keys) - i), 1, -1):
        if _BREAK.search(question[spans[i][1] : spans[i + n - 1][0]]):
            continue  # not across punctuation in the question
        key = " ".join(keys[i : i + n])
        if key in COMMON:
            yield n, COMMON[key], float(n * n)
        elif key in vocab:
            form = _form(vocab[key])
            typed = question[spans[i][0] : spans[i + n - 1][1]]
            if all(
                t.isupper() <= f.isupper() for t, f in zip(_WORD.findall(typed), form.split()) if len(t) > 1
            ):
                yield n, form, float(n * n)
    key = keys[i]
    typed = question[spans[i][0] : spans[i][1]]
    if is_vietnamese(typed):
        return  # written with its marks
    form = _form(vocab[key]) if key in vocab else ""
    if len(typed) > 1 and typed.isupper():  # a code or an abbreviation ("06-NQ/TU" is not "Từ")
        if form.isupper():
            yield 1, form, 1.0  # "QD" is "QĐ" where the passages write it
    elif key in COMMON:
        yield 1, COMMON[key], 1.0
    elif form and not key.isdigit() and len({f.lower() for f in vocab[key]}) == 1:
        yield 1, form, 1.0
