import json
from pathlib import Path

import pytest

from rag.errors import QAFileError
from rag.evaluate import (
    QAItem,
    QAResult,
    answer_metrics,
    confidence_sweep,
    contains_quote,
    first_hit_rank,
    keywords_ok,
    load_qa,
    percentile,
    retrieval_metrics,
    score_answer,
    without_diacritics,
)
from rag.ingest import read_folder
from rag.types import Answer, Chunk, Citation, Hit

from .conftest import CORPUS

QA = Path(__file__).resolve().parents[1] / "eval" / "qa.jsonl"


def test_keywords_alternatives_case_nfc_whitespace() -> None:
    import unicodedata

    assert keywords_ok("Ngày 27/9/2019, Bộ  Chính trị [1]", ["27/9/2019", "Bộ Chính trị|Bộ chính trị"])
    assert keywords_ok(unicodedata.normalize("NFD", "BỘ CHÍNH TRỊ"), ["bộ chính trị"])
    assert not keywords_ok("Ngày 27/9/2019", ["27/9/2019", "Bộ Chính trị"])
    assert not keywords_ok("Có 6 giải pháp [1]", ["1"])  # citation markers are not content
    # whole syllables only: a question echoed back ("bao nhiêu") does not hold the answer "ba"
    assert not keywords_ok("Ấn bản thứ bao nhiêu vẫn chưa được thay thế?", ["ba|3"])
    assert keywords_ok("Ấn bản thứ ba [1].", ["ba|3"])
    assert not keywords_ok("Có 150 điểm", ["15"]) and keywords_ok("tăng 5%", ["5%"])


def test_contains_quote_folds_whitespace() -> None:
    assert contains_quote("hơn  13.000\nđiểm giao dịch", "hơn 13.000 điểm giao dịch")
    assert not contains_quote("hơn 13.000 điểm", "hơn 13.000 điểm giao dịch")


def test_retrieval_metrics_by_hand() -> None:
    m = retrieval_metrics([1, 3, None, 6])
    assert m["recall@1"] == 0.25 and m["recall@3"] == 0.5 and m["recall@5"] == 0.5 and m["recall@10"] == 0.75
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 6) / 4)


def _hit(text: str) -> Hit:
    return Hit(Chunk("d#0", "d", "t", text, [(0, len(text))], 0), 1.0)


def test_first_hit_rank() -> None:
    hits = [_hit("không liên quan"), _hit("có hơn 13.000 điểm giao dịch"), _hit("13.000 điểm giao dịch nữa")]
    assert first_hit_rank(hits, "13.000 điểm giao dịch") == 2
    assert first_hit_rank(hits, "không có") is None


def _answer(text: str, quote_passage: str | None, abstained: bool = False) -> Answer:
    cites = [Citation(1, "d", "t", quote_passage, quote_passage, "d#0", 1.0)] if quote_passage else []
    return Answer("q", text, cites, abstained)


def test_answer_metrics_by_hand() -> None:
    items = [
        QAItem("a", "q", True, "13.000 điểm", ["13.000"]),
        QAItem("b", "q", True, "6 giải pháp", ["6"]),
        QAItem("c", "q", True, "169 điểm cầu", ["169"]),
        QAItem("u", "q", False),
        QAItem("v", "q", False),
    ]
    answers = [
        _answer("Có 13.000 điểm [1]", "hơn 13.000 điểm giao dịch"),  # correct, cited
        _answer("Có 6 giải pháp [1]", "một đoạn khác"),  # correct, wrong citation
        _answer("Không tìm thấy", None, abstained=True),  # false abstention
        _answer("Không tìm thấy", None, abstained=True),  # right abstention
        _answer("Paris [1]", "x"),  # answered an unanswerable question
    ]
    results = [score_answer(i, a) for i, a in zip(items, answers)]
    m = answer_metrics(results)
    assert m["correctness"] == pytest.approx(2 / 3)
    assert m["citation_precision"] == pytest.approx(1 / 3)  # an abstention counts as no right citation
    assert m["citation_precision_answered"] == pytest.approx(1 / 2)  # here it does not
    assert m["false_abstention"] == pytest.approx(1 / 3)
    assert m["abstention_unanswerable"] == 0.5
    assert m["wrong_but_cited"] == pytest.approx(1 / 5)  # only "Paris [1]": answered, cited and wrong
    assert "f1" not in m  # no reference answers, no F1
    assert "english_in_english" not in m  # no English question
    assert [r.verdict for r in results] == [
        "correct, cited",
        "correct, bad citation",
        "WRONG (abstained)",
        "ok (abstained)",
        "WRONG (answered)",
    ]


def test_english_questions_are_scored_on_the_language_of_their_reply() -> None:
    items = [
        QAItem(str(i), "Which body issued Resolution 52-NQ/TW?", True, "", ["Bộ Chính trị|Politburo"])
        for i in range(3)
    ]
    answers = [
        _answer("The Politburo [1]", "x"),
        _answer("Bộ Chính trị [1]", "x"),  # a name: the same in either language
        _answer("Bộ Chính trị ban hành nghị quyết [1]", "x"),  # Vietnamese words
    ]
    m = answer_metrics([score_answer(i, a) for i, a in zip(items, answers)])
    assert m["english_in_english"] == pytest.approx(2 / 3) and m["correctness"] == 1.0


def test_exact_match_and_f1_on_syllables() -> None:
    from rag.evaluate import exact_match, syllable_f1

    assert exact_match("Trung  Quốc [1].", ["trung quốc"]) == 1.0
    assert exact_match("Trung Quốc đại lục", ["Trung Quốc"]) == 0.0
    # 2 shared syllables: precision 2/4, recall 2/2
    assert syllable_f1("nước Trung Quốc cổ", ["Trung Quốc"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert syllable_f1("Nhật Bản", ["Trung Quốc", "Nhật"]) == pytest.approx(
        2 * 0.5 * 1 / 1.5
    )  # best reference
    assert syllable_f1("Pháp", ["Trung Quốc"]) == 0.0


def test_f1_is_scored_on_the_short_answer() -> None:
    item = QAItem("a", "Ấn bản thứ bao nhiêu?", True, "", ["ba"], answers=["ba"])
    a = _answer("Ấn bản thứ ba vẫn chưa được thay thế [1]", "ấn bản thứ ba")
    a.short = "ba"
    r = score_answer(item, a)
    assert r.exact == 1.0 and r.f1 == 1.0
    a.abstained = True
    r = score_answer(item, a)
    assert r.exact == 0.0 and r.f1 == 0.0
    # without a short form the whole answer is scored: 1 of its 4 syllables is the reference
    m = answer_metrics([score_answer(item, _answer("Ấn bản thứ ba [1]", "x"))])
    assert m["exact_match"] == 0.0 and m["f1"] == pytest.approx(2 * (1 / 4) * 1 / (1 / 4 + 1))


def test_percentile() -> None:
    assert percentile([5, 1, 3], 50) == 3 and percentile([1, 2, 3, 4, 100], 95) == 100


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "question": "x"}\n{not json}\n', ":2: not valid JSON"),
        ('{"id": "a"}\n', ':1: missing "question"'),
        ('{"id": "a", "question": "x"}\n\n["list"]\n', ":3: expected a JSON object"),
        ('{"question": "x", "keywords": "a|b"}\n', ':1: "keywords" must be a list'),
        ('{"question": "x", "history": "earlier"}\n', ':1: "history" must be a list'),
        ("\n\n", "no questions"),
    ],
)
def test_bad_question_files_fail_with_line_number(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "qa.jsonl"
    f.write_text(content, "utf-8")
    with pytest.raises(QAFileError, match=message):
        load_qa(f)


def test_project_question_set() -> None:
    items = load_qa(QA)
    answerable = [i for i in items if i.answerable]
    kinds = {i.kind for i in answerable}
    assert len(answerable) >= 50 and len(items) - len(answerable) >= 10
    assert {
        "number",
        "date",
        "name",
        "definition",
        "list",
        "paraphrase",
        "abbreviation",
        "no-diacritics",
        "lowercase",
        "english",
        "multi-part",
        "follow-up",
    } <= kinds
    assert {i.kind for i in items if not i.answerable} == {"off-topic", "near-topic", "follow-up"}
    assert all(i.history for i in items if i.kind == "follow-up")
    assert len({i.id for i in items}) == len(items)


def test_every_gold_quote_occurs_in_the_corpus() -> None:
    docs, _ = read_folder(CORPUS)
    texts = [d.text for d in docs]
    for it in load_qa(QA):
        if it.gold_quote:
            assert any(contains_quote(t, it.gold_quote) for t in texts), it.id
        if it.answerable:
            assert it.keywords and all(k.strip() for k in it.keywords), it.id


def test_english_question_set_pairs_with_the_vietnamese_one() -> None:
    """eval/qa_en.jsonl asks questions of eval/qa.jsonl in English, to compare the two languages on
    the same facts: each names its Vietnamese original and keeps its gold quote and answerability."""
    from rag.text import looks_english

    vietnamese = {json.loads(line)["id"]: json.loads(line) for line in QA.read_text("utf-8").splitlines()}
    rows = [json.loads(line) for line in QA.with_name("qa_en.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) >= 15 and any(not r["answerable"] for r in rows)
    for r in rows:
        original = vietnamese[r["vietnamese"]]
        assert r["answerable"] == original["answerable"] and r.get("gold_quote") == original.get("gold_quote")
        assert looks_english(r["question"]), r["id"]
    assert len(load_qa(QA.with_name("qa_en.jsonl"))) == len(rows)


def test_rag_eval_cli_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    qa = tmp_path / "qa.jsonl"
    rows = [json.loads(line) for line in QA.read_text("utf-8").splitlines()]
    qa.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:6] + rows[-2:]), "utf-8")
    assert main(["eval", "--qa", str(qa), "--generator", "extractive", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| hybrid |" in out and "| correctness |" in out and "| q01 |" in out
    report = json.loads((tmp_path / "out" / "eval-extractive.json").read_text("utf-8"))
    assert report["answers"]["answerable"] == 6 and report["answers"]["unanswerable"] == 2
    assert set(report["retrieval"]) == {"dense", "bm25", "hybrid"}
    assert (tmp_path / "out" / "eval-extractive.md").read_text("utf-8").startswith("# Evaluation")


def test_rag_eval_cli_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "ok"}\n{"id": 2}\n', "utf-8")
    assert main(["eval", "--qa", str(qa), "--generator", "extractive"]) == 1
    assert ':2: missing "question"' in capsys.readouterr().err


def test_run_eval_asks_follow_ups_with_their_conversation(real_rag, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rag.report import run_eval, write_reports

    items = [
        QAItem(
            "f1",
            "Còn năm 2030 thì sao?",
            gold_quote="đến năm 2030 thuộc nhóm 15 tỉnh/thành phố dẫn đầu cả nước về chuyển đổi số",
            keywords=["15"],
            history=["Đến năm 2025, Hải Dương muốn thuộc nhóm bao nhiêu tỉnh dẫn đầu về chuyển đổi số?"],
        ),
        QAItem("f2", "Thủ đô của nước Pháp là gì?", answerable=False),
    ]
    report = run_eval(real_rag, items, generator="extractive")
    assert report["retrieval"]["hybrid"]["recall@5"] == 1.0  # retrieved as the whole question
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["f1"]["correct"] and by_id["f1"]["citation_ok"] and by_id["f2"]["abstained"]
    js, md = write_reports(report, tmp_path)
    assert json.loads(js.read_text("utf-8"))["answers"]["correctness"] == 1.0
    assert "f1" in md.read_text("utf-8")


def _result(answerable: bool, **kw: object) -> QAResult:
    base: dict = dict(id="x", question="q", answerable=answerable, answer="a", abstained=False, correct=None,
                      citation_ok=None, citations=[], retrieval_ms=1.0, first_token_ms=1.0, total_ms=1.0,
                      tokens_per_s=None)  # fmt: skip
    return QAResult(**{**base, **kw})  # type: ignore[arg-type]


def test_confidence_sweep_replays_one_run_at_other_cuts() -> None:
    cite = [{"n": 1}]
    results = [
        _result(True, correct=True, citations=cite, confidence=0.9),  # right, sure
        _result(True, correct=True, citations=cite, confidence=0.55),  # right, barely kept at 0.5
        _result(True, abstained=True, answer="…", withheld="w", withheld_correct=True, confidence=0.35),
        _result(True, abstained=True, answer="…"),  # said "not found" itself: never rated
        _result(False, correct=None, citations=cite, confidence=0.6),  # answered the unanswerable
        _result(False, abstained=True, withheld="w", withheld_correct=False, confidence=0.2),
    ]
    by_cut = {row["min_confidence"]: row for row in confidence_sweep(results, (0.0, 0.5, 0.7))}
    assert by_cut[0.5]["correctness"] == 0.5 and by_cut[0.5]["false_abstention"] == 0.5
    assert by_cut[0.5]["wrong_but_cited"] == 1 / 6 and by_cut[0.5]["abstention_unanswerable"] == 0.5
    # at 0: the held-back answers are shown again; at 0.7 only the sure one stays
    assert by_cut[0.0]["correctness"] == 0.75 and by_cut[0.0]["wrong_but_cited"] == 2 / 6
    assert by_cut[0.7]["correctness"] == 0.25 and by_cut[0.7]["abstention_unanswerable"] == 1.0
    assert by_cut[0.7]["wrong_but_cited"] == 0.0


def test_an_answer_its_second_reading_contradicted_is_not_shown_at_any_cut() -> None:
    results = [
        _result(
            True, abstained=True, withheld="w", withheld_correct=True, confidence=0.6, signals={"reread": 0.0}
        ),
        _result(True, correct=True, citations=[{"n": 1}], confidence=0.6, signals={"reread": 1.0}),
    ]
    for row in confidence_sweep(results, (0.0, 0.5)):
        assert row["correctness"] == 0.5 and row["false_abstention"] == 0.5


def test_questions_asked_without_diacritics_keep_their_answers() -> None:
    item = QAItem(
        "q", "Còn Hải Dương thì sao?", keywords=["13.000"], history=["Bưu điện Việt Nam có bao nhiêu điểm?"]
    )
    bare = without_diacritics(item)
    assert bare.question == "Con Hai Duong thi sao?"
    assert bare.history == ["Buu dien Viet Nam co bao nhieu diem?"]
    assert bare.keywords == ["13.000"] and item.question == "Còn Hải Dương thì sao?"
