"""Does decoding several sequences in one llama.cpp batch raise total tokens/s on this machine?

Loads the bundled GGUF with room for ``--max-seqs`` sequences, gives each sequence a different
prompt built from the corpus (about 600 tokens, like a real question with its passages), then
generates ``--tokens`` greedy tokens per sequence: one sequence at a time, and N sequences per
llama_decode call. Prompt processing is timed apart (it is compute-bound; batching cannot help it).

    nice -n 10 python scripts/batch_decode.py --seqs 1,2,4 --tokens 48 --repeat 2
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.config import PROJECT_ROOT, Settings  # noqa: E402
from rag.generators.model_files import ensure_model  # noqa: E402

logger = logging.getLogger("batch_decode")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", default="1,2,4", help="batch sizes to try")
    ap.add_argument("--tokens", type=int, default=48, help="tokens generated per sequence")
    ap.add_argument("--prompt-tokens", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=2, help="rounds over the batch sizes (noise check)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import llama_cpp as C

    sizes = [int(x) for x in args.seqs.split(",")]
    n_max = max(sizes)
    C.llama_backend_init()
    model = C.llama_model_load_from_file(
        str(ensure_model(Settings().cache_dir)).encode(), C.llama_model_default_params()
    )
    cp = C.llama_context_default_params()
    cp.n_ctx = n_max * (args.prompt_tokens + args.tokens + 64)
    cp.n_batch = cp.n_ubatch = 512
    cp.n_seq_max = n_max
    cp.n_threads = cp.n_threads_batch = args.threads
    ctx = C.llama_init_from_model(model, cp)
    vocab = C.llama_model_get_vocab(model)
    n_vocab = C.llama_vocab_n_tokens(vocab)
    mem = C.llama_get_memory(ctx)

    texts = [p.read_text("utf-8") for p in sorted((PROJECT_ROOT / "corpus").glob("*.txt"))]

    def tokenize(text: str) -> list[int]:
        raw = text.encode()
        buf = (C.llama_token * (len(raw) + 16))()
        n = C.llama_tokenize(vocab, raw, len(raw), buf, len(buf), True, False)
        return list(buf[:n])

    prompts = [tokenize(texts[i % len(texts)] + "\nTóm tắt:")[-args.prompt_tokens :] for i in range(n_max)]
    batch = C.llama_batch_init(max(512, n_max), 0, n_max)

    def decode(items: list[tuple[int, int, int, bool]]) -> None:  # (token, pos, seq, logits)
        for i, (tok, pos, seq, want) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = want
        batch.n_tokens = len(items)
        if C.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def argmax(i: int) -> int:
        ptr = C.llama_get_logits_ith(ctx, i)
        return int(
            np.argmax(np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), (n_vocab,)))
        )

    def prefill(seq: int) -> int:
        toks = prompts[seq]
        for s in range(0, len(toks), 512):
            part = toks[s : s + 512]
            decode([(t, s + j, seq, s + j == len(toks) - 1) for j, t in enumerate(part)])
        return argmax(len(toks) - 1 - (len(toks) - 1) // 512 * 512)

    def run(n: int) -> dict[str, float]:
        C.llama_memory_clear(mem, True)
        t0 = time.perf_counter()
        nxt = [prefill(s) for s in range(n)]
        t1 = time.perf_counter()
        pos = [len(prompts[s]) for s in range(n)]
        for _ in range(args.tokens):
            decode([(nxt[s], pos[s], s, True) for s in range(n)])
            nxt = [argmax(s) for s in range(n)]
            pos = [p + 1 for p in pos]
        t2 = time.perf_counter()
        return {
            "seqs": n,
            "prompt_tokens_per_s": round(sum(len(prompts[s]) for s in range(n)) / (t1 - t0), 1),
            "gen_tokens_per_s": round(n * args.tokens / (t2 - t1), 2),
            "step_ms": round((t2 - t1) / args.tokens * 1000, 1),
        }

    results = []
    for r in range(args.repeat):
        for n in sizes:
            res = {**run(n), "round": r + 1}
            logger.info(json.dumps(res))
            results.append(res)
    print(json.dumps({"threads": args.threads, "tokens": args.tokens, "results": results}, indent=1))
    C.llama_batch_free(batch)
    C.llama_free(ctx)
    C.llama_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
