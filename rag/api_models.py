"""Request and response bodies of the HTTP API (they make FastAPI's OpenAPI schema accurate)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .types import Answer, Citation, Hit

DEFAULT_COLLECTION = "default"


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat request. The last message is the question (role ``user``); earlier user and
    assistant messages are the conversation; ``model`` names a collection. Sampling options
    (temperature, max_tokens, …) are accepted and ignored: answers are greedy and checked."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(DEFAULT_COLLECTION, description="a collection from GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    user: str | None = Field(None, description="who asks; requests are queued fairly between users")


class CitationOut(BaseModel):
    n: int = Field(description="the marker [n] in the answer text")
    document: str
    title: str
    passage: str
    quote: str = Field(description="the sentence of the passage that supports the answer")
    score: float
    chunk_id: str
    source: str = ""

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        return cls(
            n=c.n,
            document=c.doc_id,
            title=c.title,
            passage=c.text,
            quote=c.quote,
            score=c.score,
            chunk_id=c.chunk_id,
            source=c.source,
        )


class PassageOut(BaseModel):
    rank: int
    score: float
    dense: float | None = None
    sparse: float | None = None
    document: str
    title: str
    passage: str
    chunk_id: str
    source: str = ""

    @classmethod
    def of(cls, h: Hit) -> PassageOut:
        return cls(
            rank=h.rank + 1,
            score=h.score,
            dense=h.dense,
            sparse=h.sparse,
            document=h.doc_id,
            title=h.title,
            passage=h.text,
            chunk_id=h.chunk_id,
            source=h.chunk.source,
        )


class AnswerExtras(BaseModel):
    """What rag-vi adds to OpenAI's objects: the sources and whether it declined to answer."""

    citations: list[CitationOut] = Field(default_factory=list)
    abstained: bool = Field(False, description="true when the documents do not answer the question")
    related: list[PassageOut] = Field(
        default_factory=list, description="the closest passages, when abstaining"
    )
    asked: str = Field("", description="the whole question answered, when a follow-up was rewritten")
    searched: str = Field(
        "",
        description="the Vietnamese searched: an English question's translation, or a question typed "
        "without diacritics with its marks put back from the passages",
    )
    short: str = Field("", description='the words that answer the question, e.g. "6"; empty when abstaining')
    confidence: float | None = Field(
        None,
        description="calibrated probability that the answer is right (null when not rated: the extractive generator, or a server without log-probabilities)",
    )
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, a: Answer) -> AnswerExtras:
        return cls(
            citations=[CitationOut.of(c) for c in a.citations],
            abstained=a.abstained,
            related=[PassageOut.of(h) for h in a.related],
            asked=a.asked,
            searched=a.searched,
            short=a.short,
            confidence=a.confidence,
            warnings=list(a.warnings),
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _Completion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChatCompletion(AnswerExtras, _Completion):
    """OpenAI's chat completion, followed by the citations and whether the answer abstained."""


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer. The last one (``finish_reason`` "stop") also
    carries ``answer``: the checked text, which replaces the streamed draft when they differ,
    with ``citations`` and ``abstained``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    answer: str | None = None
    citations: list[CitationOut] | None = None
    abstained: bool | None = None
    related: list[PassageOut] | None = None
    asked: str | None = None
    short: str | None = None
    confidence: float | None = None
    warnings: list[str] | None = None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag-vi"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class SearchRequest(BaseModel):
    query: str = Field(description="the question or keywords")
    k: int = Field(5, ge=1, le=50, description="how many passages")
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    collection: str = Field(DEFAULT_COLLECTION, description="a collection from GET /v1/models")


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    collection: str
    data: list[PassageOut]
    took_ms: float


class DocumentOut(BaseModel):
    name: str = Field(description="what DELETE takes: a file name in default, a document name elsewhere")
    origin: Literal["corpus", "upload", "collection"] = Field(
        description="corpus: read-only through the API; upload: added to default; collection: in the store"
    )
    bytes: int | None = Field(None, description="the file's size, when the file is kept (default only)")
    title: str = ""
    chunks: int | None = Field(None, description="passages indexed from it (null: not indexed)")


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    collection: str
    data: list[DocumentOut]


class Rejected(BaseModel):
    name: str
    reason: str


class UploadResult(BaseModel):
    collection: str
    added: list[str] = Field(description="the new documents' names")
    replaced: list[str] = Field(
        default_factory=list, description="documents of the same name that the new files replaced"
    )
    rejected: list[Rejected]
    chunks: int = Field(description="passages in the collection's index afterwards")


class Deleted(BaseModel):
    collection: str
    deleted: str


class CollectionRequest(BaseModel):
    name: str = Field(
        description="1-63 lower-case letters, digits, '_' or '-', starting with a letter or digit",
        examples=["luat-dat-dai"],
    )


class CollectionOut(BaseModel):
    id: str
    object: Literal["collection"] = "collection"
    documents: int
    chunks: int
    embedder: str


class CollectionDeleted(BaseModel):
    id: str
    object: Literal["collection"] = "collection"
    deleted: bool = True


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    generator: str
    llm_loaded: bool
    queue_running: int
    queue_waiting: int
    queue_size: int
    answers_served: int = Field(description="answers generated since the server started")
    answers_refused: int = Field(description="requests told 429 because the queue was full")
    tokens_generated: int


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape, so its clients raise the matching exception."""

    error: ErrorBody


ERROR: dict[str, Any] = {"model": ErrorResponse}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "bad input: empty question, wrong types"},
    401: {"model": ErrorResponse, "description": "missing or wrong API key (when RAG_API_KEYS is set)"},
    404: {"model": ErrorResponse, "description": "unknown collection or document"},
    413: {"model": ErrorResponse, "description": "request body too large"},
}
