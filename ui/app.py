"""Gradio chat for the Vietnamese document Q&A: streaming answers, checkable sources, uploads.

Run with ``rag chat`` or ``python ui/app.py``. Gradio is imported here only; ``rag`` never imports ui.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

if __package__ in (None, ""):  # `python ui/app.py`, as a Hugging Face Space runs it
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr

from rag.collections import list_collections
from rag.config import Settings
from rag.errors import IndexMismatchError, IndexNotFoundError, RagError
from rag.index import build_index
from rag.ingest import SUPPORTED, source_file
from rag.pipeline import RAG
from rag.scheduler import FairQueue, QueueFullError
from rag.uploads import MAX_FILE_BYTES, Workspace
from ui.render import esc, render_answer, render_sources, render_timings

logger = logging.getLogger(__name__)

EXAMPLES = [
    "Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?",
    "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?",
    "Chuyển đổi số là gì?",
    "Mục tiêu chuyển đổi số của Hải Dương đến năm 2025 là gì?",
]
GENERATORS = ["local", "extractive", "transformers", "openai"]

CSS = """
.src-card {border:1px solid var(--border-color-primary); border-radius:8px; padding:10px 12px; margin:8px 0;}
.src-card.flash, .src-card:target {outline:3px solid #f59e0b;}
.src-card mark {background:#fde68a; color:inherit; padding:0 2px;}
.src-head {font-weight:600;} .src-meta {font-size:0.85em; opacity:0.75;} .src-loc {font-weight:600;}
.src-related {border-style:dashed; opacity:0.9;}
.abstain-note {color:#b45309;}
"""
HEAD = """<script>
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a');
  if (!a) return;
  const m = (a.getAttribute('href') || '').match(/#nguon-(\\d+)$/);
  if (!m) return;
  e.preventDefault(); e.stopPropagation();
  const card = document.getElementById('nguon-' + m[1]);
  if (card) {
    card.scrollIntoView({behavior: 'smooth', block: 'center'});
    document.querySelectorAll('.src-card.flash').forEach(c => c.classList.remove('flash'));
    card.classList.add('flash');
  }
}, true);
</script>"""


class ChatApp:
    """Holds the shared RAG (models loaded once), the queue in front of the LLM (shared with the
    HTTP API under `rag serve`) and each session's upload workspace."""

    def __init__(
        self, settings: Settings | None = None, rag: RAG | None = None, queue: FairQueue | None = None
    ) -> None:
        self.rag = rag or RAG(settings)
        self.settings = self.rag.settings
        s = self.settings
        self.queue = queue or FairQueue(s.llm_slots, s.queue_size, s.queue_per_client)
        self._lock = threading.Lock()

    @property
    def allowed_paths(self) -> list[str]:
        """What the server may send: the corpus folder only (read-only, by Gradio's file route)."""
        return [str(Path(self.settings.corpus_dir).resolve())]

    def file_link(self, doc_id: str) -> str:
        """A link that opens a document's original file, or "" when it is not in the corpus."""
        path = source_file(self.settings.corpus_dir, doc_id)
        return f"/gradio_api/file={quote(str(path))}" if path else ""

    def rag_for(self, state: dict[str, Any]) -> RAG:
        """The session's collection, searched together with its own uploads (never a copy)."""
        name, ws = state.get("collection") or None, state.get("workspace")
        if not ws and name in (None, self.settings.collection):
            return self.rag
        uploads = str(Workspace(self.settings, ws).index_dir) if ws else None
        return self.rag.for_collection(name, uploads)

    def collections(self) -> list[str]:
        try:
            names = [c.collection for c in list_collections(self.settings)]
        except RagError as exc:
            logger.warning("cannot list collections: %s", exc)
            names = []
        return names if self.settings.collection in names else [self.settings.collection, *names]

    def refresh_collections(self) -> Any:
        """The picker's choices when a page opens: collections made since the app started appear."""
        return gr.update(choices=self.collections())

    def respond(
        self,
        message: str,
        chat: list[dict],
        state: dict[str, Any],
        gen_name: str,
        k: int,
        show: bool,
        request: gr.Request,
    ):  # type: ignore[no-untyped-def]
        message = (message or "").strip()
        if not message:
            gr.Warning("Hãy nhập một câu hỏi về tài liệu.")
            yield chat, state, gr.update(), gr.update(), message
            return
        state = {
            **state,
            "history": list(state.get("history", [])),
            "answers": list(state.get("answers", [])),
        }
        chat = [
            *chat,
            {"role": "user", "content": esc(message)},
            {"role": "assistant", "content": "⏳ Đang tìm trong tài liệu…"},
        ]
        yield chat, state, "", "", ""
        rag = self.rag_for(state)
        try:
            ticket = self.queue.submit(f"chat:{getattr(request, 'session_hash', None) or id(state)}")
        except QueueFullError as exc:
            chat[-1]["content"] = f"⏳ Máy chủ đang bận, hãy thử lại sau {exc.retry_after} giây."
            yield chat, state, "", "", ""
            return
        try:
            while not self.queue.wait(ticket, 0.5):  # the LLM is busy: show this user's place
                place = self.queue.position(ticket)
                chat[-1]["content"] = f"⏳ Đang chờ đến lượt: vị trí {place} trong hàng đợi…"
                yield chat, state, "", "", ""
            ticket.tokens = yield from self._answer(rag, message, chat, state, gen_name, k, show)
        finally:
            self.queue.release(ticket)

    def _answer(
        self,
        rag: RAG,
        message: str,
        chat: list[dict],
        state: dict[str, Any],
        gen_name: str,
        k: int,
        show: bool,
    ):  # type: ignore[no-untyped-def]
        try:
            if not rag.has_generator(gen_name) and gen_name != "extractive":
                chat[-1]["content"] = "⏳ Đang tải mô hình… (chỉ lần đầu, vài giây)"
                yield chat, state, "", "", ""
            stream = rag.stream(message, state["history"], generator=gen_name, k=int(k))
            text, last = "", 0.0
            for delta in stream:
                text += delta
                if time.monotonic() - last > 0.08:
                    chat[-1]["content"] = esc(text) + " ▌"
                    last = time.monotonic()
                    yield chat, state, "", "", ""
            a = stream.answer
        except RagError as exc:
            chat[-1]["content"] = f"❌ {esc(str(exc))}"
            yield chat, state, "", "", ""
            return 0
        chat[-1]["content"] = render_answer(a)
        for w in a.warnings:
            gr.Warning(w)
        state["history"].append((message, a.text))
        state["answers"].append(
            {
                "question": message,
                "answer": a.text,
                "abstained": a.abstained,
                "sources": [
                    {"n": c.n, "doc_id": c.doc_id, "chunk_id": c.chunk_id, "quote": c.quote}
                    for c in a.citations
                ],
            }
        )
        yield chat, state, render_sources(a, show, self.file_link), render_timings(a), ""
        return a.timings.tokens

    def feedback(self, state: dict[str, Any], data: gr.LikeData) -> None:
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        n = (int(idx) - 1) // 2  # assistant messages sit at odd positions
        answers = state.get("answers", [])
        if not 0 <= n < len(answers):
            return
        vote = "up" if data.liked is True else "down" if data.liked is False else str(data.liked)
        record = {**answers[n], "vote": vote, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        path = Path(self.settings.feedback_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        gr.Info("Cảm ơn phản hồi của bạn!")

    def upload(self, files: list[str] | None, state: dict[str, Any], progress=gr.Progress()):  # type: ignore[no-untyped-def]  # noqa: B008
        if not files:
            return state, "Chưa chọn tệp nào."
        ws = Workspace(self.settings, state.get("workspace") or None)
        progress(0, desc="Đang đọc tài liệu…")

        def step(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"Đang lập chỉ mục {done}/{total} đoạn")

        try:
            report = ws.add([Path(f) for f in files], self.rag.embedder, step)
        except RagError as exc:
            return state, f"❌ Không thể thêm tài liệu: {esc(str(exc))}. Chỉ mục cũ vẫn được giữ nguyên."
        lines = []
        if report.added:
            state = {**state, "workspace": ws.id}
            self.rag_for(state).reload()
            lines.append("✅ Đã thêm: " + ", ".join(esc(n) for n in report.added) + ". Bạn có thể hỏi ngay.")
            b = report.build
            if b is not None and b.ocr_pages:
                lines.append(f"🔎 Đã nhận dạng chữ (OCR) {b.ocr_pages} trang quét.")
            if b is not None and b.converted:
                encs = ", ".join(sorted({e for _, e in b.converted}))
                lines.append(f"🔤 Đã chuyển mã cũ ({esc(encs)}) sang Unicode.")
        for name, why in report.rejected:
            lines.append(f"⚠️ {esc(name)}: {esc(why)}")
        return state, "\n\n".join(lines)

    def build(self) -> gr.Blocks:
        with gr.Blocks(title="Hỏi đáp tài liệu tiếng Việt") as demo:
            state = gr.State({"history": [], "answers": [], "workspace": None})
            gr.Markdown(
                "## Hỏi đáp tài liệu tiếng Việt\nMọi câu trả lời đều kèm nguồn [n]: bấm vào số để xem đoạn trích."
            )
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Trò chuyện",
                        height=480,
                        buttons=["copy", "copy_all"],
                        elem_id="chat",
                        placeholder="Đặt câu hỏi về các tài liệu…",
                    )
                    timing = gr.Markdown(elem_id="timing")
                    with gr.Row():
                        box = gr.Textbox(
                            placeholder="Nhập câu hỏi, ví dụ: Chuyển đổi số là gì?",
                            show_label=False,
                            scale=5,
                            elem_id="question",
                        )
                        send = gr.Button("Gửi", variant="primary", scale=1, elem_id="send")
                    clear = gr.Button("Xóa hội thoại", size="sm")
                    gr.Examples(EXAMPLES, inputs=box, label="Câu hỏi mẫu")
                with gr.Column(scale=2):
                    gr.Markdown("### Nguồn")
                    sources = gr.HTML(elem_id="sources")
                    with gr.Accordion("Thêm tài liệu", open=False):
                        files = gr.File(
                            file_count="multiple",
                            file_types=sorted(SUPPORTED),
                            label=f"Tệp {' '.join(sorted(SUPPORTED))} (tối đa {MAX_FILE_BYTES // 2**20} MB)",
                            elem_id="upload",
                        )
                        add = gr.Button("Thêm vào chỉ mục", elem_id="add-docs")
                        upload_status = gr.Markdown(elem_id="upload-status")
                    with gr.Accordion("Cài đặt", open=False):
                        gen = gr.Dropdown(GENERATORS, value=self.settings.generator, label="Mô hình trả lời")
                        k = gr.Slider(
                            1, 10, value=self.settings.top_k, step=1, label="Số đoạn truy xuất (top-k)"
                        )
                        show = gr.Checkbox(True, label="Hiện nguồn")
                        pick = gr.Dropdown(
                            self.collections(), value=self.settings.collection, label="Bộ tài liệu"
                        )
            outs = [chatbot, state, sources, timing, box]
            ins = [box, chatbot, state, gen, k, show]
            send.click(self.respond, ins, outs, concurrency_limit=4, api_name="ask")
            box.submit(self.respond, ins, outs, concurrency_limit=4, api_visibility="private")
            pick.change(
                lambda name, s: {**s, "collection": name}, [pick, state], [state], api_visibility="private"
            )
            demo.load(self.refresh_collections, None, pick, api_visibility="private")
            chatbot.like(self.feedback, [state], None, api_visibility="private")
            add.click(
                self.upload, [files, state], [state, upload_status], concurrency_limit=1, api_name="upload"
            )
            clear.click(
                lambda s: ([], {**s, "history": [], "answers": []}, "", ""),
                [state],
                [chatbot, state, sources, timing],
                api_visibility="private",
            )
        return demo


def ensure_index(app: ChatApp) -> None:
    """Build the index at startup when it is missing or was built with another embedder (a Space
    that switches to a Hugging Face embedder through RAG_EMBEDDER starts this way)."""
    try:
        app.rag.retriever  # noqa: B018 - loads and checks the index
    except (IndexNotFoundError, IndexMismatchError) as exc:
        logger.warning("%s — building the index from %s now", exc, app.settings.corpus_dir)
        report = build_index(settings=app.settings, embedder=app.rag.embedder)
        logger.info("indexed %d files into %d chunks", report.files, report.chunks)
        app.rag.reload()


def parse_auth(spec: str) -> list[tuple[str, str]] | None:
    """``RAG_UI_AUTH`` ("user:password[,user2:password2]") as Gradio's list of logins."""
    logins = []
    for pair in (p.strip() for p in spec.split(",") if p.strip()):
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise RagError(f"RAG_UI_AUTH entry {user or pair!r} is not user:password — fix the variable")
        logins.append((user, password))
    return logins or None


def mount_chat(app: Any, rag: RAG, queue: FairQueue, path: str = "/") -> ChatApp:
    """Mount the chat on a FastAPI app (`rag serve`), sharing its model and LLM queue."""
    chat = ChatApp(rag=rag, queue=queue)
    ensure_index(chat)
    demo = chat.build()
    demo.queue(default_concurrency_limit=4, max_size=64)
    gr.mount_gradio_app(
        app,
        demo,
        path,
        auth=parse_auth(chat.settings.ui_auth),
        css=CSS,
        head=HEAD,
        max_file_size=MAX_FILE_BYTES,
        show_error=True,
    )
    return chat


def launch(host: str | None = None, port: int | None = None, settings: Settings | None = None) -> None:
    host = (
        host
        or os.environ.get("GRADIO_SERVER_NAME")
        or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    )
    port = port or int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    app = ChatApp(settings)
    ensure_index(app)
    demo = app.build()
    demo.queue(default_concurrency_limit=4, max_size=64)
    demo.launch(
        server_name=host,
        server_port=port,
        css=CSS,
        head=HEAD,
        max_file_size=MAX_FILE_BYTES,
        show_error=True,
        allowed_paths=app.allowed_paths,
        auth=parse_auth(app.settings.ui_auth),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    launch()
