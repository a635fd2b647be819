"""The HTTP API of ``rag serve``: OpenAI-compatible chat, search, documents, with the chat page at ``/``.

``create_app()`` builds one FastAPI application around one shared RAG (one loaded model). Answers
wait their turn in a bounded fair queue (``rag/scheduler.py``) and are generated in worker threads;
search and document listing never wait behind the model. Errors are JSON in OpenAI's shape.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api_collections import Collections
from .api_errors import ApiError, as_api_error
from .api_limits import BodyLimit
from .api_models import (
    ERROR,
    ERRORS,
    AnswerExtras,
    AssistantMessage,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    Choice,
    CollectionDeleted,
    CollectionOut,
    CollectionRequest,
    Deleted,
    DocumentList,
    DocumentOut,
    Health,
    ModelList,
    ModelOut,
    PassageOut,
    Rejected,
    SearchRequest,
    SearchResponse,
    UploadResult,
    Usage,
)
from .api_run import Generation
from .config import Settings
from .errors import MissingDependencyError, RagError
from .pipeline import RAG
from .scheduler import FairQueue
from .uploads import MAX_FILE_BYTES, MAX_FILES

logger = logging.getLogger(__name__)

JSON_LIMIT = 1 << 20  # bytes of a JSON request body
UPLOAD_LIMIT = MAX_FILE_BYTES * 2 + (1 << 20)  # a multipart body of documents


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message, from the user) and the conversation before it as
    (question, answer) pairs. System messages are ignored: the instructions are fixed."""
    if messages[-1].role != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    question = messages[-1].text().strip()
    if not question:
        raise ApiError(
            400,
            "the question is empty — ask something about the documents",
            "invalid_request_error",
            "empty_question",
            "messages",
        )
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages[:-1]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    return question, history


class Server:
    """What the routes share: the collections, the queue and the settings."""

    def __init__(self, rag: RAG, queue: FairQueue | None = None) -> None:
        s = rag.settings
        self.rag = rag
        self.settings = s
        self.collections = Collections(rag)
        self.queue = queue or FairQueue(s.llm_slots, s.queue_size, s.queue_per_client)
        self.keys = [k.strip() for k in s.api_keys.split(",") if k.strip()]

    def check_key(self, request: Request) -> str | None:
        """The caller's key; 401 unless it is one of RAG_API_KEYS (when set)."""
        if not self.keys:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given = given.strip()
        ok = scheme.lower() == "bearer" and any(secrets.compare_digest(given, k) for k in self.keys)
        if not ok:
            raise ApiError(
                401,
                "missing or wrong API key — send 'Authorization: Bearer <key>' with one of RAG_API_KEYS",
                "authentication_error",
                "invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return given

    def client_of(self, request: Request, user: str | None) -> str:
        """Whom the queue is fair between: the ``user`` field, else the key, else the address."""
        if user:
            return f"user:{user}"
        key = request.headers.get("authorization", "")
        if self.keys and key:
            return f"key:{hash(key) & 0xFFFFFFFF:x}"
        return f"ip:{request.client.host if request.client else '?'}"


def _routes(srv: Server) -> APIRouter:
    async def auth(request: Request) -> None:
        srv.check_key(request)

    r = APIRouter(prefix="/v1", dependencies=[Depends(auth)], responses=ERRORS)

    @r.post(
        "/chat/completions",
        response_model=ChatCompletion,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream"},
            429: {"description": "the queue is full; retry after Retry-After seconds"},
        },
    )
    async def chat_completions(body: ChatRequest, request: Request) -> Any:
        """Answer the last user message from a collection's documents (OpenAI-compatible)."""
        question, history = split_messages(body.messages)
        rag = srv.collections.get(body.model)
        ticket = srv.queue.submit(srv.client_of(request, body.user))
        try:
            run = Generation(srv.queue, ticket, rag, question, history)
        except BaseException:
            srv.queue.release(ticket)
            raise
        model = body.model or "default"
        if body.stream:
            return StreamingResponse(
                run.sse(model, lambda e: as_api_error(e).body()),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            _, answer = await run.result()
        finally:
            run.cancel()
        tokens = answer.timings.tokens
        return ChatCompletion(
            id=run.id,
            created=run.created,
            model=model,
            choices=[Choice(message=AssistantMessage(content=answer.text))],
            usage=Usage(completion_tokens=tokens, total_tokens=tokens),
            **AnswerExtras.of(answer).model_dump(),
        )

    @r.get("/models", response_model=ModelList)
    def models() -> ModelList:
        """The collections, as OpenAI models: pass one as ``model``."""
        return ModelList(data=[ModelOut(id=n) for n in srv.collections.names()])

    @r.post("/search", response_model=SearchResponse)
    def search(body: SearchRequest) -> SearchResponse:
        """Ranked passages for a query; never waits for the LLM."""
        query = body.query.strip()
        if not query:
            raise ApiError(
                400, "the query is empty — type a question or keywords", code="empty_query", param="query"
            )
        rag = srv.collections.get(body.collection)
        t = time.perf_counter()
        hits = rag.retrieve(query[: srv.settings.max_question_chars], body.k, body.mode)
        took = (time.perf_counter() - t) * 1000
        return SearchResponse(collection=body.collection, data=[PassageOut.of(h) for h in hits], took_ms=took)

    @r.post("/collections", response_model=CollectionOut, status_code=201, responses={409: ERROR})
    def create_collection(body: CollectionRequest) -> CollectionOut:
        """Create an empty collection in the store; add documents to it with POST …/documents."""
        srv.collections.create(body.name)
        return collection_out(body.name)

    @r.delete("/collections/{name}", response_model=CollectionDeleted, responses={403: ERROR})
    def delete_collection(name: str) -> CollectionDeleted:
        """Remove a collection and its index from the store (not the default collection)."""
        srv.collections.drop(name)
        return CollectionDeleted(id=name)

    def collection_out(name: str) -> CollectionOut:
        docs = srv.collections.documents(name)
        chunks = sum(d.chunks or 0 for d in docs)
        return CollectionOut(id=name, documents=len(docs), chunks=chunks, embedder=srv.rag.embedder.id)

    @r.get("/collections/{name}/documents", response_model=DocumentList)
    def list_documents(name: str) -> DocumentList:
        """The collection's documents. ``default``: the corpus (read-only) and the files added
        through the API; the others: every document in the store."""
        docs = srv.collections.documents(name)
        return DocumentList(collection=name, data=[DocumentOut(**d.__dict__) for d in docs])

    @r.post("/collections/{name}/documents", response_model=UploadResult, status_code=201)
    def add_documents(name: str, files: Annotated[list[UploadFile], File()]) -> UploadResult:
        """Add documents in any supported format (multipart field ``files``) and index them. In a
        collection other than ``default``, a document is named after its file without the
        extension, and a file of the same name replaces the document."""
        srv.collections.get(name)
        if len(files) > MAX_FILES:
            raise ApiError(400, f"at most {MAX_FILES} files at once", param="files")
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
            paths: list[Path] = []
            for i, f in enumerate(files):
                d = Path(tmp) / str(i)  # each file in its own folder: the names may repeat
                d.mkdir()
                p = d / Path(f.filename or "tai_lieu").name
                with p.open("wb") as out:
                    while block := f.file.read(1 << 20):
                        out.write(block)
                paths.append(p)
            report = srv.collections.add(name, paths)
        rejected = [Rejected(name=n, reason=why) for n, why in report.rejected]
        if not report.added and not report.replaced:
            why = "; ".join(f"{x.name}: {x.reason}" for x in rejected) or "no file"
            raise ApiError(400, f"no document added — {why}", code="documents_rejected", param="files")
        return UploadResult(
            collection=name,
            added=report.added,
            replaced=report.replaced,
            rejected=rejected,
            chunks=report.chunks,
        )

    @r.delete("/collections/{name}/documents/{document:path}", response_model=Deleted, responses={403: ERROR})
    def delete_document(name: str, document: str) -> Deleted:
        """Remove one document and its passages. In ``default`` only files added through the API
        can be removed; the corpus is read-only."""
        return Deleted(collection=name, deleted=srv.collections.remove(name, document))

    return r


def create_app(settings: Settings | None = None, rag: RAG | None = None, *, chat: bool = True) -> FastAPI:
    """The application of ``rag serve``: the API under ``/v1`` and, with ``chat``, the Gradio chat
    at ``/`` (sharing the model and the queue)."""
    rag = rag or RAG(settings)
    srv = Server(rag)
    app = FastAPI(
        title="rag-vi",
        summary="Cited answers from Vietnamese documents: OpenAI-compatible chat, search, documents",
        version="0.1.0",
    )
    app.state.server = srv
    fastapi_schema = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's schema without its 422 answers: invalid input is answered 400 (see below)."""
        if app.openapi_schema is None:
            schema = fastapi_schema()
            for ops in schema["paths"].values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError) -> JSONResponse:
        e = as_api_error(exc)
        return JSONResponse(e.body(), e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            msg = "the body is not valid JSON — send a JSON object with Content-Type: application/json"
            return JSONResponse(ApiError(400, msg, code="invalid_json").body(), 400)
        problems = []
        for err in errors:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            problems.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        first = errors[0].get("loc", ()) if errors else ()
        param = ".".join(str(x) for x in first if x != "body") or None
        msg = "invalid request — " + "; ".join(problems[:5])
        return JSONResponse(ApiError(400, msg, code="invalid_value", param=param).body(), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(
            ApiError(exc.status_code, str(exc.detail), code=code).body(),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(as_api_error(exc).body(), 500)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """Liveness and the queue's state (no key needed)."""
        return Health(
            generator=rag.settings.generator,
            llm_loaded=rag.has_generator(),
            queue_running=srv.queue.running,
            queue_waiting=srv.queue.waiting,
            queue_size=srv.queue.max_waiting,
            answers_served=srv.queue.served,
            answers_refused=srv.queue.refused,
            tokens_generated=srv.queue.tokens,
        )

    app.include_router(_routes(srv))
    app.add_middleware(
        BodyLimit,
        limit=lambda path: UPLOAD_LIMIT if path.endswith("/documents") else JSON_LIMIT,
        prefix="/v1/",
    )
    if chat:
        from ui.app import mount_chat  # the chat is optional: the API works without Gradio

        mount_chat(app, rag, srv.queue)
    return app


def serve(
    host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None, *, chat: bool = True
) -> None:
    """Run the application with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependencyError("uvicorn", "api") from exc
    rag = RAG(settings)
    if not chat:
        rag.retriever  # noqa: B018 - a missing index is reported now, not on the first request
    app = create_app(rag=rag, chat=chat)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
