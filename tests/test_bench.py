import pytest

from rag.bench import llama_cpp_build, markdown


def test_markdown_holds_every_measure_and_explains_the_llm_figures() -> None:
    res = {
        "machine": "test machine",
        "date": "2026-01-01",
        "runs": 3,
        "index": {"chunks": 57, "build_chunks_per_s": 7.0},
        "queries": {"retrieval_ms_p50": 18.6, "query_runs": 216},
        "llm": {"tokens_per_s_p50": 24.0, "tokens_per_s_no_drafts_p50": 15.9, "draft_tokens_accepted": 0.6},
        "llama_cpp": "CPU : AVX2 = 1 | AVX512 = 1",
    }
    md = markdown(res, "rag bench")
    for key in ("chunks", "retrieval_ms_p50", "tokens_per_s_p50", "tokens_per_s_no_drafts_p50"):
        assert f"| {key} |" in md
    assert "prompt-lookup drafts" in md and "AVX512 = 1" in md and "over 216 queries" in md


def test_llama_cpp_build_names_its_cpu_features() -> None:
    pytest.importorskip("llama_cpp")
    assert "AVX" in llama_cpp_build()
