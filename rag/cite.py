"""Citation verification: never trust the model's [n] markers blindly.

Each sentence of an answer is checked against the passages it cites: its numbers, dates, codes and
names must appear in the passage, and enough of its words must too. Unsupported markers are
re-attached to a passage that does support the sentence, or removed. Citations are renumbered in
order of first use, and each carries the passage sentence that best supports its claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .followup import name_spans
from .prompt import strip_format
from .text import CITATION, fold, is_vietnamese, match_form, nfc, split_sentences, tone_normalize
from .text import NUMBER as _NUM
from .text import UPPER as _UPPER
from .text import norm_number as _norm_num
from .types import Citation, Hit

_RANGE = re.compile(r"(\d)\s*[-–—]\s*(\d)")
_SYL = re.compile(r"\w+")
# A run of capitalised syllables (a name), not at the start of the sentence.
_NAME = re.compile(rf"(?<=\s)[{_UPPER}]\w*(?:\s+[{_UPPER}]\w*)*")
MIN_OVERLAP = 0.5
COPIED = 0.8  # share of a sentence's word triples that marks it as copied from a passage

# "bao nhiêu X" / "mấy X": X is what is counted, and the number answering it must count X.
_HOW_MANY = re.compile(r"(?:bao nhiêu|bao nhieu|mấy)\s+((?:[\w%]+\s*){1,2})")
_NOT_UNIT = {"la", "ve", "cua", "va", "trong", "duoc", "nguoi", "thi", "o", "tai", "vao", "nam"}
_ORDINAL = re.compile(r"(?:(\w+)\s+\w+\s+)?(số|thứ)\s+mấy\b")
_WHO = re.compile(r"^\s*ai\s+là\s+(?P<a>.+?)\s*[?.!]*$|^(?P<b>.+?)\s+là\s+ai\s*[?.!]*$")
_GENERAL_ROLES = {"người", "những", "các", "một"}
_CLASSIFIERS = {"nhom", "loai", "cac", "nhung", "con", "chiec", "cai"}
_UNIT_ALIASES = {
    "tien": {"dong", "ty", "trieu", "nghin", "ngan", "usd", "vnd"},
    "phan": {"%"},
    "%": {"phan"},
}
_TOKEN = re.compile(r"[\w%]+")


def _syllables(text: str) -> set[str]:
    return set(_SYL.findall(fold(match_form(text))))


def _numbers(text: str) -> list[str]:
    """The numbers of ``text``, a range written with spaces or a long dash ("2020 – 2025") as one
    written without ("2020-2025"), so either spelling of it matches the other."""
    return _NUM.findall(_RANGE.sub(r"\1-\2", text))


def asked_units(question: str) -> set[str]:
    """What a "how many" question counts, as folded syllables: "bao nhiêu nhân viên" → {nhan};
    for an ordinal, what the number must follow: "nghị quyết số mấy" → {nghi}, "thứ mấy" → {thu}.

    Empty when the question counts nothing checkable ("là bao nhiêu?", "bao nhiêu người").
    """
    q = match_form(question)
    o = _ORDINAL.search(q)
    if o:  # "nghị quyết số mấy": the number follows "nghị quyết"; "xếp thứ mấy": it follows "thứ"
        if o.group(2) == "thứ":
            return {"thu"}
        return {fold(o.group(1))} if o.group(1) else set()
    m = _HOW_MANY.search(q)
    if not m:
        return set()
    for tok in _TOKEN.findall(fold(m.group(1))):
        if tok in _NOT_UNIT:
            return set()
        if tok not in _CLASSIFIERS:  # "bao nhiêu nhóm giải pháp" counts "giải pháp"
            return {tok} | _UNIT_ALIASES.get(tok, set())
    return set()


def counts(number: str, passage: str, units: set[str]) -> bool:
    """Whether ``number`` occurs in ``passage`` counting one of ``units``: the unit follows it
    within four words ("13.000 điểm giao dịch") or comes shortly before it in the same clause."""
    folded = fold(match_form(passage))  # same length as the passage, so offsets carry over
    for m in _NUM.finditer(folded):
        if _norm_num(m.group()) != _norm_num(number):
            continue
        after = _TOKEN.findall(folded[m.end() : m.end() + 40])[:4]
        before = _TOKEN.findall(re.split(r"[.;:!?\n]", folded[max(0, m.start() - 80) : m.start()])[-1])[-8:]
        if units & set(after + before):
            return True
    return False


def mentions(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` as a whole phrase, capitalised, with its tone marks when it
    has them ("Nghệ An" is not in "công nghệ an toàn", nor "Nghe An" in "nghe an ninh")."""
    n, t = tone_normalize(nfc(name)), tone_normalize(nfc(text))
    if n == fold(n):  # typed without marks: compare without marks
        t = fold(t)
    return re.search(rf"(?<!\w){re.escape(n)}(?!\w)", t) is not None


def asked_names(question: str, known: str = "") -> list[str]:
    """The places and people ``question`` asks about: runs of two or more capitalised words.

    Inside a Vietnamese question such a run is a name. The run that opens it ("Nghệ An có bao nhiêu
    …", after openers such as "Theo"), and any run of a question in another language ("How many …
    does Nghe An have?"), counts only when ``known`` (the passages found) writes it, with or without
    marks: "Ngoài Síp" opening a question, or "Southern Ocean" in an English one, are not names the
    documents use and cannot be required of a passage.
    """
    vietnamese = is_vietnamese(question)
    out: list[str] = []
    for s, e in name_spans(question):
        name = re.sub(r"['’]s$", "", question[s:e])
        if len(name.split()) < 2 or name in out:
            continue
        inside = vietnamese and question[:s].strip(" \"“'")
        if inside or mentions(known, name):
            out.append(name)
    return out


def asked_role(question: str) -> str:
    """The role a "who" question asks about, in matching form: "Ai là Chủ tịch UBND tỉnh Nghệ An?"
    → "chủ tịch". Empty for other questions and for roles too general to check ("người …")."""
    m = _WHO.match(match_form(question))
    if not m:
        return ""
    words = (m.group("a") or m.group("b") or "").split()[:2]
    return "" if not words or words[0] in _GENERAL_ROLES else " ".join(words)


def holds_role(passage: str, name: str, role: str) -> bool:
    """Whether a sentence of ``passage`` that names ``name`` also names ``role``."""
    for s, e in split_sentences(passage):
        sent = passage[s:e]
        if mentions(sent, name) and role in match_form(sent):
            return True
    return False


def counts_any(text: str, units: set[str]) -> bool:
    """Whether some number in ``text`` counts one of ``units``."""
    return any(counts(n, text, units) for n in _NUM.findall(text))


def support(
    claim: str,
    passage: str,
    context: str = "",
    given: str = "",
    about: str = "",
    names: list[str] | None = None,
) -> float:
    """0 when a number or name of ``claim`` is missing from ``passage``; else the word overlap.

    ``context`` (the question, for a short claim) adds its words to the overlap, and its names
    (places, people) must be in the passage or in ``about`` (its document's title and other
    passages): "13.000" does not answer a question about Nghệ An from an article that never
    mentions Nghệ An. Those names are ``names`` when given, else ``asked_names(context)``; a longer
    claim (no ``context``) needs one of ``names`` there, since a sentence may answer for one of
    two places compared. Numbers and names that ``given`` (the question) already holds are an echo
    of it, not a claim to check.
    """
    pnums = {_norm_num(n) for n in _numbers(passage)}
    gnums = {_norm_num(n) for n in _numbers(given)}
    cnums = _numbers(claim)
    for n in cnums:
        if _norm_num(n) not in pnums and _norm_num(n) not in gnums:
            return 0.0
    new = [n for n in cnums if _norm_num(n) not in gnums]
    units = asked_units(given) if given else set()
    if units and new and not any(counts(n, passage, units) for n in new):
        return 0.0  # the number is there, but it counts something else than what was asked
    role = asked_role(given) if given else ""
    if role and is_vietnamese(claim):
        named = [claim[s:e] for s, e in name_spans(claim, allow_start=True)]
        named = [n for n in named if not mentions(given, n)]
        if named and not any(holds_role(passage, n, role) for n in named):
            return 0.0  # "Ai là Chủ tịch …?": the person named is not said to be one
    psyl = _syllables(passage)
    gsyl = _syllables(given)
    if is_vietnamese(claim):
        for name in _NAME.findall(claim):
            if not _syllables(name) <= psyl | gsyl:
                return 0.0
    # an answer must come from a passage about the place or person asked about: a short one about
    # each place named, a sentence (which may compare two) about one of them
    held = [mentions(f"{passage}\n{about}", n) for n in (asked_names(context) if names is None else names)]
    if held and not (all(held) if context else any(held)):
        return 0.0
    csyl = {t for t in _syllables(f"{context} {claim}") if not t.isdigit()}  # numbers were checked above
    if not csyl:
        return 1.0 if cnums else 0.0
    overlap = len(csyl & psyl) / len(csyl)
    if not is_vietnamese(claim):
        return max(overlap, MIN_OVERLAP)  # another language: only numbers can be checked
    return overlap


def copied_share(claim: str, passage: str) -> float:
    """The share of the claim's word triples found in ``passage`` (1.0: copied word for word)."""
    words = _SYL.findall(match_form(CITATION.sub("", claim)))
    triples = {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
    if not triples:
        return 0.0
    pw = _SYL.findall(match_form(passage))
    have = {tuple(pw[i : i + 3]) for i in range(len(pw) - 2)}
    return len(triples & have) / len(triples)


def best_quote(claim: str, passage: str, question: str = "") -> tuple[str, int]:
    """The sentence of ``passage`` that best supports ``claim``, and its offset: the one holding
    the claim word for word if any ("Bộ Chính trị"), else the one sharing most of its words, with
    the question's words counting half (a short answer says little on its own)."""
    csyl = _syllables(claim)
    qsyl = _syllables(question) - csyl
    phrase = match_form(CITATION.sub("", claim)).strip(" .;:")
    best, best_score, best_start = passage, -1.0, 0
    for s, e in split_sentences(passage):
        sent = passage[s:e]
        ssyl = _syllables(sent)
        score = (len(csyl & ssyl) + 0.5 * len(qsyl & ssyl)) / (len(ssyl) ** 0.5 or 1)
        if len(phrase) >= 4 and phrase in match_form(sent):
            score += 100
        if score > best_score:
            best, best_score, best_start = sent, score, s
    return best, best_start


@dataclass
class Verified:
    text: str
    citations: list[Citation]
    grounded: bool
    dropped: list[int]  # markers removed as invalid or unsupported


def parse_markers(text: str) -> list[int]:
    out: list[int] = []
    for m in CITATION.finditer(text):
        out.extend(int(x) for x in re.split(r"\s*[,;]\s*", m.group(1)))
    return out


def verify(reply: str, passages: list[Hit], question: str = "", found: list[Hit] | None = None) -> Verified:
    """Check and repair the citations of a model reply over the numbered ``passages``.

    A short claim ("15", "Chu Bá Long") is checked together with the question it answers, so the
    passage must also be about what was asked: the places and people the question names, when
    ``found`` (every passage retrieved, by default ``passages``) writes them.
    """
    body = strip_format(reply)
    low = match_form(reply)
    listed = parse_markers(reply[low.rfind("nguồn:") :]) if "nguồn:" in low else []
    sentences = [body[s:e] for s, e in split_sentences(body)] or ([body] if body.strip() else [])
    all_marks = list(dict.fromkeys(listed + [n for s in sentences for n in parse_markers(s)]))

    # what each passage's document is about: its title and the other passages shown from it
    about = [" ".join([h.title] + [o.chunk.text for o in passages if o.doc_id == h.doc_id]) for h in passages]
    known = "\n".join(f"{h.title}\n{h.chunk.text}" for h in (found or passages))
    names = asked_names(question, known)
    order: list[int] = []  # passage indexes (0-based) in order of first citation
    quotes: dict[int, tuple[str, int]] = {}
    out_sents: list[str] = []
    dropped: list[int] = []
    grounded = False
    for sent in sentences:
        marks = parse_markers(sent)
        claim = CITATION.sub("", sent).strip()
        if not _SYL.search(claim):
            continue
        cands = marks or all_marks
        valid = [n - 1 for n in cands if 1 <= n <= len(passages)]
        dropped.extend(n for n in cands if not 1 <= n <= len(passages))
        context = question if len(_SYL.findall(claim)) < 6 else ""
        keep = [
            i
            for i in dict.fromkeys(valid)
            if support(claim, passages[i].chunk.text, context, question, about[i], names) >= MIN_OVERLAP
        ]
        dropped.extend(i + 1 for i in valid if i not in keep)
        copied = [copied_share(claim, h.chunk.text) for h in passages]
        src = max(range(len(passages)), key=lambda j: copied[j]) if passages else -1
        if (
            src >= 0
            and copied[src] >= COPIED
            and all(copied[i] < COPIED / 2 for i in keep)
            and support(claim, passages[src].chunk.text, context, question, about[src], names) >= MIN_OVERLAP
        ):
            dropped.extend(i + 1 for i in keep)  # the sentence is copied word for word from another
            keep = [src]  # passage than the one it cites: that passage is its source
        if not keep:
            scores = [
                support(claim, h.chunk.text, context, question, about[j], names)
                for j, h in enumerate(passages)
            ]
            if (
                scores
                and max(scores) >= MIN_OVERLAP
                and (is_vietnamese(claim + context) or _NUM.search(claim))
            ):
                keep = [max(range(len(scores)), key=lambda i: scores[i])]
        for i in keep:
            if i not in order:
                order.append(i)
                quotes[i] = best_quote(claim, passages[i].chunk.text, question)
        if keep:
            grounded = True
        refs = "".join(f"[{order.index(i) + 1}]" for i in keep)
        end = re.search(r"\s*([.!?…:;]+)$", claim)
        head, tail = (claim[: end.start()], end.group(1)) if end else (claim, "")
        out_sents.append(f"{head} {refs}{tail}" if refs else head + tail)
    citations = []
    for new_n, i in enumerate(order, 1):
        h = passages[i]
        quote, start = quotes[i]
        citations.append(
            Citation(
                n=new_n,
                doc_id=h.doc_id,
                title=h.title,
                text=h.chunk.text,
                quote=quote,
                chunk_id=h.chunk_id,
                score=h.dense if h.dense is not None else h.score,
                source=h.chunk.source,
                quote_start=start,
                location=h.chunk.location,
            )
        )
    return Verified(" ".join(out_sents).strip(), citations, grounded, dropped)
