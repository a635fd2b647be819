"""The offline default: a GGUF model run with llama-cpp-python (the bundled Qwen2.5 1.5B)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import MissingDependencyError, ModelLoadError
from ..prompt import NO, YES, messages, support_messages, yes_share
from ..types import Hit
from .completions import ShortCompletions
from .decode import LookupDecoder, Utf8Pieces, shared_prefix
from .model_files import ensure_model

logger = logging.getLogger(__name__)

REPEAT_PENALTY = 1.05  # a light penalty stops the small model from looping on lists


class LlamaCppGenerator(ShortCompletions):
    """Streams a chat completion from a local GGUF; one request at a time per model."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingDependencyError("llama-cpp-python", "llm") from exc
        path = Path(settings.llm_path) if settings.llm_path else ensure_model(settings.cache_dir)
        if not path.is_file():
            raise ModelLoadError(f"no GGUF model at {path} — set RAG_LLM_PATH to a .gguf file")
        threads = settings.llm_threads or os.cpu_count() or 2
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=settings.llm_ctx,
                n_threads=threads,
                n_batch=512,
                verbose=False,
            )
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {path}: {exc}. Check the file is a GGUF model and that "
                "about 2 GB of memory is free, or set RAG_GENERATOR=extractive."
            ) from exc
        self.model_path = str(path)
        self.max_new_tokens = settings.max_new_tokens
        self.copy_bias = settings.copy_bias
        self._format = _chat_formatter(self._llm)
        self.decoder = LookupDecoder(self._llm, settings.llm_draft_tokens)
        self._instructions: int | None = None
        self._lock = threading.Lock()
        self._yes_no = [self._first_token(YES), self._first_token(NO)]
        self._local = threading.local()  # per request thread: the last answer's token log-probabilities

    def _first_token(self, word: str) -> int:
        return int(self._llm.tokenize(word.encode("utf-8"), add_bos=False, special=False)[0])

    def _tokens(self, msgs: list[dict[str, str]]) -> list[int]:
        prompt = self._format(messages=msgs).prompt
        tokens: list[int] = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        bos = self._llm.token_bos()
        if bos >= 0 and self._llm._model.add_bos_token() and tokens[:1] != [bos]:
            tokens.insert(0, bos)
        return tokens

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        msgs = messages(question, passages, history)
        tokens = self._tokens(msgs)
        if self._instructions is None:  # the fixed system message: where drafts are not taken from
            self._instructions = shared_prefix(self._tokens(msgs[:1]), tokens)
        with self._lock:  # one llama.cpp context: one request at a time; it keeps the prompt cache
            pieces = Utf8Pieces(self._llm)
            for tok in self.decoder.generate(
                tokens, self.max_new_tokens, REPEAT_PENALTY, self._instructions, self.copy_bias
            ):
                yield pieces(tok)  # one piece a token (empty while a character spans tokens)
            tail = pieces.flush()
            self._local.logprobs = list(self.decoder.logprobs)
            if tail:
                yield tail

    def last_logprobs(self) -> list[float]:
        """Log-probabilities of the tokens of this thread's last answer (empty before one)."""
        return list(getattr(self._local, "logprobs", []))

    def support_probability(self, question: str, answer: str, evidence: list[str]) -> float:
        """P("Yes" | "No") that ``evidence`` says ``answer`` answers ``question``: one forward
        pass over a short prompt whose instructions are already in the cache."""
        tokens = self._tokens(support_messages(question, answer, evidence))
        with self._lock:
            yes, no = self.decoder.next_logits(tokens, self._yes_no)
        return yes_share(yes, no)

    def _english_limit(self, answer: str) -> int:
        return 2 * len(self._llm.tokenize(answer.encode("utf-8"), add_bos=False)) + 16

    def _complete(self, msgs: list[dict[str, str]], max_tokens: int) -> str:
        """The text of one short greedy generation for ``msgs`` (a translation, a second reading)."""
        tokens = self._tokens(msgs)
        with self._lock:
            pieces = Utf8Pieces(self._llm)
            text = "".join(pieces(t) for t in self.decoder.generate(tokens, max_tokens))
            return text + pieces.flush()


def _chat_formatter(llm: Any) -> Any:
    """The model's own chat template (from the GGUF); ChatML when it has none."""
    from llama_cpp import llama_chat_format

    template = llm.metadata.get("tokenizer.chat_template") or llama_chat_format.CHATML_CHAT_TEMPLATE

    def text(tok: int) -> str:
        return str(llm._model.token_get_text(tok)) if tok >= 0 else ""

    return llama_chat_format.Jinja2ChatFormatter(
        template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos())
    )
