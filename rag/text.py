"""Vietnamese text handling: normalisation, accent folding, sentence splitting, BM25 tokens.

Text shown to users keeps its original form; the functions here make the *matching* copies.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # huyền sắc ngã hỏi nặng
_WORD = re.compile(r"\w+")

# a number, date or range as written ("13.000", "27/9/2019", "2020-2025")
NUMBER = re.compile(r"\d+(?:[.,/:\-]\d+)*")
# capital letters, with the Vietnamese ones (Đ, Ả, Ệ …), for names in regular expressions
UPPER = "A-Z" + "".join(c for c in map(chr, range(0xC0, 0x1F00)) if c.isupper())


def norm_number(n: str) -> str:
    """One spelling of a number: no thousands separator, no leading zeros ("13.000" = "13,000")."""
    return re.sub(r"[.,](?=\d{3}\b)", "", n).lstrip("0") or "0"


# a citation marker, "[1]" or " [1, 2]", with the space before it; its numbers are group 1
CITATION = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def nfc(text: str) -> str:
    """NFC with no-break and other odd spaces made plain spaces (lengths never change)."""
    text = unicodedata.normalize("NFC", text)
    return text.translate({0xA0: " ", 0x202F: " ", 0x2007: " ", 0xFEFF: " "})


@lru_cache(maxsize=65536)
def _new_style(word: str) -> str:
    """Move a tone mark to the modern place in open syllables ending in oa/oe/uy: hoá → hóa."""
    d = unicodedata.normalize("NFD", word)
    tones = [c for c in d if c in _TONES]
    if len(tones) != 1:
        return word
    base = unicodedata.normalize("NFC", "".join(c for c in d if c not in _TONES))
    low = base.lower()
    if not (low.endswith(("oa", "oe", "uy")) and len(low) >= 2):
        return word
    if low.endswith("uy") and low[:-2].endswith("q"):
        return word  # "quý": u belongs to the consonant qu
    last = unicodedata.normalize("NFD", word[-1])
    if tones[0] not in last:
        return word  # tone already on the first vowel
    moved = base[:-2] + unicodedata.normalize("NFC", base[-2] + tones[0]) + base[-1]
    return moved


def tone_normalize(text: str) -> str:
    """One tone-mark style for matching: "hoá"→"hóa", "uỷ"→"ủy" (NFC in, NFC out)."""
    return _WORD.sub(lambda m: _new_style(m.group()), text)


def fold(text: str) -> str:
    """Accent-folded copy: "Chuyển đổi số" → "Chuyen doi so" (for queries typed without marks)."""
    d = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in d if unicodedata.category(c) != "Mn")


def match_form(text: str) -> str:
    """The normalised matching copy: NFC, one tone style, lower case."""
    return tone_normalize(nfc(text)).lower()


# ---------------------------------------------------------------- sentences

_ABBREV = {
    "tp",
    "tt",
    "ths",
    "ts",
    "pgs",
    "gs",
    "bs",
    "ks",
    "cn",
    "st",
    "mr",
    "mrs",
    "ms",
    "dr",
    "no",
    "vs",
    "v.v",
    "p",
    "q",
    "tr",
    "ng",
    "th",
    "tx",
    "h",
}
_END = re.compile(r"[.!?…]+[\"”’')\]]*")
_NEXT_START = re.compile(r"\s+(?=[\"“‘(\[]?[0-9A-ZĐÀ-Ỹ])")


def _is_abbrev(text: str, dot: int) -> bool:
    m = re.search(r"([\w.]+)\.$", text[: dot + 1])
    if not m:
        return False
    word = m.group(1)
    return word.lower() in _ABBREV or (len(word) == 1 and word.isupper())


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text`` (plus ``offset``), whitespace trimmed.

    A sentence ends at a line break, or at ``. ! ? …`` followed by white space and a capital, a
    digit or an opening quote/bracket. "TP. Hồ Chí Minh", "5.561", "4.0", "04/5/2017", "52-NQ/TW"
    do not end one.
    """
    if "\n" in text:
        out: list[tuple[int, int]] = []
        pos = 0
        for line in text.split("\n"):
            out.extend(split_sentences(line, offset + pos))
            pos += len(line) + 1
        return out
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        nxt = _NEXT_START.match(text, end)
        if nxt is None:
            continue
        if m.group().startswith(".") and len(m.group()) == 1 and _is_abbrev(text, m.start()):
            continue
        spans.append((start, end))
        start = nxt.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s + offset, e + offset))
    return out


# ---------------------------------------------------------------- abbreviations

ABBREVIATIONS: dict[str, str] = {
    "cmcn": "cách mạng công nghiệp",
    "kh&cn": "khoa học và công nghệ",
    "khcn": "khoa học công nghệ",
    "cntt": "công nghệ thông tin",
    "cđs": "chuyển đổi số",
    "qđ-ttg": "quyết định thủ tướng",
    "ct-ttg": "chỉ thị thủ tướng",
    "nq/tw": "nghị quyết trung ương",
    "ubnd": "ủy ban nhân dân",
    "hđnd": "hội đồng nhân dân",
    "bch": "ban chấp hành",
    "btv": "ban thường vụ",
    "gd&đt": "giáo dục và đào tạo",
    "cnh": "công nghiệp hóa",
    "hđh": "hiện đại hóa",
    "qp": "quốc phòng",
    "an": "an ninh",
    "ccq": "các cơ quan",
    "ai": "trí tuệ nhân tạo",
    "iot": "internet vạn vật",
    "tp.": "thành phố",
}


def expand_abbreviations(text: str) -> str:
    """Append the long forms of known abbreviations found in ``text`` (for queries)."""
    low = match_form(text)
    extra = []
    for short, long in ABBREVIATIONS.items():
        if short in {"an", "ai", "qp"}:
            if re.search(rf"(?<![\w&/-]){re.escape(short.upper())}(?![\w&/-])", text):
                extra.append(long)
            continue
        if re.search(rf"(?<![\w&/-]){re.escape(short)}(?![\w&/-])", low) or (
            short.replace("-", "").replace("/", "") != short and re.search(rf"\b{re.escape(short)}\b", low)
        ):
            extra.append(long)
    return text + (" (" + "; ".join(extra) + ")" if extra else "")


# ---------------------------------------------------------------- BM25 tokens

_COMPOUND = re.compile(r"\w+(?:[./&,\-]\w+)+")
_PHRASE = re.compile(r"[^\s\w&./,\-]+|[.,](?=\s|$)")


def tokens(text: str) -> list[str]:
    """BM25 tokens of a matching copy: syllables, compounds ("52-nq/tw", "4.0") and bigrams."""
    low = match_form(text)
    out: list[str] = []
    for phrase in _PHRASE.split(low):
        syl = _WORD.findall(phrase)
        out.extend(syl)
        out.extend(f"{a}_{b}" for a, b in zip(syl, syl[1:]))
        out.extend(c for c in _COMPOUND.findall(phrase))
    return out


def syllables(text: str) -> list[str]:
    """Accent-folded, lower-case syllables, for matching a question typed without marks too."""
    return _WORD.findall(fold(match_form(text)))


def folded_tokens(text: str) -> list[str]:
    """The same tokens over the accent-folded copy."""
    return tokens(fold(match_form(text)))


def overlap_f1(got: Counter[str], want: Counter[str]) -> float:
    """SQuAD-style F1 of two bags of words (syllables): harmonic mean of precision and recall."""
    common = sum((got & want).values())
    if not common:
        return 0.0
    p, r = common / got.total(), common / want.total()
    return 2 * p * r / (p + r)


# English function words that are not also Vietnamese syllables written without tone marks, so a
# question typed without diacritics is not taken for English; and weaker ones that are ("the" is
# "thế", "to" is "tô", "in" is "in"), which count only beside a strong one.
_ENGLISH = frozenset([
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was", "were",
    "does", "did", "has", "have", "had", "of", "and", "for", "with", "from", "that", "this", "these",
    "those", "many", "much", "by", "into", "about", "after", "before", "during", "their", "its",
    "would", "could", "should",
])  # fmt: skip
_ENGLISH_WEAK = frozenset(["the", "a", "an", "to", "in", "on", "at", "do", "be"])
VI_LETTER = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹàáãèéìíòóõùúýĩũ]", re.I)


def is_vietnamese(text: str) -> bool:
    """Whether ``text`` has a letter only Vietnamese writes (a tone mark or ă â đ ê ô ơ ư)."""
    return bool(VI_LETTER.search(text))


def looks_english(text: str) -> bool:
    """Whether ``text`` reads as English: two English function words, one and a weaker one ("Which
    probe entered the atmosphere?"), or one to begin with ("Which body issued Resolution 52-NQ/TW?"),
    and no Vietnamese words but names and codes ("Who is Nguyễn Phú Tiến?", "Decision 950/QĐ-TTg")."""
    if sum(w.islower() and is_vietnamese(w) for w in re.findall(r"\w+", text)) > 1:
        return False
    words = re.findall(r"[a-z']+", text.lower())
    strong = sum(w in _ENGLISH for w in words)
    if words and words[0] in _ENGLISH:
        return True
    return strong >= 2 or (strong == 1 and any(w in _ENGLISH_WEAK for w in words))
