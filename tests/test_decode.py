"""Prompt-lookup decoding: the drafts must change the speed, never the answer."""

import ctypes
from types import SimpleNamespace

import numpy as np
import pytest

from rag.generators import decode
from rag.generators.decode import CopyBias, LookupDecoder, ends_claim, lookup_draft, penalised

VOCAB = 32
EOS = 0


class FakeApi:
    """A stand-in for the llama.cpp C API over a toy model: the next token is a fixed function of
    the last two tokens of the sequence. It checks that the decoder keeps its cache consistent."""

    def __init__(self, rule):
        self.rule = rule
        self.kv: list[int] = []
        self.out: dict[int, np.ndarray] = {}
        self.decodes: list[int] = []

    def llama_model_get_vocab(self, model):
        return "vocab"

    def llama_vocab_n_tokens(self, vocab):
        return VOCAB

    def llama_vocab_is_eog(self, vocab, tok):
        return tok == EOS

    def llama_batch_init(self, n, embd, n_seq):
        return SimpleNamespace(
            token=[0] * n, pos=[0] * n, n_seq_id=[0] * n, seq_id=[[0] for _ in range(n)], logits=[0] * n
        )

    def llama_batch_free(self, batch):
        pass

    def llama_get_memory(self, ctx):
        return "memory"

    def llama_memory_seq_rm(self, mem, seq, p0, p1):
        assert p1 == -1 and p0 <= len(self.kv)
        del self.kv[p0:]
        return True

    def llama_decode(self, ctx, b):
        self.out = {}
        self.decodes.append(b.n_tokens)
        for i in range(b.n_tokens):
            assert b.pos[i] == len(self.kv), "a token placed at the wrong position"
            self.kv.append(b.token[i])
            if b.logits[i]:
                row = np.full(VOCAB, -1.0, dtype=np.float32)
                row[self.rule(self.kv)] = 5.0
                self.out[i] = row
        return 0

    def llama_get_logits_ith(self, ctx, i):
        return self.out[i].ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def fake_llm():
    return SimpleNamespace(ctx="ctx", model="model", n_batch=64, n_ctx=lambda: 256)


def run(rule, prompt, k, max_tokens=40):
    api = FakeApi(rule)
    dec = LookupDecoder(fake_llm(), draft_tokens=k, api=api)
    out = list(dec.generate(prompt, max_tokens))
    assert api.kv == dec._cached  # what the decoder believes is cached is what is cached
    return out, dec, api


def copy_rule(source):
    """Repeats ``source`` over and over (drafts from the prompt are mostly right), but puts a 7
    at every seventh position (so some drafts are wrong), and ends at 50 tokens."""

    def rule(seq):
        n = len(seq)
        if n >= 50:
            return EOS
        return 7 if n % 7 == 0 else source[n % len(source)]

    return rule


def test_drafts_do_not_change_the_greedy_answer() -> None:
    source = [5, 9, 3, 4, 8, 12, 5, 9, 3, 4, 11, 2, 6, 13]
    rule = copy_rule(source)
    plain, _, api0 = run(rule, source, k=0)
    drafted, dec, api8 = run(rule, source, k=8)
    assert drafted == plain and len(plain) > 10
    assert dec.stats["accepted"] > 0 and dec.stats["drafted"] > dec.stats["accepted"]  # both paths
    assert len(api8.decodes) < len(api0.decodes)  # fewer model calls: the point of it
    sizes = api8.decodes[1:]  # after the prompt: the token and its draft
    assert max(sizes) > decode.FIRST_DRAFT + 1  # drafts kept whole made the next ones longer


def test_max_tokens_and_end_token_are_respected() -> None:
    source = [5, 9, 3, 4, 8, 12, 5, 9, 3, 4, 11, 2, 6, 13]
    for k in (0, 8):
        out, _, _ = run(copy_rule(source), source, k=k, max_tokens=7)
        assert len(out) == 7
    out, _, _ = run(lambda seq: EOS if len(seq) > 20 else 4, source, k=8)
    assert out == [4] * 7  # sequences of 14..20 tokens continue; at 21 the model ends


def test_prompt_cache_is_reused_in_whole_blocks() -> None:
    api = FakeApi(lambda seq: EOS)
    dec = LookupDecoder(fake_llm(), draft_tokens=4, api=api)
    dec.block = 2
    list(dec.generate([1, 2, 3, 4, 5, 6], 5))
    list(dec.generate([1, 2, 3, 4, 9, 9], 5))
    assert api.decodes == [2, 2, 2, 2]  # only the differing block was evaluated again
    assert api.kv == [1, 2, 3, 4, 9, 9]
    list(dec.generate([1, 2, 3, 9], 5))  # they part inside the second block: all of it again
    assert api.decodes[4:] == [2] and api.kv == [1, 2, 3, 9]


class BatchSensitiveApi(FakeApi):
    """llama.cpp's arithmetic depends on how a sequence was cut into batches. Here the toy model's
    top two tokens are a near tie that the size of the last batch decides."""

    def llama_decode(self, ctx, b):
        rc = super().llama_decode(ctx, b)
        for row in self.out.values():
            row[3] = 5.0 + (0.01 if b.n_tokens % 2 else -0.01)
        return rc


def test_the_same_prompt_gets_the_same_answer_whatever_came_before() -> None:
    api = BatchSensitiveApi(lambda seq: 4 if len(seq) < 12 else EOS)
    dec = LookupDecoder(fake_llm(), draft_tokens=0, api=api)
    dec.block = 3
    prompt = [1, 2, 3, 4, 5, 6, 7, 8]
    first = list(dec.generate(prompt, 5))
    for before in ([1, 2, 3, 9], [1, 2, 3, 4, 5, 6, 7, 9, 9], prompt, [8, 8]):
        list(dec.generate(before, 2))
        assert list(dec.generate(prompt, 5)) == first, before
        assert api.kv == dec._cached


def test_prompt_longer_than_the_context_is_refused() -> None:
    dec = LookupDecoder(fake_llm(), api=FakeApi(lambda seq: EOS))
    with pytest.raises(ValueError, match="context"):
        list(dec.generate(list(range(1, 300)), 5))


def test_lookup_draft() -> None:
    hist = [1, 2, 3, 4, 5, 9, 1, 2, 3]
    assert lookup_draft(hist, 3) == [4, 5, 9]  # "1 2 3" occurred before, followed by 4 5 9
    assert lookup_draft([1, 2, 3, 1, 2, 3, 7, 1, 2, 3], 2) == [7, 1]  # the latest occurrence wins
    # a repeated pair is not enough by default (measured: drafts from pairs are kept less often)
    assert lookup_draft([8, 2, 3, 4, 2, 3], 2) == []
    assert lookup_draft([8, 2, 3, 4, 2, 3], 2, min_ngram=2) == [4, 2]
    assert lookup_draft(hist, 0) == []
    assert lookup_draft(hist, 3, start=1) == []  # the only earlier "1 2 3" is before ``start``


def test_the_repetition_penalty_lowers_recent_tokens() -> None:
    logits = np.array([0.0, 2.0, 1.95, -1.0], dtype=np.float32)
    assert np.argmax(penalised(logits, [], 1.05)) == 1
    assert np.argmax(penalised(logits, [1], 1.05)) == 2  # 2.0 / 1.05 < 1.95
    assert np.argmax(penalised(logits, [3, 3], 1.05)) == 1 and penalised(logits, [3], 1.05)[3] < -1.0
    assert logits[1] == 2.0  # the model's logits are not modified in place


def test_token_log_probabilities_are_the_models_with_or_without_drafts() -> None:
    source = [5, 9, 3, 4, 8, 12, 5, 9, 3, 4, 11, 2, 6, 13]
    sure = 5.0 - np.log(np.exp(5.0) + (VOCAB - 1) * np.exp(-1.0))  # the toy model's one likely token
    for k in (0, 8):
        out, dec, _ = run(copy_rule(source), source, k=k)
        assert len(dec.logprobs) == len(out) + 1  # every token emitted, and the end token
        assert np.allclose(dec.logprobs, sure, atol=1e-5)


def test_next_logits_reads_one_forward_pass_and_reuses_the_cache() -> None:
    api = FakeApi(lambda seq: 6)
    dec = LookupDecoder(fake_llm(), draft_tokens=4, api=api)
    dec.block = 2
    list(dec.generate([1, 2, 3, 4], 2))
    assert dec.next_logits([1, 2, 3, 9, 9], [6, 7]) == [5.0, -1.0]
    assert api.decodes[-2:] == [2, 1] and api.kv == [1, 2, 3, 9, 9]  # from the block they part in


def test_what_ends_a_claim() -> None:
    assert all(map(ends_claim, [" [", "][", "]", ".", " .", "…", "?\n", "\n", "  ", ""]))
    assert not any(map(ends_claim, [" tự", "thân", ",", " (", "2", "AI", ";"]))


def test_copy_bias_tips_a_near_tie_towards_the_passage_words() -> None:
    marker = 30
    copy = CopyBias([1, 2, 3, 4, 8], bias=2.0, ends_claim=lambda tok: tok == marker)
    scores = np.full(VOCAB, -1.0, dtype=np.float32)
    scores[5], scores[4] = 3.0, 1.5  # the model would skip the passage's 4
    assert copy.pick(scores, [7, 1, 2, 3], 5) == 4
    assert copy.pick(scores, [7, 1, 2, 9], 5) == 5  # the last three tokens are not in the passages
    assert CopyBias([1, 2, 3, 4], 1.0, lambda tok: False).pick(scores, [1, 2, 3], 5) == 5  # not near
    scores[marker] = 3.5
    assert copy.pick(scores, [1, 2, 3], marker) == marker  # the claim ends there: no copy runs on
    after = CopyBias([2, 3, marker, 4, 8], 2.0, lambda tok: tok == marker)
    assert after.pick(scores, [2, 3, marker], 5) == 5  # right after a marker a new claim starts
    assert copy.pick(scores, [2, 3, 4], 8) == 8  # the model's choice is the copy already
    assert CopyBias([1, 2], 2.0, lambda tok: False).pick(scores, [1, 2], 5) == 5  # too short to copy


class NearTieApi(FakeApi):
    """A toy model that skips a word of what it copies: its second choice, one logit behind the
    first, is the word it left out."""

    def __init__(self, rule, second):
        super().__init__(rule)
        self.second = second

    def llama_decode(self, ctx, b):
        rc = super().llama_decode(ctx, b)
        for i, row in self.out.items():
            seq = self.kv[: len(self.kv) - b.n_tokens + i + 1]
            alt = self.second(seq)
            if alt is not None:
                row[alt] = 4.0
        return rc


def test_copy_bias_writes_the_word_the_model_skipped() -> None:
    source = [20, 21, 22, 23, 24, 25]  # the passage: 20 21 22 23 24 25
    written = {3: 20, 4: 21, 5: 22, 6: 24, 7: 25}  # after "1 2 3", the model writes the passage but 23

    def rule(seq):
        n = len(seq)
        if seq[-3:] == [21, 22, 23]:
            return 24  # back on the passage's track after the copied word
        if seq[-3:] == [22, 23, 24]:
            return 25
        return written.get(n - 6, EOS) if n >= 9 else EOS

    api = NearTieApi(rule, lambda seq: 23 if seq[-3:] == [20, 21, 22] else None)
    llm = SimpleNamespace(**vars(fake_llm()), detokenize=lambda toks, special=False: b" w")
    prompt = [*source, 1, 2, 3]
    plain = list(LookupDecoder(llm, draft_tokens=4, api=api).generate(prompt, 10, draft_from=0))
    assert plain == [20, 21, 22, 24, 25]
    dec = LookupDecoder(llm, draft_tokens=4, api=NearTieApi(rule, api.second))
    copied = list(dec.generate(prompt, 10, draft_from=0, copy_bias=2.0))
    assert copied == [20, 21, 22, 23, 24, 25]
    # the copied token's log-probability is the one the decoder chose it by: its logit plus the bias
    others = (VOCAB - 2) * np.exp(-1.0)
    assert np.isclose(dec.logprobs[3], 6.0 - np.log(np.exp(6.0) + np.exp(5.0) + others), atol=1e-5)
    dec = LookupDecoder(llm, draft_tokens=4, api=NearTieApi(rule, api.second))
    # from the question only (the passages are before ``draft_from``): nothing to copy
    assert list(dec.generate(prompt, 10, draft_from=len(source), copy_bias=2.0)) == plain


def test_the_transformers_path_gives_the_copied_token_the_same_bias() -> None:
    torch = pytest.importorskip("torch")
    from rag.generators.hf import _CopyProcessor

    proc = _CopyProcessor(CopyBias([1, 2, 3, 4], 2.0, lambda tok: tok == 9))
    scores = torch.full((1, 10), -1.0)
    scores[0, 5], scores[0, 4] = 3.0, 1.5
    out = proc(torch.tensor([[7, 1, 2, 3]]), scores)
    assert int(out[0].argmax()) == 4 and float(out[0, 4]) == 3.5  # its score is the biased one
    assert float(scores[0, 4]) == 1.5  # the model's scores are not changed in place
    assert proc(torch.tensor([[7, 1, 2, 9]]), scores) is scores  # nothing to copy
