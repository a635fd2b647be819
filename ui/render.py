"""The chat's HTML: an answer with clickable citations, its sources, and its timings."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from rag.types import Answer

_CITE = re.compile(r"\[(\d+)\]")


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def render_answer(a: Answer) -> str:
    """Answer text for the chat bubble: escaped, with [n] linked to its source card."""
    if a.abstained:
        return f"⚠️ **Không tìm thấy câu trả lời trong tài liệu.**\n\n{esc(a.text)}"
    return _CITE.sub(lambda m: f"[[{m.group(1)}]](#nguon-{m.group(1)})", esc(a.text))


def _where(doc_id: str, location: str, link: str) -> str:
    """ "doc_id · trang 3 · mở tệp gốc" for a source card."""
    bits = [esc(doc_id)]
    if location:
        bits.append(f'<span class="src-loc">{esc(location)}</span>')
    if link:
        bits.append(f'<a class="src-file" href="{esc(link)}" target="_blank" rel="noopener">mở tệp gốc</a>')
    return " · ".join(bits)


def render_sources(a: Answer | None, show: bool = True, link: Callable[[str], str] | None = None) -> str:
    """Source cards: title, where in the document ("trang 3"), a link to the original file."""
    if a is None or not show:
        return ""
    link = link or (lambda doc_id: "")
    parts = []
    if a.abstained:
        parts.append('<p class="abstain-note">Tài liệu không có câu trả lời. Các đoạn có thể liên quan:</p>')
        for h in a.related:
            where = _where(h.doc_id, h.chunk.location, link(h.doc_id))
            parts.append(
                f'<div class="src-card src-related"><div class="src-head">{esc(h.title)}</div>'
                f'<div class="src-meta">{where} · độ tương đồng {(h.dense if h.dense is not None else h.score):.2f}</div><div>{esc(h.text)}</div></div>'
            )
        return "\n".join(parts)
    for c in a.citations:
        if c.quote_start >= 0 and c.text[c.quote_start :].startswith(c.quote):
            i, j = c.quote_start, c.quote_start + len(c.quote)
            body = f"{esc(c.text[:i])}<mark>{esc(c.text[i:j])}</mark>{esc(c.text[j:])}"
        else:
            body = esc(c.text)
        src = f" · {esc(c.source)}" if c.source else ""
        parts.append(
            f'<div class="src-card" id="nguon-{c.n}"><div class="src-head">[{c.n}] {esc(c.title)}</div>'
            f'<div class="src-meta">{_where(c.doc_id, c.location, link(c.doc_id))}{src} · độ tương đồng {c.score:.2f}</div>'
            f'<div class="src-body">{body.replace(chr(10), "<br>")}</div></div>'
        )
    return "\n".join(parts)


def render_timings(a: Answer) -> str:
    t = a.timings
    bits = [f"truy xuất {t.retrieval_ms:.0f} ms"]
    if t.first_token_ms is not None and not a.abstained or (a.abstained and t.first_token_ms):
        bits.append(f"token đầu {t.first_token_ms / 1000:.1f} s")
    if t.tokens_per_s:
        bits.append(f"{t.tokens_per_s:.1f} token/s")
    bits.append(f"tổng {t.total_ms / 1000:.1f} s · {a.generator}")
    line = "Thời gian: " + " · ".join(bits)
    if a.confidence is not None:  # the calibrated chance that the answer is right
        word = "không đủ chắc chắn để trả lời" if a.withheld else "độ tin cậy"
        line = f"{word.capitalize()}: {a.confidence:.0%}  \n" + line
    if a.asked:  # a follow-up made whole: say how it was understood, so a wrong guess is visible
        line = f"Câu hỏi được hiểu là: «{_md_text(a.asked)}»  \n" + line
    if a.searched:  # a translation or restored diacritics: a loose or wrong one shows here
        line = f"{a.reading_label()}: «{_md_text(a.searched)}»  \n" + line
    return line


def _md_text(text: str) -> str:
    """User text shown as literal Markdown text (no HTML, links or emphasis)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>&])", r"\\\1", text)
