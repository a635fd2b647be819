"""The two runtimes compared by compare_runtimes.py: one answer (streamed, with per-token
log-probabilities) and one support check each, timed from the moment the question was asked.

(a) ``local``: the project's generator (rag/generators/local.py and decode.py).
(b) ``xllamacpp``: llama.cpp's server engine in this process (``xllamacpp.Server``), through its
    OpenAI-shaped chat completions.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.config import Settings
from rag.generators.decode import PENALTY_WINDOW
from rag.generators.local import REPEAT_PENALTY, LlamaCppGenerator
from rag.prompt import NO, YES, strip_format, support_messages
from rag.types import Hit


@dataclass
class Prompt:
    question: str
    passages: list[Hit]
    msgs: list[dict[str, str]]


@dataclass
class Run:
    runtime: str
    question: str
    ttft_s: float  # from the call to the first visible text
    total_s: float
    tokens: int  # generated tokens, the end-of-generation token included (as llama.cpp counts them)
    text: str
    prompt_tokens: int = 0
    logprobs: list[float] = field(default_factory=list)
    drafted: int = 0
    accepted: int = 0
    support: float | None = None  # P(Yes) of the support check
    support_s: float | None = None

    @property
    def gen_tps(self) -> float:
        """Tokens per second after the first token (the decoding phase)."""
        busy = self.total_s - self.ttft_s
        return (self.tokens - 1) / busy if self.tokens > 1 and busy > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gen_tps"] = round(self.gen_tps, 2)
        d["mean_logprob"] = round(statistics.fmean(self.logprobs), 4) if self.logprobs else None
        del d["logprobs"]
        return d


# ------------------------------------------------------------------ the project's generator
def run_local(gen: LlamaCppGenerator, p: Prompt, t0: float | None = None) -> Run:
    """One answer through the project's generator; ``t0`` is when the user asked (default: now)."""
    t0 = time.perf_counter() if t0 is None else t0
    before = dict(gen.decoder.stats)
    first = None
    pieces = []
    for piece in gen.stream(p.question, p.passages, []):
        if first is None and piece:
            first = time.perf_counter() - t0
        pieces.append(piece)
    total = time.perf_counter() - t0
    logprobs = gen.last_logprobs()
    return Run(
        "local",
        p.question,
        first if first is not None else total,
        total,
        len(logprobs),  # one per generated token, the one that ended the answer included
        "".join(pieces),
        len(gen._tokens(p.msgs)),
        logprobs,
        gen.decoder.stats["drafted"] - before["drafted"],
        gen.decoder.stats["accepted"] - before["accepted"],
    )


def support_local(gen: LlamaCppGenerator, p: Prompt, run: Run) -> None:
    t = time.perf_counter()
    run.support = gen.support_probability(p.question, strip_format(run.text), _evidence(p))
    run.support_s = time.perf_counter() - t


def _evidence(p: Prompt) -> list[str]:
    h = p.passages[0]
    return [f"({h.chunk.title}) {h.chunk.text[:300]}"]


# ------------------------------------------------------------------ xllamacpp
def start_xllamacpp(model: str, slots: int, settings: Settings, port: int, draft: int) -> Any:
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = model
    params.n_parallel = slots
    params.n_ctx = settings.llm_ctx * slots  # each slot gets the context of the local generator
    params.n_batch = 512
    threads = settings.llm_threads or os.cpu_count() or 2
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.hostnames = ["127.0.0.1"]  # it also serves HTTP: loopback, on a port of our own
    params.port = port
    if draft > 0:  # the project's lookup: the last 3 tokens, drafts of up to `draft` tokens
        spec = params.speculative
        spec.types = [xlc.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
        spec.ngram_simple.size_n = 3
        spec.ngram_simple.size_m = draft
        spec.draft.n_max = draft
        spec.draft.n_min = 0
    return xlc.Server(params)


def run_xllamacpp(
    srv: Any, p: Prompt, max_tokens: int, t0: float | None = None, name: str = "xllamacpp"
) -> Run:
    t0 = time.perf_counter() if t0 is None else t0
    first: list[float] = []
    text: list[str] = []
    logprobs: list[float] = []
    last: dict[str, Any] = {}
    errors: list[Any] = []

    def on_chunk(chunk: Any) -> None:
        if not isinstance(chunk, dict) or "error" in chunk:
            errors.append(chunk)
            return
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""
            if piece and not first:
                first.append(time.perf_counter() - t0)
            text.append(piece)
            for entry in (choice.get("logprobs") or {}).get("content") or []:
                logprobs.append(float(entry["logprob"]))
            if choice.get("finish_reason"):
                last["finish"] = choice["finish_reason"]
        if "timings" in chunk:
            last["timings"] = chunk["timings"]
        if "usage" in chunk:
            last["usage"] = chunk["usage"]

    srv.handle_chat_completions(
        {
            "messages": p.msgs,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "repeat_penalty": REPEAT_PENALTY,
            "repeat_last_n": PENALTY_WINDOW,
            "stream": True,
            "stream_options": {"include_usage": True},
            "logprobs": True,
            "top_logprobs": 1,
            "cache_prompt": True,
        },
        on_chunk,
    )
    total = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"xllamacpp answered with an error: {errors[0]}")
    timings = last.get("timings", {})
    usage = last.get("usage", {})
    return Run(
        name,
        p.question,
        first[0] if first else total,
        total,
        int(timings.get("predicted_n", len(logprobs))),
        "".join(text),
        int(usage.get("prompt_tokens") or timings.get("prompt_n", 0) + timings.get("cache_n", 0)),
        logprobs,
        int(timings.get("draft_n", 0)),
        int(timings.get("draft_n_accepted", 0)),
    )


def support_xllamacpp(srv: Any, p: Prompt, run: Run) -> None:
    """P(Yes) of the support check from one token's log-probabilities (top 20)."""
    t = time.perf_counter()
    res = srv.handle_chat_completions(
        {
            "messages": support_messages(p.question, strip_format(run.text), _evidence(p)),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 20,
            "cache_prompt": True,
        }
    )
    run.support_s = time.perf_counter() - t
    top = res["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    lp = {e["token"]: float(e["logprob"]) for e in top}
    floor = min(lp.values())  # a word outside the top 20 is at most this likely
    yes, no = lp.get(YES, floor), lp.get(NO, floor)
    run.support = 1.0 / (1.0 + math.exp(no - yes))


def concurrent_xllamacpp(srv: Any, prompts: list[Prompt], max_tokens: int, t0: float) -> list[Run]:
    """Each prompt from its own thread, all at once (xllamacpp's calls release the GIL)."""
    runs: list[Run | None] = [None] * len(prompts)

    def ask(i: int) -> None:
        runs[i] = run_xllamacpp(srv, prompts[i], max_tokens, t0)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(r is None for r in runs):
        raise RuntimeError("a concurrent xllamacpp request failed (see the log above)")
    return [r for r in runs if r is not None]
