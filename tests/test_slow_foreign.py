"""The bundled model on a corpus the project was not built on: a few ViQuAD 2.0 articles (read from
../shared/corpora, never copied into the project) with answerable, unanswerable and English questions."""

from pathlib import Path

import pytest

from rag.config import PROJECT_ROOT, Settings
from rag.index import build_index
from rag.pipeline import RAG
from rag.text import is_vietnamese

pytestmark = pytest.mark.slow
FOREIGN = PROJECT_ROOT.parent / "shared" / "corpora" / "viquad2-dev" / "corpus"
ARTICLES = ["01_sao-kim.txt", "03_giao-hoang-gioan-phaolo-ii.txt", "09_nha-han.txt"]
MODEL_CACHE = str(Path.home() / ".cache" / "rag-vi")


@pytest.fixture(scope="module")
def foreign_rag(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    pytest.importorskip("llama_cpp")
    if not all((FOREIGN / a).is_file() for a in ARTICLES):
        pytest.skip(f"the foreign evaluation corpus is not beside the project ({FOREIGN})")
    tmp = tmp_path_factory.mktemp("foreign")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for a in ARTICLES:  # a temporary copy of two articles, indexed for this test only
        (corpus / a).write_text((FOREIGN / a).read_text(encoding="utf-8"), encoding="utf-8")
    s = Settings(
        index_dir=str(tmp / "idx"), corpus_dir=str(corpus), generator="local", cache_dir=MODEL_CACHE,
        fallback_extractive=False,
    )  # fmt: skip
    rag = RAG(s)
    build_index(settings=s, embedder=rag.embedder)
    return rag


def test_answerable_question_is_answered_and_rated(foreign_rag: RAG) -> None:
    a = foreign_rag.ask("Ngày lễ kính Ðức mẹ Fatima 13 tháng 5 năm 2005 cũng trùng với kỷ niệm gì?")
    assert not a.abstained, a.withheld or a.text
    assert "24 năm" in a.text and "mưu sát" in a.short
    assert any("24 năm giáo hoàng Gioan Phaolô II bị mưu sát" in c.quote for c in a.citations)
    assert a.confidence is not None and a.confidence >= 0.5 and a.signals["support"] is not None


def test_english_question_is_answered_in_english(foreign_rag: RAG) -> None:
    a = foreign_rag.ask(
        "In which year did the Soviet Union combine its Venus mission with a probe of Halley's comet?"
    )
    assert not a.abstained, a.withheld or a.text
    assert "1985" in a.text and any("1985" in c.quote for c in a.citations)
    assert "năm" not in a.text.lower()  # written in English
    assert is_vietnamese(a.searched)  # the documents were searched with a Vietnamese translation too


def test_fact_the_article_lacks_is_not_answered(foreign_rag: RAG) -> None:
    # the article covers Venus' exploration, but not what this asks
    a = foreign_rag.ask("Tàu vũ trụ nào của Trung Quốc đã hạ cánh trên Sao Kim năm 2020?")
    assert a.abstained and not a.citations, a.text


def test_question_typed_without_diacritics_is_read_with_them(foreign_rag: RAG) -> None:
    a = foreign_rag.ask("Ngay le kinh Duc me Fatima 13 thang 5 nam 2005 cung trung voi ky niem gi?")
    assert not a.abstained, a.withheld or a.text
    assert "24 năm" in a.text and any("mưu sát" in c.quote for c in a.citations)
    assert "Fatima" in a.searched and "kỷ niệm" in a.searched  # the marks its passages write


def test_fact_the_article_lacks_is_not_answered_without_diacritics_either(foreign_rag: RAG) -> None:
    # answered (wrongly, with a citation) before the question was read with its marks
    a = foreign_rag.ask("Gioan Phaolo II la vi Giao hoang duy nhat den tham vung Thanh Dia nao?")
    assert a.abstained and not a.citations, a.text


def test_a_borderline_answer_its_cited_sentence_contradicts_is_held_back(foreign_rag: RAG) -> None:
    # read among three passages the model names the victor, Tào Tháo; read from the sentence it cites
    # alone ("… sau trận Quan Độ tiêu diệt được đại địch là Viên Thiệu …") it names the defeated, as asked
    a = foreign_rag.ask("Phía Bắc Trung Nguyên được Hán Hiến Đế thống nhất sau khi đánh bại kẻ địch nào?")
    assert a.abstained and not a.citations, a.text
    assert "Tào Tháo" in a.withheld and a.signals["reread"] == 0.0
