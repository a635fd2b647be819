"""The calibrated confidence: fitting, storing, and the pipeline holding back unlikely answers."""

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import confidence
from rag.confidence import Calibration, Signals, fit_logistic, load_calibration
from rag.config import Settings
from rag.errors import ModelLoadError
from rag.grounding import read_again
from rag.pipeline import NOT_FOUND, RAG
from rag.types import Hit

from .conftest import INDEX


def test_fit_logistic_learns_which_signal_separates() -> None:
    # right answers have high support; the other signal is noise that must get little weight
    rows, labels = [], []
    for i in range(200):
        right = i % 2 == 0
        s = Signals(support=0.9 if right else 0.2, top_cosine=0.8 + 0.01 * (i % 7), coverage=0.5)
        rows.append(s.features())
        labels.append(int(right))
    cal = fit_logistic(rows, labels)
    assert cal.weights["support_logit"] > 0.5
    assert abs(cal.weights["top_cosine"]) < 0.5 * cal.weights["support_logit"]
    assert cal.probability(Signals(support=0.9, top_cosine=0.83, coverage=0.5)) > 0.9
    assert cal.probability(Signals(support=0.2, top_cosine=0.83, coverage=0.5)) < 0.1


def test_calibration_round_trip(tmp_path: Path) -> None:
    cal = Calibration({"support_logit": 1.5, "coverage": 2.0}, -1.0, "test", {"coverage": 0.5})
    path = tmp_path / "cal.json"
    cal.save(path)
    again = load_calibration(path)
    assert again == cal
    s = Signals(support=0.7, coverage=0.1)
    assert again is not None and again.probability(s) == pytest.approx(cal.probability(s))
    # an English question's word-pair coverage says nothing: it counts as the fitted mean, not as 0
    english = Signals(support=0.7, coverage=0.0, foreign=True)
    assert again.score(english.features()) == pytest.approx(-1.0 + 1.5 * math.log(0.7 / 0.3) + 2.0 * 0.5)
    assert load_calibration(tmp_path / "none.json") is None


class JudgedGenerator:
    """A scripted reply, plus the two model signals the local generator gives."""

    name = "judged"

    def __init__(self, reply: str, support: float) -> None:
        self.reply, self.support = reply, support
        self.judged: list[tuple[str, str, list[str]]] = []

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        yield self.reply

    def last_logprobs(self) -> list[float]:
        return [-0.1, -0.5, -0.2]

    def support_probability(self, question: str, answer: str, evidence: list[str]) -> float:
        self.judged.append((question, answer, evidence))
        return self.support


REPLY = "Trả lời: Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1].\nNguồn: [1]"
QUESTION = "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"


@pytest.fixture
def by_support(monkeypatch: pytest.MonkeyPatch) -> None:
    """A calibration that follows the model's judgement alone (the real one is fitted on data)."""
    monkeypatch.setattr(
        "rag.pipeline.calibration_for", lambda path: Calibration({"support_logit": 1.0}, 0.0, "support only")
    )


@pytest.mark.usefixtures("by_support")
def test_unsupported_answer_is_held_back() -> None:
    gen = JudgedGenerator(REPLY, support=0.1)
    a = RAG(Settings(index_dir=str(INDEX), generator="judged"), generator=gen).ask(QUESTION)
    assert a.abstained and a.text == NOT_FOUND and a.citations == [] and a.short == ""
    assert "13.000" in a.withheld and a.confidence == pytest.approx(0.1)
    assert a.related  # the closest passages are still offered
    question, claim, evidence = gen.judged[0]
    assert question == QUESTION and "13.000" in claim and "[1]" not in claim
    assert any("13.000" in e for e in evidence)  # judged on the cited sentence
    assert a.signals["mean_logprob"] == pytest.approx(-0.8 / 3) and a.signals["min_logprob"] == -0.5


@pytest.mark.usefixtures("by_support")
def test_supported_answer_is_kept_with_its_short_form() -> None:
    gen = JudgedGenerator(REPLY, support=0.95)
    a = RAG(Settings(index_dir=str(INDEX), generator="judged"), generator=gen).ask(QUESTION)
    assert not a.abstained and a.citations and a.confidence == pytest.approx(0.95)
    assert a.short == "hơn 13.000" and a.withheld == ""


@pytest.mark.usefixtures("by_support")
def test_min_confidence_zero_turns_the_check_off() -> None:
    gen = JudgedGenerator(REPLY, support=0.1)
    a = RAG(Settings(index_dir=str(INDEX), generator="judged", min_confidence=0), generator=gen).ask(QUESTION)
    assert not a.abstained and a.confidence is None and a.signals["support"] == 0.1


def test_a_calibration_fitted_for_another_model_is_used_when_named(tmp_path: Path) -> None:
    strict = tmp_path / "strict.json"  # a model whose answers are right only when it is very sure
    Calibration({"support_logit": 1.0}, -3.0, "another model").save(strict)
    settings = Settings(index_dir=str(INDEX), generator="judged", calibration=str(strict))
    a = RAG(settings, generator=JudgedGenerator(REPLY, support=0.9)).ask(QUESTION)
    assert a.abstained and a.confidence == pytest.approx(1 / (1 + math.exp(3.0 - math.log(9))))
    with pytest.raises(ModelLoadError, match="scripts/calibrate.py --out"):
        RAG(Settings(index_dir=str(INDEX), calibration=str(tmp_path / "none.json")))
    (tmp_path / "bad.json").write_text('{"weights": 1}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not a calibration"):
        RAG(Settings(index_dir=str(INDEX), calibration=str(tmp_path / "bad.json")))


class RereadingGenerator(JudgedGenerator):
    """Also reads the cited sentences a second time, as the local generator does."""

    def __init__(self, reply: str, support: float, second: str) -> None:
        super().__init__(reply, support)
        self.second = second
        self.reread_with: list[tuple[str, list[str]]] = []

    def reread(self, question: str, evidence: list[str]) -> str:
        self.reread_with.append((question, evidence))
        return self.second


@pytest.mark.usefixtures("by_support")
def test_a_borderline_answer_its_cited_sentence_contradicts_is_held_back() -> None:
    gen = RereadingGenerator(REPLY, support=0.6, second="Trả lời: 2.000 điểm [1]")
    a = RAG(Settings(index_dir=str(INDEX), generator="judged"), generator=gen).ask(QUESTION)
    assert a.abstained and a.text == NOT_FOUND and not a.citations and "13.000" in a.withheld
    assert a.signals["reread"] == 0.0 and a.confidence == pytest.approx(0.6)
    question, evidence = gen.reread_with[0]
    assert question == QUESTION and len(evidence) == 1 and "13.000" in evidence[0]  # the cited sentence only


@pytest.mark.usefixtures("by_support")
@pytest.mark.parametrize(
    ("second", "verdict"),
    [
        ("hơn 13.000 điểm giao dịch", 1.0),
        ("Không tìm thấy thông tin trong tài liệu.", None),
        # "not found" in words the short part of the reply leaves out ("thông tin về số")
        ("Đoạn trích không có thông tin về số điểm giao dịch.", None),
    ],
)
def test_a_borderline_answer_is_given_unless_the_second_reading_names_something_else(
    second: str, verdict: float | None
) -> None:
    gen = RereadingGenerator(REPLY, support=0.6, second=second)
    a = RAG(Settings(index_dir=str(INDEX), generator="judged"), generator=gen).ask(QUESTION)
    assert not a.abstained and "13.000" in a.text and a.citations
    assert a.signals["reread"] == verdict


@pytest.mark.usefixtures("by_support")
@pytest.mark.parametrize(("support", "recheck_below"), [(0.8, 0.7), (0.6, 0.0), (0.3, 0.7)])
def test_only_borderline_answers_are_read_again(support: float, recheck_below: float) -> None:
    # sure enough, the second reading turned off, or held back anyway: one reading is enough
    gen = RereadingGenerator(REPLY, support=support, second="2.000 điểm")
    s = Settings(index_dir=str(INDEX), generator="judged", recheck_below=recheck_below)
    a = RAG(s, generator=gen).ask(QUESTION)
    assert gen.reread_with == [] and "reread" not in a.signals
    assert a.abstained == (support < 0.5)


def test_an_answer_written_in_english_is_not_compared_with_a_vietnamese_reading() -> None:
    from rag.types import Answer, Citation

    sentence = "Bưu điện Việt Nam có hơn 13.000 điểm giao dịch."
    cited = [Citation(1, "d", "Bưu điện", sentence, sentence, "d#0", 0.9)]
    gen = RereadingGenerator(REPLY, support=0.6, second="hơn 13.000 điểm giao dịch")
    english = Answer(
        "How many?", "Vietnam Post has more than 13,000 transaction points in the country [1].", cited
    )
    assert read_again(english, gen, QUESTION) and gen.reread_with == []
    vietnamese = Answer(QUESTION, "Bưu điện Việt Nam có 2.000 điểm giao dịch [1].", cited, short="2.000")
    assert not read_again(vietnamese, gen, QUESTION) and vietnamese.signals["reread"] == 0.0


def test_shipped_calibration_is_loadable() -> None:
    cal = load_calibration(confidence.CALIBRATION)
    assert cal is not None, "rag/calibration.json is missing: run scripts/calibrate.py"
    assert set(cal.weights) <= set(Signals().features())
    # more support from the model never lowers the confidence
    low, high = (
        Signals(support=0.2, top_cosine=0.85, coverage=0.5),
        Signals(support=0.9, top_cosine=0.85, coverage=0.5),
    )
    assert cal.probability(high) > cal.probability(low)


def test_tokens_per_second_leaves_the_check_out() -> None:
    from rag.types import Timings

    t = Timings(retrieval_ms=5, first_token_ms=1000, total_ms=3000, tokens=21, check_ms=1000)
    assert t.tokens_per_s == pytest.approx(20.0)  # 20 tokens after the first, in 1 s of generation


def test_translated_english_question_gets_no_cross_lingual_allowance() -> None:
    """An English question scores lower against Vietnamese passages, so its best cosine is raised
    by CROSS_LINGUAL; searched together with its translation it no longer scores lower."""
    english = Signals(support=0.9, top_cosine=0.8, coverage=0.0, foreign=True)
    translated = Signals(support=0.9, top_cosine=0.8, coverage=0.0, foreign=True, translated=True)
    assert english.features()["top_cosine"] == pytest.approx(0.8 + confidence.CROSS_LINGUAL)
    assert translated.features()["top_cosine"] == pytest.approx(0.8)
    assert translated.features()["coverage"] is None  # English words: nothing to count either way


def test_calibrate_script_fits_a_calibration_for_another_model(tmp_path: Path) -> None:
    """`scripts/calibrate.py --generator openai --out FILE` on two corpora's reports: the file it
    writes is what RAG_CALIBRATION loads, and its weights follow the model's own judgement."""
    import json
    import subprocess
    import sys

    from rag.confidence import calibration_for
    from rag.config import PROJECT_ROOT

    args = []
    for corpus in ("a", "b"):
        results, qa = [], []
        for i in range(40):
            right = i % 2 == 0
            support = (0.85 if right else 0.3) + 0.01 * (i % 5)
            signals = {"support": support, "mean_logprob": -0.2, "min_logprob": -1.0, "top_cosine": 0.85}
            results.append(
                {"id": f"{corpus}{i}", "question": "Có bao nhiêu điểm?", "answerable": True,
                 "answer": f"{'13.000' if right else '7'} [1]", "abstained": False, "withheld": "",
                 "signals": signals | {"coverage": 0.5}, "citations": [{"quote": "13.000 điểm", "title": "T"}]}
            )  # fmt: skip
            qa.append(
                json.dumps({"id": f"{corpus}{i}", "question": "Có bao nhiêu điểm?", "keywords": ["13.000"]})
            )
        (tmp_path / f"{corpus}.json").write_text(json.dumps({"results": results}), encoding="utf-8")
        (tmp_path / f"{corpus}.jsonl").write_text("\n".join(qa), encoding="utf-8")
        args.append(corpus)
    out = tmp_path / "openai-calibration.json"
    cmd = [
        sys.executable,
        str(PROJECT_ROOT / "scripts" / "calibrate.py"),
        "--no-rejudge",
        "--generator",
        "openai",
    ]
    cmd += (
        [f"{c}={tmp_path / c}.json" for c in args] + ["--qa"] + [str(tmp_path / f"{c}.jsonl") for c in args]
    )
    cmd += ["--features", "support_logit,mean_logprob,top_cosine", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "held out a:" in done.stdout and "held out b:" in done.stdout
    cal = calibration_for(str(out))
    assert cal is not None and "generator openai" in cal.note and cal.weights["support_logit"] > 0.5
    assert cal.probability(Signals(support=0.9, mean_logprob=-0.2, top_cosine=0.85)) > 0.8
