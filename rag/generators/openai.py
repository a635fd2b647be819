"""Any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp server), streamed over HTTP.

Its answers are rated as the local model's are when the server returns log-probabilities (OpenAI,
vLLM, llama.cpp's servers do): the answer's token log-probabilities come with the stream, and the
support check reads "Yes"/"No" from the first token's most likely alternatives of a one-token
completion. Whether the server gives them is asked once; a server that does not is not asked for
them again, and its answers are not rated (``support_probability`` gives None).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import ModelLoadError
from ..prompt import YES, messages, support_messages, yes_probability
from ..types import Hit
from .completions import ShortCompletions

logger = logging.getLogger(__name__)

TOP_LOGPROBS = 20  # the most alternatives OpenAI's API lists for a token


class OpenAIGenerator(ShortCompletions):
    name = "openai"

    def __init__(
        self, base_url: str, model: str, api_key: str = "", max_new_tokens: int = 200, timeout: float = 120.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_new_tokens = max_new_tokens
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout)
        self._logprobs: bool | None = None  # whether the server gives log-probabilities, once asked
        self._probe_lock = threading.Lock()
        self._local = threading.local()  # per request thread: the last answer's token log-probabilities

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages(question, passages, history),
            "stream": True,
            "temperature": 0,
            "max_tokens": self.max_new_tokens,
        }
        self._local.logprobs = logprobs = []
        try:
            with self._client.stream(
                "POST", self.url, json=self._with_logprobs(body, 1), headers=self._headers
            ) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise ModelLoadError(
                        f"{self.url} answered {resp.status_code}: {resp.text[:200]} — check "
                        "RAG_OPENAI_BASE_URL, RAG_OPENAI_MODEL and RAG_OPENAI_API_KEY"
                    )
                for choice in _chunks(resp):
                    logprobs += _token_logprobs(choice)
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def last_logprobs(self) -> list[float]:
        """Log-probabilities of the tokens of this thread's last answer (empty before one, or when
        the server gives none)."""
        return list(getattr(self._local, "logprobs", []))

    def support_probability(self, question: str, answer: str, evidence: list[str]) -> float | None:
        """P("Yes" | "No") that ``evidence`` says ``answer`` answers ``question``, from a one-token
        completion's listed alternatives; None when the server gives no log-probabilities."""
        if not self._gives_logprobs():
            return None
        body = {"model": self.model, "messages": support_messages(question, answer, evidence)}
        choice = self._post(self._with_logprobs({**body, "temperature": 0, "max_tokens": 1}, TOP_LOGPROBS))
        content = ((choice or {}).get("logprobs") or {}).get("content") or []
        if not content:
            return None
        top = {str(t["token"]): float(t["logprob"]) for t in content[0].get("top_logprobs") or []}
        return yes_probability(top) if top else None

    def _complete(self, msgs: list[dict[str, str]], max_tokens: int) -> str:
        """One short greedy completion's text ("" when the server answered with an error)."""
        choice = self._post(
            {"model": self.model, "messages": msgs, "temperature": 0, "max_tokens": max_tokens}
        )
        return str(((choice or {}).get("message") or {}).get("content") or "")

    def _post(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The first choice of one completion, or None when the server answered with an error (the
        answer's own request reports what is wrong with the server)."""
        try:
            resp = self._client.post(self.url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code != 200:
            return None
        choices = resp.json().get("choices") or [{}]
        return dict(choices[0])

    def _with_logprobs(self, body: dict[str, Any], top: int) -> dict[str, Any]:
        return {**body, "logprobs": True, "top_logprobs": top} if self._gives_logprobs() else body

    def _gives_logprobs(self) -> bool:
        """Whether the server returns log-probabilities, asked once with a one-token completion.
        Servers that refuse them answer 400 or 422, or fail (llama-cpp-python's server without
        ``logits_all`` answers 500, and breaks a stream without a word); others ignore them. A
        server that cannot be asked yet is asked again next time."""
        with self._probe_lock:
            if self._logprobs is None:
                body = {"model": self.model, "messages": [{"role": "user", "content": YES}], "max_tokens": 1}
                try:
                    resp = self._client.post(
                        self.url, json={**body, "logprobs": True, "top_logprobs": 1}, headers=self._headers
                    )
                except httpx.HTTPError:
                    return False  # the request itself reports the server unreachable
                if resp.status_code == 200:
                    try:
                        choices = resp.json().get("choices") or [{}]
                    except ValueError:
                        choices = [{}]  # not a chat completion: the request itself reports it
                    self._logprobs = bool(_token_logprobs(choices[0]))
                elif resp.status_code in (400, 422) or resp.status_code >= 500 and "logprobs" in resp.text:
                    self._logprobs = False
                else:
                    return False  # an unknown model or a bad key: the request itself reports it
                if not self._logprobs:
                    logger.warning(
                        "%s gives no log-probabilities (%s): its answers are not rated for confidence",
                        self.url,
                        resp.text[:120],
                    )
            return self._logprobs

    def _unreachable(self, exc: Exception) -> ModelLoadError:
        return ModelLoadError(
            f"could not reach the OpenAI-compatible server at {self.url}: {exc} — start it or set RAG_OPENAI_BASE_URL"
        )


def _chunks(resp: httpx.Response) -> Iterator[dict[str, Any]]:
    """The first choice of each streamed chunk (server-sent events up to ``[DONE]``)."""
    for line in resp.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        choices = json.loads(data).get("choices") or []
        if choices:
            yield choices[0]


def _token_logprobs(choice: dict[str, Any]) -> list[float]:
    content = (choice.get("logprobs") or {}).get("content") or []
    return [float(t["logprob"]) for t in content if t.get("logprob") is not None]
