"""Elliptical follow-up questions made whole: "Còn Hải Dương thì sao?" after "Chuyển đổi số ở
Nghệ An đạt kết quả gì?" becomes "Chuyển đổi số ở Hải Dương đạt kết quả gì?".

A small model answers a whole question far better than a fragment plus history, and the citation
check needs to know what was really asked. Only the two common shapes are rewritten: a new name in
place of the previous question's name, or a new number (a year) in place of its number. Anything
else is left to retrieval with the previous question attached.
"""

from __future__ import annotations

import re

from .text import fold, nfc

_ELLIPSIS = re.compile(
    r"^(?:(?:và|vậy|thế)\s+)?còn\s+(?P<x>.+?)(?:\s+thì\s+(?:sao|thế nào|như thế nào))?\s*[?.!…]*$"
    r"|^(?P<y>.+?)\s+thì\s+(?:sao|thế nào|như thế nào)\s*[?.!…]*$",
    re.IGNORECASE,
)
# The same shape typed without diacritics, read on the accent-folded question; only with the closing
# "thi sao", since "con" alone is also "con" (a classifier: "Con tàu nào …?").
_ELLIPSIS_UNMARKED = re.compile(
    r"^(?:(?:va|vay|the)\s+)?(?:con\s+)?(?P<x>.+?)\s+thi\s+(?:sao|the nao|nhu the nao)\s*[?.!…]*$"
)
_NUM = re.compile(r"\d+(?:[.,/]\d+)*")
_WORD = re.compile(r"[^\s,;:?!.()\"“”]+")
MAX_FRAGMENT_WORDS = 6
# Words that open a sentence capitalised without being part of a name: "Theo Nghị quyết 52…".
_OPENERS = set(
    [
        "theo",
        "tại",
        "ở",
        "trong",
        "với",
        "còn",
        "khi",
        "nếu",
        "các",
        "những",
        "để",
        "đến",
        "từ",
        "sau",
        "trước",
        "về",
        "cho",
        "và",
        "vậy",
        "thế",
        "ai",
        "gì",
        "bao",
        "năm",
        "ngày",
        "tháng",
        "một",
        "hai",
        "ba",
        "cuộc",
        "việc",
    ]
)


# Words that end the phrase a name is part of: "ở Nghệ An", "của Nghệ An", "tỉnh Nghệ An" name the place
# on its own, while in "Bưu điện Việt Nam" the name is the tail of a longer name.
_LINKS = {
    "ở", "tại", "của", "và", "với", "cho", "về", "trong", "từ", "đến", "là", "có", "thuộc", "như", "giữa",
    "tỉnh", "thành", "phố", "huyện", "quận", "xã", "nước", "vùng", "miền", "khu",
}  # fmt: skip


def inside_longer_name(text: str, start: int) -> bool:
    """Whether the name starting at ``start`` ends a longer proper name: the words before it, up to
    a linking word or punctuation, start with a capitalised word ("Bưu điện Việt Nam", "Trường Đại
    học Hà Nội"). Swapping such a name makes up an entity neither turn mentioned."""
    head = re.split(r"[,;:.!?()\"“”]", text[:start])[-1].split()
    for word in reversed(head[-3:]):
        if word.lower() in _LINKS:
            return False
        if word[0].isupper():
            return word.lower() not in _OPENERS
    return False


def name_spans(text: str, allow_start: bool = False) -> list[tuple[int, int]]:
    """Character spans of proper names: runs of two or more capitalised words without digits
    ("Hải Dương", "Việt Nam"). A run at the start of ``text`` counts only if ``allow_start``
    or it is at least two words (the first word of a sentence is capitalised anyway)."""
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        if run and run[0].start() == 0 and run[0].group().lower() in _OPENERS:
            run.pop(0)
        if len(run) >= 2 or (run and allow_start and run[0].start() == 0):
            spans.append((run[0].start(), run[-1].end()))
        run.clear()

    prev_end = 0
    for m in _WORD.finditer(text):
        w = m.group()
        gap = text[prev_end : m.start()]
        if run and gap.strip():  # punctuation between words ends a name
            close()
        if w[0].isupper() and not any(c.isdigit() for c in w):
            run.append(m)
        else:
            close()
        prev_end = m.end()
    close()
    return spans


def rewrite_follow_up(question: str, previous: str, unmarked: bool = False) -> str | None:
    """The follow-up as a whole question built from ``previous``, or None when it is not one of
    the shapes handled (then the caller keeps the question as it is). ``unmarked``: the question
    was typed without diacritics (and has had its names' marks put back), so "con X thi sao" counts."""
    q = nfc(question.strip())
    if unmarked and (u := _ELLIPSIS_UNMARKED.match(fold(q).lower())):
        fragment = q[u.start("x") : u.end("x")].strip()  # folding keeps every character's place
    elif m := _ELLIPSIS.match(q):
        fragment = (m.group("x") or m.group("y") or "").strip()
    else:
        return None
    if not fragment or len(fragment.split()) > MAX_FRAGMENT_WORDS:
        return None
    prev = previous.strip()
    num = _NUM.search(fragment)
    if num:  # "Còn năm 2030?": the same question about another number, preferably of its shape
        nums = list(_NUM.finditer(prev))
        same = [n for n in nums if len(n.group()) == len(num.group())]
        if not nums:
            return None
        target = (same or nums)[-1]
        return prev[: target.start()] + num.group() + prev[target.end() :]
    names = name_spans(fragment, allow_start=True)
    old = name_spans(prev)
    if not names or not old:
        return None
    s, e = names[0]
    start, end = old[-1]
    if inside_longer_name(prev, start):
        return None  # "Bưu điện Việt Nam" → "Bưu điện Hải Dương" would be an entity nobody asked about
    return prev[:start] + fragment[s:e] + prev[end:]
