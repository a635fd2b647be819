"""Any Hugging Face causal LM with a chat template, via transformers (for a Space or a GPU)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ..errors import MissingDependencyError, ModelLoadError
from ..prompt import messages
from ..types import Hit


class TransformersGenerator:
    name = "transformers"

    def __init__(self, model: str, max_new_tokens: int = 200, device: str | None = None) -> None:
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
        self._lock = threading.Lock()

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        prompt = self.tokenizer.apply_chat_template(
            messages(question, passages, history), add_generation_prompt=True, tokenize=False
        )
        enc = self.tokenizer(prompt, return_tensors="pt")
        inputs = {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask") if k in enc}
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300
        )
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.model.generate(  # type: ignore[misc]
                    **inputs, streamer=streamer, max_new_tokens=self.max_new_tokens, do_sample=False
                )
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
