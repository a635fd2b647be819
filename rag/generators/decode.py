"""Greedy decoding for llama.cpp with prompt-lookup drafts.

A grounded answer copies much of its wording from the passages in its prompt. So after each token we
look for the last three tokens earlier in the passages or the answer, and propose the tokens that
followed them there as a draft. The model checks the token and its draft in one batch and keeps the
draft tokens it would have chosen itself, so the answer is the same greedy answer, only sooner (up to
the rare near-tie that batched and single-token arithmetic round differently).

Measured on 2 cores: a step costs about 62 ms, and each draft token adds about a third of a step, so
drafts are sized by their luck: a draft kept whole doubles the next one (up to the configured
length); a draft cut short sets it to what was kept.

Greedy, with one exception (``CopyBias``): where the answer is copying the passages and the model's
choice leaves their words, a passage word close behind it is written instead, so a copied claim says
what its passage says. Drafts are checked against that same choice.

The prompt's key/value cache is kept between requests: a new prompt that starts like the previous
one (the fixed instructions, and the first passage for the support check) only evaluates what
differs, from the start of the block where they part. Prompts are cut into blocks at fixed
positions, so the same prompt gets the same answer whatever was asked before it.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

FIRST_DRAFT = 4
BLOCK = 128  # prompt tokens a batch: as fast as 512 on 2 cores (472 tokens: 4.7 s, 4.8 s; 64: 5.0 s)
PENALTY_WINDOW = 64  # tokens the repetition penalty looks back over, as llama.cpp's default
COPY_NGRAM = 3  # tokens just written that must occur in the passages for a copy to be continued


def lookup_draft(
    history: Sequence[int], k: int, max_ngram: int = 3, min_ngram: int = 3, start: int = 0
) -> list[int]:
    """Up to ``k`` tokens that followed the latest earlier occurrence of the last n-gram of
    ``history`` (longest n first), looking only from ``start`` on. Empty when no n-gram of at least
    ``min_ngram`` tokens recurs."""
    if k <= 0:
        return []
    n_hist = len(history)
    for n in range(min(max_ngram, n_hist - 1), min_ngram - 1, -1):
        tail = list(history[n_hist - n :])
        for start_at in range(n_hist - n - 1, start - 1, -1):  # latest match first: the closest context
            if list(history[start_at : start_at + n]) == tail:
                return list(history[start_at + n : start_at + n + k])
    return []


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` have in common."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def log_softmax_at(logits: np.ndarray, tok: int) -> float:
    """log P(``tok``) under ``logits`` (the model's confidence in the token it emitted)."""
    top = float(logits.max())
    return float(logits[tok]) - top - float(np.log(np.exp(logits - top).sum()))


def penalised(logits: np.ndarray, history: Sequence[int], penalty: float) -> np.ndarray:
    """``logits`` after a repetition penalty on the last tokens (llama.cpp's rule: positive logits
    are divided by the penalty, negative ones multiplied); a copy when anything changes."""
    if penalty == 1.0 or not history:
        return logits
    recent = np.unique(np.asarray(history[-PENALTY_WINDOW:], dtype=np.intp))
    vals = logits[recent]
    logits = logits.copy()
    logits[recent] = np.where(vals > 0, vals / penalty, vals * penalty)
    return logits


def ends_claim(piece: str) -> bool:
    """Whether a token written as ``piece`` ends a claim: (part of) a citation marker ("[1][2]" may
    be written with a "][" token), a line break, the end of a sentence, or only spaces."""
    text = piece.strip()
    return not text or any(c in piece for c in "[]\n") or text.endswith((".", "!", "?", "…"))


class CopyBias:
    """Copy-aware greedy decoding: where the last ``COPY_NGRAM`` tokens written also occur in the
    ``source`` (the passages and the question), a token that followed them there is chosen over
    the model's own choice when its logit is less than ``bias`` below it.

    The small model copies clauses but skips words on the way: "Công nghệ số đã giúp cấp ủy, chính
    quyền kịp thời, nhanh chóng …" from "… cấp ủy, chính quyền các cấp nắm bắt tình hình dịch bệnh
    kịp thời, nhanh chóng …", an answer that lost what was done. A copied claim says what its
    passage says. The model's choice stands where it ends the claim (``ends_claim``: an end token,
    a citation marker, a line break, a full stop), as a copy continued there runs on past the
    answer, and right after such a token, where a new claim starts. It only tips near ties, and
    never starts a copy: the reader still chooses where in the passages its answer comes from.
    """

    def __init__(self, source: Sequence[int], bias: float, ends_claim: Callable[[int], bool]) -> None:
        self.bias = bias
        self._ends_claim = ends_claim
        self._next: dict[tuple[int, ...], set[int]] = {}
        for i in range(len(source) - COPY_NGRAM):
            self._next.setdefault(tuple(source[i : i + COPY_NGRAM]), set()).add(source[i + COPY_NGRAM])

    def pick(self, scores: np.ndarray, history: Sequence[int], tok: int) -> int:
        """The token to write after ``history``, where the model's (penalised) ``scores`` chose ``tok``."""
        tail = history[-COPY_NGRAM:]
        follow = self._next.get(tuple(tail))
        if not follow or tok in follow or any(map(self._ends_claim, [tok, *tail])):
            return tok
        best = max(follow, key=lambda c: float(scores[c]))
        return best if scores[best] + self.bias > scores[tok] else tok


class LookupDecoder:
    """Greedy generation on a ``llama_cpp.Llama`` model through the llama.cpp C API. Not thread-safe:
    the caller serialises requests."""

    def __init__(self, llm: Any, draft_tokens: int = 8, api: Any = None) -> None:
        if api is None:
            import llama_cpp as api  # the C API; a test passes a stand-in
        self._c = api
        self._llm = llm
        self._ctx = llm.ctx
        self._vocab = api.llama_model_get_vocab(llm.model)
        self.n_vocab = int(api.llama_vocab_n_tokens(self._vocab))
        self.n_ctx = int(llm.n_ctx())
        self.n_batch = int(llm.n_batch)
        self.draft_tokens = max(0, min(draft_tokens, self.n_batch - 1))
        self._batch = api.llama_batch_init(self.n_batch, 0, 1)
        self._cached: list[int] = []  # tokens whose keys/values are in the context, in order
        self.block = min(BLOCK, self.n_batch)
        self._blocks = 0  # how many leading cached tokens were evaluated as whole blocks
        self.stats = {"steps": 0, "drafted": 0, "accepted": 0}
        self.logprobs: list[float] = []  # log P of each token of the last generation (unpenalised)
        self._copy: CopyBias | None = None  # the copy rule of the generation under way
        self._pieces: dict[int, bytes] = {}

    def close(self) -> None:
        if self._batch is not None:
            self._c.llama_batch_free(self._batch)
            self._batch = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------ llama.cpp calls
    def _forget_from(self, pos: int) -> None:
        self._c.llama_memory_seq_rm(self._c.llama_get_memory(self._ctx), 0, pos, -1)
        del self._cached[pos:]

    def _decode(self, tokens: Sequence[int], all_logits: bool) -> None:
        b = self._batch
        start = len(self._cached)
        for i, tok in enumerate(tokens):
            b.token[i] = tok
            b.pos[i] = start + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = all_logits or i == len(tokens) - 1
        b.n_tokens = len(tokens)
        rc = self._c.llama_decode(self._ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        self._cached.extend(tokens)

    def _logits(self, i: int) -> np.ndarray:
        ptr = self._c.llama_get_logits_ith(self._ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _is_end(self, tok: int) -> bool:
        return bool(self._c.llama_vocab_is_eog(self._vocab, tok))

    def _prefill(self, prompt: Sequence[int]) -> int:
        """Evaluate what the cache lacks of ``prompt``; returns the batch index of its last logits.

        A prompt is evaluated in blocks of ``block`` tokens at fixed positions, and only whole
        blocks of an earlier prompt are reused. llama.cpp's arithmetic differs with how a sequence
        is cut into batches: reusing whatever prefix the last request had left moved the bundled
        model's last logits by up to 0.6, enough to turn a greedy answer at a near tie, so the same
        question got another answer depending on what was asked before it.
        """
        shared = min(shared_prefix(self._cached, prompt), self._blocks, len(prompt) - 1)
        start = shared // self.block * self.block  # the last prompt token is always evaluated: its logits
        self._forget_from(start)
        for i in range(start, len(prompt), self.block):
            self._decode(list(prompt[i : i + self.block]), all_logits=False)
        self._blocks = (
            len(prompt) // self.block * self.block
        )  # its whole blocks: a later prompt may reuse them
        return (len(prompt) - 1) % self.block

    def _pick(self, i: int, history: Sequence[int], repeat_penalty: float) -> int:
        """The next token from the logits of batch row ``i``, and its log-probability recorded:
        the model's own, or for a copied token the one it has with the copy bias (what the decoder
        chose it by: unbiased, a copied word would read as a doubt the model did not have)."""
        logits = self._logits(i)
        tok = int(np.argmax(scores := penalised(logits, history, repeat_penalty)))
        if self._copy is not None and (copied := self._copy.pick(scores, history, tok)) != tok:
            logits = logits.copy()
            logits[copied] += self._copy.bias
            tok = copied
        self.logprobs.append(log_softmax_at(logits, tok))
        return tok

    def _ends_claim(self, tok: int) -> bool:
        """Whether ``tok`` ends a claim (``ends_claim``), or is the end of generation."""
        if self._is_end(tok):
            return True
        if tok not in self._pieces:
            self._pieces[tok] = bytes(self._llm.detokenize([tok], special=False))
        return ends_claim(self._pieces[tok].decode("utf-8", "ignore"))

    def next_logits(self, prompt: Sequence[int], candidates: Sequence[int]) -> list[float]:
        """The logits of ``candidates`` for the token after ``prompt``: one forward pass over what
        the cache lacks of it (a shared instructions prefix is reused)."""
        if len(prompt) >= self.n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        logits = self._logits(self._prefill(prompt))
        return [float(logits[c]) for c in candidates]

    # ------------------------------------------------------------ generation
    def generate(
        self,
        prompt: Sequence[int],
        max_tokens: int,
        repeat_penalty: float = 1.0,
        draft_from: int = 0,
        copy_bias: float = 0.0,
    ) -> Iterator[int]:
        """Greedy tokens after ``prompt`` until an end-of-generation token or ``max_tokens``. Drafts
        are looked up from token ``draft_from`` on (after the instructions: the answer is not
        copied from them, and their reply template made drafts that always failed). A
        ``copy_bias`` above 0 favours continuing, word for word, what the prompt says from
        ``draft_from`` on (``CopyBias``)."""
        if len(prompt) >= self.n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        max_tokens = min(max_tokens, self.n_ctx - len(prompt))
        history = list(prompt)
        self.logprobs = []
        self._copy = CopyBias(prompt[draft_from:], copy_bias, self._ends_claim) if copy_bias > 0 else None
        tok = self._pick(self._prefill(prompt), history, repeat_penalty)
        produced = 0
        size = FIRST_DRAFT  # the next draft's length: it grows while drafts are kept, shrinks if not
        while not self._is_end(tok) and produced < max_tokens:
            yield tok
            produced += 1
            history.append(tok)
            room = min(size, self.draft_tokens, max_tokens - produced, self.n_ctx - len(self._cached) - 1)
            draft = lookup_draft(history, room, start=draft_from)
            self._decode([tok, *draft], all_logits=bool(draft))
            self.stats["steps"] += 1
            self.stats["drafted"] += len(draft)
            i = 0
            nxt = self._pick(0, history, repeat_penalty)
            while i < len(draft) and nxt == draft[i] and not self._is_end(nxt) and produced < max_tokens:
                yield nxt
                produced += 1
                history.append(nxt)
                i += 1
                nxt = self._pick(i, history, repeat_penalty)
            self.stats["accepted"] += i
            if draft:  # each draft token costs about a third of a step: size drafts by their luck
                size = min(2 * size, self.draft_tokens) if i == len(draft) else max(1, i)
            if i < len(draft):  # the rejected draft tokens' keys/values are wrong: drop them
                self._forget_from(len(self._cached) - (len(draft) - i))
            tok = nxt


class Utf8Pieces:
    """Turns token pieces (bytes that may split a character) into text as soon as it is whole."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def __call__(self, tok: int) -> str:
        return str(self._dec.decode(self._llm.detokenize([tok], special=False)))

    def flush(self) -> str:
        return str(self._dec.decode(b"", final=True))
