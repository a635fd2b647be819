"""Documents → Chunks: whole sentences, sized in embedder tokens, with a sentence of overlap."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .text import split_sentences
from .types import Chunk, Document

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """A model-free estimate of e5 (XLM-R) tokens for Vietnamese: ~1.35 per syllable."""
    return int(len(text.split()) * 1.35) + 2


def chunk_document(
    doc: Document,
    max_tokens: int = 200,
    overlap: int = 1,
    count: TokenCounter = approx_tokens,
) -> list[Chunk]:
    """Greedy packing of sentences into chunks of at most ``max_tokens``.

    Chunks may span paragraphs but never a change of location (page, slide, sheet, heading), so
    each chunk cites one place; each keeps the spans of its pieces in ``doc.text`` and the index
    of its first paragraph. A sentence longer than ``max_tokens`` becomes a chunk of its own.
    Ids are ``<doc_id>#<n>-<hash of text>`` so they change only when the text does.
    """
    sents: list[tuple[int, int, int]] = []  # (paragraph index, start, end)
    for pi, p in enumerate(doc.paragraphs):
        for s, e in split_sentences(doc.text[p.start : p.end], offset=p.start):
            sents.append((pi, s, e))
    sizes = [count(doc.text[s:e]) for _, s, e in sents]
    where = [doc.location_at(s) for _, s, _ in sents]

    groups: list[list[int]] = []
    i = 0
    while i < len(sents):
        group, total = [i], sizes[i]
        j = i + 1
        while j < len(sents) and total + sizes[j] <= max_tokens and where[j] == where[i]:
            group.append(j)
            total += sizes[j]
            j += 1
        groups.append(group)
        if j >= len(sents):
            break
        # next chunk starts `overlap` sentences back (never across a page, slide or section), but
        # always moves forward
        i = max(j - overlap, i + 1)
        while where[i] != where[j]:
            i += 1

    chunks = []
    for n, group in enumerate(groups):
        spans: list[tuple[int, int]] = []
        last_p = -1
        for k in group:
            pi, s, e = sents[k]
            if pi == last_p:
                spans[-1] = (spans[-1][0], e)
            else:
                spans.append((s, e))
            last_p = pi
        text = "\n".join(doc.text[s:e] for s, e in spans)
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        chunks.append(
            Chunk(
                chunk_id=f"{doc.doc_id}#{n}-{digest}",
                doc_id=doc.doc_id,
                title=doc.title,
                text=text,
                spans=spans,
                paragraph=sents[group[0]][0],
                source=doc.source,
                location=doc.location_at(spans[0][0], spans[-1][1]),
            )
        )
    return chunks
