"""Load test for `rag serve`: many users at once on loopback, bounded in requests and time.

Starts `rag serve` on 127.0.0.1 (or uses --url), then runs concurrent clients: streaming chat through
the official `openai` package, `/v1/search`, and the chat page through `gradio_client`. Every request
must be answered or refused with 429 + Retry-After (then retried once after the delay); none may be
lost or mixed up: an answer's sources must be among the passages retrieved for its own question.
Prints JSON figures and, with --markdown, a section for BENCHMARKS.md.

    nice -n 10 python scripts/loadtest.py --generator local --clients 16 --questions 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Record:
    kind: str  # chat | search | gradio
    client: int
    question: str
    status: str = "ok"  # ok | 429 | mixed | error
    latency_s: float = 0.0
    ttft_s: float | None = None
    tokens: int = 0
    retried: bool = False
    detail: str = ""
    server_ms: float | None = None  # retrieval time measured inside the server (search)


@dataclass
class Run:
    url: str
    generator: str
    deadline: float
    expected: dict[str, set[str]]  # question -> chunk ids retrieved for it (top k)
    expected_docs: dict[str, set[str]]
    records: list[Record] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    chats_done: threading.Event = field(default_factory=threading.Event)

    def add(self, r: Record) -> None:
        with self.lock:
            self.records.append(r)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(round(q * (len(v) - 1))))], 3)


def chat_client(run: Run, i: int, questions: list[str]) -> None:
    from openai import OpenAI, RateLimitError

    client = OpenAI(base_url=f"{run.url}/v1", api_key="load", max_retries=0, timeout=900)
    for q in questions:
        if time.monotonic() > run.deadline:
            return
        rec = Record("chat", i, q)
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                text, last = "", None
                stream = client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": q}], stream=True, user=f"chat-{i}"
                )
                for chunk in stream:
                    piece = chunk.choices[0].delta.content or ""
                    if piece and rec.ttft_s is None:
                        rec.ttft_s = time.perf_counter() - t0
                    rec.tokens += bool(piece)
                    text += piece
                    last = chunk
                rec.latency_s = time.perf_counter() - t0
                extra = (last.model_extra or {}) if last else {}
                cited = {c["chunk_id"] for c in extra.get("citations") or []}
                related = {p["chunk_id"] for p in extra.get("related") or []}
                if not (cited | related) <= run.expected[q]:
                    rec.status, rec.detail = (
                        "mixed",
                        f"sources {sorted(cited | related)} not retrieved for it",
                    )
                break
            except RateLimitError as exc:
                wait = int(exc.response.headers.get("retry-after", "0"))
                rec.status, rec.detail = "429", f"Retry-After {wait}"
                if not wait:
                    rec.status = "error"
                if attempt == 2 or time.monotonic() + wait > run.deadline:
                    break
                rec.retried = True
                time.sleep(min(wait, 60))
                rec.status = "ok"
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                rec.status, rec.detail = "error", repr(exc)[:200]
                break
        run.add(rec)


def gradio_client(run: Run, i: int, questions: list[str]) -> None:
    from gradio_client import Client

    client = Client(run.url + "/", verbose=False)
    for q in questions:
        if time.monotonic() > run.deadline:
            return
        rec = Record("gradio", i, q)
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                chat, sources, _, _ = client.predict(q, [], run.generator, 5, True, api_name="/ask")
                rec.latency_s = time.perf_counter() - t0
                answer = chat[-1]["content"]
                answer = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
                m = re.search(r"thử lại sau (\d+) giây", answer)
                if m:  # the chat's way of saying 429
                    rec.status, rec.detail = "429", f"Retry-After {m.group(1)}"
                    if attempt == 1 and time.monotonic() + int(m.group(1)) < run.deadline:
                        rec.retried = True
                        time.sleep(min(int(m.group(1)), 60))
                        rec.status = "ok"
                        continue
                    break
                asked = chat[-2]["content"]
                asked = asked if isinstance(asked, str) else json.dumps(asked, ensure_ascii=False)
                docs = set(re.findall(r'<div class="src-meta">([^ <]+)', sources))
                if q not in asked.replace("&quot;", '"') or not docs <= run.expected_docs[q]:
                    rec.status, rec.detail = "mixed", f"{asked[:60]!r} / {sorted(docs)}"
                break
            except Exception as exc:  # noqa: BLE001
                rec.status, rec.detail = "error", repr(exc)[:200]
                break
        run.add(rec)


def search_client(run: Run, i: int, questions: list[str], pause: float) -> None:
    with httpx.Client(base_url=run.url, timeout=60) as http:
        n = 0
        while not run.chats_done.is_set() and time.monotonic() < run.deadline:
            q = questions[n % len(questions)]
            n += 1
            rec = Record("search", i, q)
            t0 = time.perf_counter()
            try:
                r = http.post("/v1/search", json={"query": q, "k": 5})
                rec.latency_s = time.perf_counter() - t0
                got = [h["chunk_id"] for h in r.json()["data"]] if r.status_code == 200 else []
                rec.server_ms = r.json().get("took_ms") if r.status_code == 200 else None
                if r.status_code != 200:
                    rec.status, rec.detail = "error", f"{r.status_code} {r.text[:100]}"
                elif set(got) != run.expected[q]:
                    rec.status, rec.detail = "mixed", "different passages than when idle"
            except Exception as exc:  # noqa: BLE001
                rec.status, rec.detail = "error", repr(exc)[:200]
            run.add(rec)
            time.sleep(pause)


def start_server(port: int, generator: str, queue_size: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAG_GENERATOR": generator, "RAG_QUEUE_SIZE": str(queue_size)}
    cmd = [sys.executable, "-m", "rag", "serve", "--port", str(port)]
    log = open(ROOT / "artifacts" / "loadtest-server.log", "wb")  # noqa: SIM115 - lives with the server
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def sample_rss(pid: int, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    import psutil

    proc = psutil.Process(pid)
    t0 = time.monotonic()
    while not stop.is_set():
        out.append((time.monotonic() - t0, proc.memory_info().rss / 2**20))
        stop.wait(1.0)


HEADING = "## Many users (`rag serve` load test, generator `{}`)"


def section_markdown(figures: dict[str, Any], command: str, args: argparse.Namespace) -> str:
    lines = [
        HEADING.format(figures["generator"]),
        "",
        f"Command: `nice -n 10 {command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}",
    ]
    if args.note:
        lines += ["", args.note]
    lines += ["", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in figures.items()]
    return "\n".join(lines) + "\n"


def write_section(section: str, generator: str) -> None:
    (ROOT / "bench").mkdir(exist_ok=True)
    (ROOT / "bench" / f"loadtest-{generator}.md").write_text(section, "utf-8")
    bench = ROOT / "BENCHMARKS.md"
    text = bench.read_text("utf-8") if bench.exists() else "# Benchmarks\n"
    heading = HEADING.format(generator)
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    bench.write_text(text, "utf-8")


def main() -> int:  # noqa: C901 - one linear script
    ap = argparse.ArgumentParser(description="load test for rag serve (loopback only)")
    ap.add_argument("--url", help="an already running server (default: start one)")
    ap.add_argument("--port", type=int, default=8790)
    ap.add_argument("--generator", default="local")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--questions", type=int, default=3, help="questions per chat client")
    ap.add_argument("--gradio", type=int, help="of the clients, chat-page users (default: a quarter)")
    ap.add_argument("--search", type=int, help="of the clients, search callers (default: a quarter)")
    ap.add_argument("--queue-size", type=int, default=8, help="RAG_QUEUE_SIZE of the started server")
    ap.add_argument("--max-seconds", type=float, default=900, help="no new request after this")
    ap.add_argument("--search-pause", type=float, default=0.5)
    ap.add_argument("--markdown", action="store_true", help="also print a BENCHMARKS.md section")
    ap.add_argument("--write", action="store_true", help="write it to bench/loadtest-*.md and BENCHMARKS.md")
    ap.add_argument("--note", default="", help="a line about the conditions, shown above the figures")
    args = ap.parse_args()
    (ROOT / "artifacts").mkdir(exist_ok=True)

    server = None
    url = args.url
    if url is None:
        if not 8700 <= args.port < 8800:
            raise SystemExit("use a port in 8700-8799")
        url = f"http://127.0.0.1:{args.port}"
        server = start_server(args.port, args.generator, args.queue_size)
    assert url.startswith(("http://127.0.0.1", "http://localhost")), "loopback only"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server is not None and server.poll() is not None:
                raise SystemExit("the server exited; see artifacts/loadtest-server.log")
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start in 300 s")
            time.sleep(1)
        items = [
            json.loads(x) for x in (ROOT / "eval" / "qa.jsonl").read_text("utf-8").splitlines() if x.strip()
        ]
        questions = [x["question"] for x in items if x.get("answerable") and not x.get("history")]

        n_search = args.clients // 4 if args.search is None else args.search
        n_gradio = args.clients // 4 if args.gradio is None else args.gradio
        n_chat = args.clients - n_search - n_gradio
        per = args.questions
        need = (n_chat + n_gradio) * per
        if need > len(questions):
            raise SystemExit(f"{need} questions needed, {len(questions)} available")

        idle: list[float] = []
        expected: dict[str, set[str]] = {}
        expected_docs: dict[str, set[str]] = {}
        with httpx.Client(base_url=url, timeout=60) as http:
            for q in questions[:need]:  # what each question retrieves, measured idle
                t0 = time.perf_counter()
                data = http.post("/v1/search", json={"query": q, "k": 5}).json()["data"]
                idle.append(time.perf_counter() - t0)
                expected[q] = {h["chunk_id"] for h in data}
                expected_docs[q] = {h["document"] for h in data}
            gen = http.get("/healthz").json()["generator"]
            # one answer before the clock starts: the model is loaded, as on a server in use
            http.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": questions[-1]}]},
                timeout=900,
            )
            before = http.get("/healthz").json()

        run = Run(url, gen, time.monotonic() + args.max_seconds, expected, expected_docs)
        rss: list[tuple[float, float]] = []
        stop = threading.Event()
        sampler = None
        if server is not None:
            sampler = threading.Thread(target=sample_rss, args=(server.pid, stop, rss), daemon=True)
            sampler.start()
        threads = []
        qi = 0
        for i in range(n_chat):
            threads.append(threading.Thread(target=chat_client, args=(run, i, questions[qi : qi + per])))
            qi += per
        for i in range(n_gradio):
            threads.append(threading.Thread(target=gradio_client, args=(run, i, questions[qi : qi + per])))
            qi += per
        searchers = [
            threading.Thread(
                target=search_client, args=(run, i, questions[:need][i::n_search], args.search_pause)
            )
            for i in range(n_search)
        ]
        t_start = time.perf_counter()
        for t in threads + searchers:
            t.start()
        for t in threads:
            t.join()
        run.chats_done.set()
        wall = time.perf_counter() - t_start
        for t in searchers:
            t.join()
        stop.set()
        after = httpx.get(f"{url}/healthz", timeout=10).json()
    finally:
        if server is not None:
            server.terminate()  # the server this script started, by its PID
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()

    recs = run.records
    answers = [r for r in recs if r.kind in ("chat", "gradio")]
    ok = [r for r in answers if r.status == "ok"]
    searches = [r for r in recs if r.kind == "search" and r.status == "ok"]
    expected_answers = (n_chat + n_gradio) * per
    figures: dict[str, Any] = {
        "generator": gen,
        "clients": {"openai_stream": n_chat, "gradio": n_gradio, "search": n_search},
        "answers_expected": expected_answers,
        "answers_ok": len(ok),
        "answers_429_final": sum(r.status == "429" for r in answers),
        "answers_retried_after_429": sum(r.retried for r in answers),
        "answers_mixed_up": sum(r.status == "mixed" for r in answers),
        "answers_error": sum(r.status == "error" for r in answers),
        "answers_missing": expected_answers - len(answers),
        "searches": len(searches),
        "searches_bad": sum(r.kind == "search" and r.status != "ok" for r in recs),
        "wall_s": round(wall, 1),
        "answer_latency_s_p50": pct([r.latency_s for r in ok], 0.5),
        "answer_latency_s_p95": pct([r.latency_s for r in ok], 0.95),
        "ttft_s_p50": pct([r.ttft_s for r in ok if r.ttft_s is not None], 0.5),
        "ttft_s_p95": pct([r.ttft_s for r in ok if r.ttft_s is not None], 0.95),
        "server_tokens": after["tokens_generated"] - before["tokens_generated"],
        "aggregate_tokens_per_s": round((after["tokens_generated"] - before["tokens_generated"]) / wall, 2),
        "server_refused_429": after["answers_refused"] - before["answers_refused"],
        "search_ms_p50_idle": round(statistics.median(idle) * 1000, 1),
        "search_ms_p50_under_load": round((pct([r.latency_s for r in searches], 0.5) or 0) * 1000, 1),
        "search_ms_p95_under_load": round((pct([r.latency_s for r in searches], 0.95) or 0) * 1000, 1),
        "search_server_ms_p50_under_load": pct(
            [r.server_ms for r in searches if r.server_ms is not None], 0.5
        ),
        "search_server_ms_p95_under_load": pct(
            [r.server_ms for r in searches if r.server_ms is not None], 0.95
        ),
    }
    if rss:
        figures["rss_mb_start"] = round(rss[0][1])
        figures["rss_mb_max"] = round(max(v for _, v in rss))
        figures["rss_mb_end"] = round(rss[-1][1])
    problems = [r.__dict__ for r in recs if r.status in ("mixed", "error")][:10]
    print(json.dumps({"figures": figures, "problems": problems}, ensure_ascii=False, indent=1))
    if args.markdown or args.write:
        section = section_markdown(figures, " ".join(["python scripts/loadtest.py", *sys.argv[1:]]), args)
        print(section)
        if args.write:
            write_section(section, figures["generator"])
    return 0 if not problems and figures["answers_missing"] == 0 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
