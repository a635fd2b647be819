"""Two LLM runtimes on the same questions: the project's generator and xllamacpp's server engine.

(a) ``local``: rag/generators/local.py, llama-cpp-python's C API driven by the project's own greedy
    loop (rag/generators/decode.py: prompt-lookup drafts, log-probabilities, one answer at a time).
(b) ``xllamacpp``: llama.cpp's own server engine in this process (``xllamacpp.Server``): parallel
    slots with continuous batching, prompt cache; no speculative decoding, because llama.cpp's
    server then returns the log-probability of only the first token of each draft.
(c) ``xllamacpp+drafts``: the same with n-gram speculative decoding (the last 3 tokens looked up
    in the prompt and the answer, as the project's decoder does), single user only.

Both get the same prompts: the project's retrieval and rag/prompt.py build the messages, each
runtime applies the GGUF's chat template (the prompt token counts are compared). Greedy decoding,
the same repetition penalty and the same maximum of new tokens; both return per-token
log-probabilities (the confidence signals need them) and run the Yes/No support check.

Single user: the runtimes take turns per question (A,B,C then B,C,A, ...) so the load of a shared
machine falls on all alike; medians of time to first token, generation tokens/s and total time, and whether
the answers are identical to ``local``'s. Several users: N different questions at once through xllamacpp
(``n_parallel=N``) against the same N one after another through ``local`` (the server's queue with
one slot). Writes bench/runtimes.md (a section of BENCHMARKS.md) and bench/runtimes.json; a
"### Conclusion" written under the figures is kept when the file is rewritten.

    nice -n 10 python scripts/compare_runtimes.py --questions 8 --users 4 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime_runs import (  # noqa: E402  (this folder is on sys.path when the script runs)
    Prompt,
    Run,
    concurrent_xllamacpp,
    run_local,
    run_xllamacpp,
    start_xllamacpp,
    support_local,
    support_xllamacpp,
)

from rag.config import Settings  # noqa: E402
from rag.generators.local import LlamaCppGenerator  # noqa: E402
from rag.pipeline import RAG, off_topic  # noqa: E402
from rag.prompt import messages  # noqa: E402

logger = logging.getLogger("compare_runtimes")


# ------------------------------------------------------------------ the comparison
def build_prompts(rag: RAG, items: list[dict[str, Any]], n: int, skip: int = 0) -> list[Prompt]:
    """The first ``n`` answerable questions after ``skip`` that reach the generator."""
    out: list[Prompt] = []
    for item in items:
        if len(out) >= n:
            break
        if not item.get("answerable") or item.get("kind") == "follow-up":
            continue
        hits = rag.retrieve(item["question"], rag.settings.top_k)
        if off_topic(item["question"], hits):
            continue
        if skip > 0:
            skip -= 1
            continue
        passages = hits[: rag.settings.context_k]
        out.append(Prompt(item["question"], passages, messages(item["question"], passages, [])))
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def median(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return round(statistics.median(xs), 3) if xs else math.nan


RUNTIMES = ("local", "xllamacpp", "xllamacpp+drafts")


def single_user(
    gen: LlamaCppGenerator, servers: dict[str, Any], prompts: list[Prompt], max_tokens: int
) -> list[Run]:
    runs: list[Run] = []
    for i, p in enumerate(prompts):
        k = i % len(RUNTIMES)
        for name in RUNTIMES[k:] + RUNTIMES[:k]:  # each runtime goes first, second, third in turn
            if name == "local":
                r = run_local(gen, p)
                support_local(gen, p, r)
            else:
                r = run_xllamacpp(servers[name], p, max_tokens, name=name)
                if name == "xllamacpp":  # a one-token answer: drafts change nothing
                    support_xllamacpp(servers[name], p, r)
            logger.info(
                "%-16s q%d ttft %.2fs total %.2fs %d tok %.1f tok/s %d logprobs support %s | %s",
                name, i + 1, r.ttft_s, r.total_s, r.tokens, r.gen_tps, len(r.logprobs),
                "-" if r.support is None else f"{r.support:.3f} ({r.support_s:.2f}s)", r.text[:50],
            )  # fmt: skip
            runs.append(r)
    return runs


def several_users(
    gen: LlamaCppGenerator, srv: Any, prompts: list[Prompt], max_tokens: int, first: str
) -> dict[str, Any]:
    """The same questions asked at the same moment: one after another through ``local``, all at once
    through xllamacpp's slots. Times count from the moment they were asked."""
    out: dict[str, Any] = {}
    for name in (first, "xllamacpp" if first == "local" else "local"):
        t0 = time.perf_counter()
        if name == "local":
            runs = [run_local(gen, p, t0) for p in prompts]
        else:
            runs = concurrent_xllamacpp(srv, prompts, max_tokens, t0)
        wall = time.perf_counter() - t0
        tokens = sum(r.tokens for r in runs)
        out[name] = {
            "wall_s": round(wall, 2),
            "tokens": tokens,
            "aggregate_tps": round(tokens / wall, 2),
            "ttft_s": [round(r.ttft_s, 2) for r in runs],
            "done_s": [round(r.total_s, 2) for r in runs],
            "texts": [r.text for r in runs],
        }
        logger.info(
            "%d users, %s: %.1f s, %d tokens, %.2f tok/s", len(prompts), name, wall, tokens, tokens / wall
        )
    return out


def summarise(runs: list[Run]) -> dict[str, Any]:
    by = {name: [r for r in runs if r.runtime == name] for name in RUNTIMES}
    local = {r.question: r for r in by["local"]}
    s: dict[str, Any] = {"pairs": len(local)}
    for name, rs in by.items():
        s[name] = {
            "ttft_s": median([r.ttft_s for r in rs]),
            "gen_tps": median([r.gen_tps for r in rs]),
            "total_s": median([r.total_s for r in rs]),
            "tokens": median([float(r.tokens) for r in rs]),
            "support_s": median([r.support_s if r.support_s is not None else math.nan for r in rs]),
            "draft_accepted": round(sum(r.accepted for r in rs) / max(1, sum(r.drafted for r in rs)), 3),
            # every token of the text (llama.cpp gives none for the token that ends the answer)
            "logprobs_complete": sum(len(r.logprobs) >= r.tokens - 1 for r in rs),
            "identical_to_local": sum(r.text == local[r.question].text for r in rs),
            "same_prompt_tokens": sum(r.prompt_tokens == local[r.question].prompt_tokens for r in rs),
        }
        for key in ("ttft_s", "gen_tps", "total_s", "support_s"):
            base = s["local"][key] if name != "local" else s[name][key]
            ok = base and not math.isnan(base) and not math.isnan(s[name][key])
            s[name][f"ratio_{key}"] = round(s[name][key] / base, 3) if ok else None
    pairs = [(local[r.question], r) for r in by["xllamacpp"]]
    s["support_abs_diff_max"] = round(
        max((abs((a.support or 0) - (b.support or 0)) for a, b in pairs), default=0.0), 4
    )
    lp_diffs = [abs(x - y) for a, b in pairs if a.text == b.text for x, y in zip(a.logprobs, b.logprobs)]
    s["logprob_abs_diff_max"] = round(max(lp_diffs), 4) if lp_diffs else None
    return s


# ------------------------------------------------------------------ report
def markdown(res: dict[str, Any], conclusion: str) -> str:
    s = res["single"]
    n = s["pairs"]
    lines = [
        "## LLM runtimes (`python scripts/compare_runtimes.py`)",
        "",
        f"Command: `{res['command']}`  ",
        f"Date: {res['date']}; load average (1, 5, 15 min) before: {res['load_before']}, "
        f"after: {res['load_after']} (2 cores)  ",
        f"Versions: llama-cpp-python {res['versions']['llama_cpp']} (compiled here), xllamacpp "
        f"{res['versions']['xllamacpp']} (prebuilt wheel: `{res['xllamacpp_system']}`)",
        "",
        f"Single user: {n} questions of eval/qa.jsonl with the project's retrieval and prompt, each "
        "answered by the three runtimes in turn (the order rotates per question), greedy, at most "
        f"{res['max_new_tokens']} new tokens; medians. Tokens/s counts the tokens after the first; the "
        "support check is the Yes/No question asked after each answer.",
        "",
        "| measure | local (llama-cpp-python + decode.py) | xllamacpp | xllamacpp+drafts |",
        "|---|---|---|---|",
    ]

    def row(label: str, key: str, ratio: bool = True) -> str:
        cells = []
        for name in RUNTIMES:
            v = s[name][key]
            r = s[name].get(f"ratio_{key}") if ratio and name != "local" else None
            cells.append("-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v}")
            if r:
                cells[-1] += f" (× {r})"
        return f"| {label} | " + " | ".join(cells) + " |"

    lines += [
        row("time to first token (s)", "ttft_s"),
        row("generation tokens/s", "gen_tps"),
        row("total answer time (s)", "total_s"),
        row("support check (s)", "support_s"),
        row("tokens per answer", "tokens", False),
        row("drafted tokens kept", "draft_accepted", False),
        row(f"answers identical to local (of {n})", "identical_to_local", False),
        row(f"same prompt tokens as local (of {n})", "same_prompt_tokens", False),
        row(f"answers with every token's log-probability (of {n})", "logprobs_complete", False),
        f"| model load (s) | {res['load_s']['local']} | {res['load_s']['xllamacpp']} | "
        f"{res['load_s']['xllamacpp+drafts']} |",
        f"| process memory added (MB RSS) | {res['rss_mb']['local']} | {res['rss_mb']['xllamacpp']} | "
        f"{res['rss_mb']['xllamacpp+drafts']} |",
        "",
        f"Largest difference of a token's log-probability between local and xllamacpp (identical "
        f"answers): {s['logprob_abs_diff_max']}; of P(Yes) of the support check: {s['support_abs_diff_max']}.",
        "",
        "| q | local ttft / total (s), tok/s | xllamacpp | xllamacpp+drafts | identical |",
        "|---|---|---|---|---|",
    ]
    per = res["runs"]
    for i, q in enumerate(dict.fromkeys(r["question"] for r in per)):
        rs = {r["runtime"]: r for r in per if r["question"] == q}
        cells = [f"{rs[x]['ttft_s']:.1f} / {rs[x]['total_s']:.1f}, {rs[x]['gen_tps']}" for x in RUNTIMES]
        same = "".join("=" if rs[x]["text"] == rs["local"]["text"] else "≠" for x in RUNTIMES[1:])
        lines.append(f"| {i + 1} | " + " | ".join(cells) + f" | {same} |")
    users = res["several"]
    if users:
        k = res["users"]
        lines += [
            "",
            f"Several users: {k} different questions asked at the same moment, {len(users)} rounds (other "
            "questions each round, the runtime that goes first alternating). `local` answers them one "
            "after another (the server's queue with one slot); xllamacpp (no drafts, every token's "
            f"log-probability) decodes them together in `n_parallel={k}` slots.",
            "",
            "| round | runtime | wall time (s) | tokens | aggregate tokens/s | first token per user (s) | done per user (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for j, rnd in enumerate(users, 1):
            for name in ("local", "xllamacpp"):
                u = rnd[name]
                lines.append(
                    f"| {j} | {name} | {u['wall_s']} | {u['tokens']} | {u['aggregate_tps']} | "
                    f"{', '.join(map(str, u['ttft_s']))} | {', '.join(map(str, u['done_s']))} |"
                )
        agg = res["several_summary"]
        lines += [
            "",
            f"Median aggregate tokens/s: local {agg['local_tps']}, xllamacpp {agg['xllamacpp_tps']} "
            f"(× {agg['ratio_tps']}); median wall time: local {agg['local_wall_s']} s, xllamacpp "
            f"{agg['xllamacpp_wall_s']} s; answers identical to local: {agg['identical_answers']} of "
            f"{k * len(users)}.",
        ]
    text = "\n".join(lines) + "\n"
    if conclusion:
        text += "\n" + conclusion.strip() + "\n"
    return text


def kept_conclusion(path: Path) -> str:
    if not path.exists():
        return ""
    text = path.read_text("utf-8")
    i = text.find("### Conclusion")
    return text[i:] if i >= 0 else ""


def load_line() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return out.split("load average:")[-1].strip() if "load average" in out else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=8, help="single-user questions")
    ap.add_argument("--users", type=int, default=4, help="questions asked at the same moment")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the several-users test (0 = skip)")
    ap.add_argument("--qa", default=str(ROOT / "eval" / "qa.jsonl"))
    ap.add_argument("--port", type=int, default=55710, help="loopback port of xllamacpp's HTTP server")
    ap.add_argument("--out", default=str(ROOT / "bench"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import llama_cpp
    import xllamacpp

    load_before = load_line()
    settings = Settings(generator="local", fallback_extractive=False)
    rag = RAG(settings)
    items = [json.loads(line) for line in Path(args.qa).read_text("utf-8").splitlines() if line.strip()]
    single = build_prompts(rag, items, args.questions)
    groups = [
        build_prompts(rag, items, args.users, args.questions + k * args.users) for k in range(args.rounds)
    ]

    rss0 = rss_mb()
    t = time.perf_counter()
    gen = LlamaCppGenerator(settings)
    load_s = {"local": time.perf_counter() - t}
    rss = {"local": rss_mb() - rss0}
    servers: dict[str, Any] = {}
    for name, slots, draft, port in (
        ("xllamacpp", args.users, 0, args.port),
        ("xllamacpp+drafts", 1, settings.llm_draft_tokens, args.port + 1),
    ):
        before, t = rss_mb(), time.perf_counter()
        servers[name] = start_xllamacpp(gen.model_path, slots, settings, port, draft)
        load_s[name] = time.perf_counter() - t
        rss[name] = rss_mb() - before
    warm = build_prompts(rag, items, 1, args.questions + args.rounds * args.users)[0]
    run_local(gen, warm)  # every runtime reads the model's pages and caches the fixed instructions once
    for name, srv in servers.items():
        run_xllamacpp(srv, warm, 4, name=name)

    runs = single_user(gen, servers, single, settings.max_new_tokens)
    several = [
        several_users(
            gen, servers["xllamacpp"], g, settings.max_new_tokens, "local" if k % 2 == 0 else "xllamacpp"
        )
        for k, g in enumerate(groups)
        if len(g) == args.users
    ]
    res: dict[str, Any] = {
        "command": "nice -n 10 python scripts/compare_runtimes.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": load_before,
        "load_after": load_line(),
        "versions": {"llama_cpp": llama_cpp.__version__, "xllamacpp": xllamacpp.__version__},
        "xllamacpp_system": xllamacpp.get_system_info().strip(),
        "max_new_tokens": settings.max_new_tokens,
        "draft_tokens": settings.llm_draft_tokens,
        "users": args.users,
        "load_s": {k: round(v, 1) for k, v in load_s.items()},
        "rss_mb": {k: round(v) for k, v in rss.items()},
        "single": summarise(runs),
        "runs": [r.as_dict() for r in runs],
        "several": several,
    }
    if several:
        lt = [r["local"]["aggregate_tps"] for r in several]
        xt = [r["xllamacpp"]["aggregate_tps"] for r in several]
        res["several_summary"] = {
            "local_tps": median(lt),
            "xllamacpp_tps": median(xt),
            "ratio_tps": round(median(xt) / median(lt), 2),
            "local_wall_s": median([r["local"]["wall_s"] for r in several]),
            "xllamacpp_wall_s": median([r["xllamacpp"]["wall_s"] for r in several]),
            "identical_answers": sum(
                a == b for r in several for a, b in zip(r["local"]["texts"], r["xllamacpp"]["texts"])
            ),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runtimes.json").write_text(json.dumps(res, indent=1, ensure_ascii=False, default=float), "utf-8")
    md = out / "runtimes.md"
    md.write_text(markdown(res, kept_conclusion(md)), "utf-8")
    print(json.dumps({k: res[k] for k in ("single", "several_summary") if k in res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
