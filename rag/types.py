"""The data types that cross module boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Paragraph:
    """A kept paragraph: its span in ``Document.text``."""

    start: int
    end: int


@dataclass
class Document:
    """One source file after reading and cleaning.

    ``text`` is the file's body as read (NFC, no-break spaces as spaces); it is what users see
    and what citations quote. ``paragraphs`` are the spans of ``text`` that are content
    (site furniture such as hotline banners and photo captions is left out).
    """

    doc_id: str
    title: str
    text: str
    paragraphs: list[Paragraph]
    source: str = ""
    path: str = ""
    sha256: str = ""
    locations: list[tuple[int, str]] = field(default_factory=list)  # (offset in text, "trang 3")
    encoding: str = ""  # legacy encoding converted to Unicode ("windows-1258", "tcvn3", …)
    ocr_pages: int = 0  # pages whose text came from OCR

    def location_at(self, start: int, end: int | None = None) -> str:
        """Where offsets ``start``..``end`` of the text are: "trang 3", "trang 2–3", a heading."""
        first = last = ""
        for offset, label in self.locations:
            if offset <= start:
                first = label
            if offset < (end if end is not None else start + 1):
                last = label
        if first and last and last != first and first.startswith("trang ") and last.startswith("trang "):
            a, b = first.removeprefix("trang "), last.removeprefix("trang ")
            if a.isdigit() and b.isdigit():
                return f"trang {a}–{b}"
        return first


@dataclass
class Chunk:
    """A retrievable unit: whole sentences from one document.

    ``spans`` are ``(start, end)`` offsets into the document's text, one per paragraph piece;
    ``text`` is those pieces joined by newlines, so every piece is verbatim source text.
    """

    chunk_id: str
    doc_id: str
    title: str
    text: str
    spans: list[tuple[int, int]]
    paragraph: int
    source: str = ""
    location: str = ""  # page, slide, sheet or heading: "trang 3", "trang chiếu 2", "mục: …"

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]


@dataclass
class Hit:
    """A retrieved chunk with its fused score and the scores behind it."""

    chunk: Chunk
    score: float
    rank: int = 0
    dense: float | None = None
    sparse: float | None = None

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id


@dataclass
class Citation:
    """A numbered source of an answer; ``quote`` is the passage sentence that supports it."""

    n: int
    doc_id: str
    title: str
    text: str
    quote: str
    chunk_id: str
    score: float  # cosine similarity of the passage to the question (fused score without one)
    source: str = ""
    quote_start: int = -1  # offset of ``quote`` inside ``text`` (-1 when not found)
    location: str = ""  # where in the document: "trang 3", "trang chiếu 2", "trang tính …", "mục: …"


@dataclass
class Timings:
    retrieval_ms: float = 0.0
    first_token_ms: float | None = None
    total_ms: float = 0.0
    tokens: int = 0
    check_ms: float = 0.0  # the support check and confidence after generation
    translate_ms: float = 0.0  # an English question put into Vietnamese, and its answer into English

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_ms is None or self.tokens < 2:
            return None
        gen_s = (self.total_ms - self.first_token_ms - self.check_ms) / 1000  # generation only
        return (self.tokens - 1) / gen_s if gen_s > 0 else None


@dataclass
class Answer:
    """A reply to a question: Vietnamese text with [n] markers and the sources they point to."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    related: list[Hit] = field(default_factory=list)  # closest passages when abstaining
    hits: list[Hit] = field(default_factory=list)
    generator: str = ""
    timings: Timings = field(default_factory=Timings)
    warnings: list[str] = field(default_factory=list)
    asked: str = ""  # the whole question answered when ``question`` was an elliptical follow-up
    # the Vietnamese searched: an English question's translation, or a question typed without
    # diacritics with the marks its passages write (read so by the model too)
    searched: str = ""
    short: str = ""  # the words that answer the question ("ba" in "Ấn bản thứ ba … [1]"); empty if abstained
    confidence: float | None = None  # calibrated probability that the answer is right (None: not rated)
    signals: dict[str, float | None] = field(default_factory=dict)  # what the confidence was read from
    withheld: str = ""  # an answer held back as too unlikely to be right (shown only as "not found")

    def reading_label(self) -> str:
        """How to introduce ``searched`` to the reader: in English for an English question's
        translation, in Vietnamese for a question whose diacritics were put back; "" for neither."""
        from .text import looks_english

        if not self.searched:
            return ""
        return "Searched in Vietnamese as" if looks_english(self.question) else "Câu hỏi được đọc là"
