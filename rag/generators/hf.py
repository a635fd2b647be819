"""Any Hugging Face causal LM with a chat template, via transformers (for a Space or a GPU).

It decodes as the local model does, greedily with the same copy bias (``RAG_COPY_BIAS``), and its
answers are rated as the local model's are: the log-probabilities of the tokens it wrote, the
support check read from the logits of one forward pass, a second reading of borderline answers; it
translates English questions for the search and puts answers to them into English.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ..errors import MissingDependencyError, ModelLoadError
from ..prompt import NO, YES, messages, support_messages, yes_share
from ..types import Hit
from .completions import ShortCompletions
from .decode import CopyBias, ends_claim, shared_prefix


class TransformersGenerator(ShortCompletions):
    name = "transformers"

    def __init__(
        self, model: str, max_new_tokens: int = 200, device: str | None = None, copy_bias: float = 0.0
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingDependencyError("transformers and torch", "hf") from exc
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForCausalLM.from_pretrained(model, torch_dtype="auto")
        except Exception as exc:
            raise ModelLoadError(
                f"could not load {model!r} with transformers: {exc}. Give a local path or a Hub id "
                "reachable from this machine (RAG_HF_MODEL)."
            ) from exc
        if self.tokenizer.chat_template is None:
            raise ModelLoadError(f"{model!r} has no chat template; use an instruction-tuned model")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()  # type: ignore[arg-type]
        self.max_new_tokens = max_new_tokens
        self.copy_bias = copy_bias
        self._instructions: int | None = None  # prompt tokens of the fixed instructions
        config = self.model.generation_config
        self._ends = {*_ids(config.eos_token_id), *_ids(self.tokenizer.eos_token_id)}
        self._lock = threading.Lock()
        self._yes_no = [self._first_token(YES), self._first_token(NO)]
        self._local = threading.local()  # per request thread: the last answer's token log-probabilities

    def _first_token(self, word: str) -> int:
        return int(self.tokenizer.encode(word, add_special_tokens=False)[0])

    def _inputs(self, msgs: list[dict[str, str]]) -> dict[str, Any]:
        prompt = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        return {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask") if k in enc}

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        msgs = messages(question, passages, history)
        inputs = self._inputs(msgs)
        extra: dict[str, Any] = {}
        if self.copy_bias > 0:  # copy from what follows the fixed instructions, as the local model does
            ids = inputs["input_ids"][0].tolist()
            if self._instructions is None:  # the fixed system message, tokenized once
                self._instructions = shared_prefix(self._inputs(msgs[:1])["input_ids"][0].tolist(), ids)
            source = ids[self._instructions :]
            extra["logits_processor"] = [_CopyProcessor(CopyBias(source, self.copy_bias, self._ends_claim))]
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300
        )
        failure: list[BaseException] = []
        self._local.logprobs = logprobs = []

        def run() -> None:
            try:
                out = self.model.generate(  # type: ignore[operator]
                    **inputs,
                    streamer=streamer,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    output_scores=True,
                    return_dict_in_generate=True,
                    **extra,
                )
                logprobs.extend(_chosen_logprobs(out, inputs["input_ids"].shape[1]))
            except BaseException as exc:  # surfaced in the caller's thread below
                failure.append(exc)
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            for text in streamer:
                if text:
                    yield text
            worker.join()
        if failure:
            raise ModelLoadError(f"generation with transformers failed: {failure[0]}") from failure[0]

    def _ends_claim(self, tok: int) -> bool:
        """Whether ``tok`` ends a claim (``ends_claim``), or is an end token."""
        return tok in self._ends or ends_claim(str(self.tokenizer.decode([tok])))

    def last_logprobs(self) -> list[float]:
        """Log-probabilities of the tokens of this thread's last answer (empty before one)."""
        return list(getattr(self._local, "logprobs", []))

    def support_probability(self, question: str, answer: str, evidence: list[str]) -> float:
        """P("Yes" | "No") that ``evidence`` says ``answer`` answers ``question``: the logits of one
        forward pass over a short prompt."""
        import torch

        inputs = self._inputs(support_messages(question, answer, evidence))
        with self._lock, torch.no_grad():
            logits = self.model(**inputs).logits[0, -1]
        yes, no = (float(logits[t]) for t in self._yes_no)
        return yes_share(yes, no)

    def _english_limit(self, answer: str) -> int:
        return 2 * len(self.tokenizer.encode(answer, add_special_tokens=False)) + 16

    def _complete(self, msgs: list[dict[str, str]], max_tokens: int) -> str:
        """The text of one short greedy generation for ``msgs``."""
        import torch

        inputs = self._inputs(msgs)
        with self._lock, torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)  # type: ignore[operator]
        return str(self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))


def _ids(value: int | list[int] | None) -> list[int]:
    return [] if value is None else [value] if isinstance(value, int) else list(value)


class _CopyProcessor:
    """``CopyBias`` as a transformers logits processor for greedy search: the copied token gets
    the bias, so it is the one chosen and its recorded score is the biased one, as on llama.cpp."""

    def __init__(self, copy: CopyBias) -> None:
        self.copy = copy

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        history = input_ids[0].tolist()
        tok = int(scores[0].argmax())
        copied = self.copy.pick(scores[0], history, tok)
        if copied != tok:
            scores = scores.clone()
            scores[0, copied] += self.copy.bias
        return scores


def _chosen_logprobs(out: Any, prompt_len: int) -> list[float]:
    """log P of each token ``generate`` chose, from the scores it returned step by step."""
    import torch

    chosen = out.sequences[0, prompt_len:]
    return [
        float(torch.log_softmax(step[0].float(), dim=-1)[tok])
        for step, tok in zip(out.scores, chosen.tolist())
    ]
