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
from ..prompt import messages
from ..types import Hit
from .model_files import ensure_model

logger = logging.getLogger(__name__)


class LlamaCppGenerator:
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
        self._lock = threading.Lock()

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        msgs = messages(question, passages, history)
        with self._lock:  # llama.cpp contexts are not thread-safe; the prompt cache is per context
            for part in self._llm.create_chat_completion(
                messages=msgs,  # type: ignore[arg-type]
                stream=True,
                temperature=0.0,
                max_tokens=self.max_new_tokens,
                repeat_penalty=1.05,
            ):
                choice: Any = part["choices"][0]  # type: ignore[index]
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text
