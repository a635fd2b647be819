"""Generators: one small interface, a few backends (one module each)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..config import Settings
from ..errors import ModelLoadError
from ..types import Hit


class Generator(Protocol):
    """Writes an answer from numbered passages, streaming text as it is produced."""

    name: str

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]: ...


def make_generator(name: str, settings: Settings) -> Generator:
    """``local`` (default), ``transformers``, ``openai`` or ``extractive``."""
    if name == "extractive":
        from .extractive import ExtractiveGenerator

        return ExtractiveGenerator()
    if name == "local":
        from .local import LlamaCppGenerator

        return LlamaCppGenerator(settings)
    if name == "transformers":
        from .hf import TransformersGenerator

        return TransformersGenerator(settings.hf_model, settings.max_new_tokens, copy_bias=settings.copy_bias)
    if name == "openai":
        from .openai import OpenAIGenerator

        return OpenAIGenerator(
            settings.openai_base_url, settings.openai_model, settings.openai_api_key, settings.max_new_tokens
        )
    raise ModelLoadError(
        f"unknown generator {name!r}: set RAG_GENERATOR to local, transformers, openai or extractive"
    )


__all__ = ["Generator", "make_generator"]
