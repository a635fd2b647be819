"""Any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp server), streamed over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx

from ..errors import ModelLoadError
from ..prompt import (
    TRANSLATION_TOKENS,
    english_answer,
    english_messages,
    messages,
    translate_messages,
    translation,
)
from ..types import Hit


class OpenAIGenerator:
    name = "openai"

    def __init__(
        self, base_url: str, model: str, api_key: str = "", max_new_tokens: int = 200, timeout: float = 120.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_new_tokens = max_new_tokens
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": messages(question, passages, history),
            "stream": True,
            "temperature": 0,
            "max_tokens": self.max_new_tokens,
        }
        try:
            with self._client.stream("POST", self.url, json=body, headers=self._headers) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise ModelLoadError(
                        f"{self.url} answered {resp.status_code}: {resp.text[:200]} — check RAG_OPENAI_BASE_URL, "
                        "RAG_OPENAI_MODEL and RAG_OPENAI_API_KEY"
                    )
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choice = json.loads(data)["choices"][0]
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def translate(self, question: str) -> str:
        """``question`` in Vietnamese from one short completion, or "" when the server gave none."""
        return translation(self._complete(translate_messages(question), TRANSLATION_TOKENS))

    def to_english(self, answer: str) -> str:
        """``answer`` (checked, in Vietnamese) in English, or "" when the server gave no faithful one."""
        return english_answer(self._complete(english_messages(answer), 4 * TRANSLATION_TOKENS), answer)

    def _complete(self, msgs: list[dict[str, str]], max_tokens: int) -> str:
        """One short greedy completion's text ("" when the server answered with an error)."""
        body = {"model": self.model, "messages": msgs, "temperature": 0, "max_tokens": max_tokens}
        try:
            resp = self._client.post(self.url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code != 200:
            return ""  # the answer's own request reports what is wrong with the server
        choices = resp.json().get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")

    def _unreachable(self, exc: Exception) -> ModelLoadError:
        return ModelLoadError(
            f"could not reach the OpenAI-compatible server at {self.url}: {exc} — start it or set RAG_OPENAI_BASE_URL"
        )
