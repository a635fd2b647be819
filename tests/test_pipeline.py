from collections.abc import Iterator

import pytest

from rag.config import Settings
from rag.errors import EmptyQuestionError, ModelLoadError
from rag.pipeline import NOT_FOUND, NOT_FOUND_EN, RAG
from rag.prompt import ReplyDisplay
from rag.types import Hit

from .conftest import INDEX


class ScriptedGenerator:
    """Replies with a fixed text, recording what it was given (to test the pipeline around it)."""

    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.seen: list[tuple[str, list[Hit], list[tuple[str, str]]]] = []

    def stream(self, question: str, passages: list[Hit], history: list[tuple[str, str]]) -> Iterator[str]:
        self.seen.append((question, passages, history))
        for i in range(0, len(self.reply), 4):
            yield self.reply[i : i + 4]


def make(reply: str) -> tuple[RAG, ScriptedGenerator]:
    gen = ScriptedGenerator(reply)
    rag = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen)
    return rag, gen


def test_ask_extractive_cites_the_corpus(real_rag) -> None:  # type: ignore[no-untyped-def]
    a = real_rag.ask("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?")
    assert not a.abstained and "6 giải pháp lớn" in a.text and "[1]" in a.text
    c = a.citations[0]
    assert c.n == 1 and c.doc_id == "004_ccc08ab033797ff4" and c.quote in c.text and "6 giải pháp" in c.quote
    assert a.timings.retrieval_ms > 0 and a.generator == "extractive"


def test_off_topic_abstains_without_citations(real_rag) -> None:  # type: ignore[no-untyped-def]
    a = real_rag.ask("Who won the 2018 FIFA World Cup?")
    assert a.abstained and a.citations == [] and a.text == NOT_FOUND_EN  # in the question's language
    assert real_rag.ask("Công thức nấu phở bò gồm những nguyên liệu gì?").text == NOT_FOUND
    assert a.related  # the closest passages, shown as "có thể liên quan"


def test_english_question_on_the_documents_passes_the_gate(real_rag) -> None:  # type: ignore[no-untyped-def]
    from rag.pipeline import off_topic

    q = "How many transaction points does Vietnam Post have?"
    hits = real_rag.retrieve(q, 5)
    assert any("13.000 điểm giao dịch" in h.text for h in hits)  # retrieval finds it across languages
    assert not off_topic(q, hits)  # so the model gets to answer it
    assert off_topic(
        "Who won the 2018 FIFA World Cup?", real_rag.retrieve("Who won the 2018 FIFA World Cup?", 5)
    )


def test_streamed_text_hides_reply_format() -> None:
    rag, _ = make("Trả lời: Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1].\nNguồn: [1]")
    s = rag.stream("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?")
    text = "".join(s)
    assert text == "Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1]."
    assert s.answer.citations[0].quote.startswith("Phát huy thế mạnh về hơn 13.000")
    assert s.answer.timings.first_token_ms is not None


def test_model_claim_without_support_becomes_abstention() -> None:
    rag, _ = make("Trả lời: Bưu điện Việt Nam có 45.000 nhân viên [1].\nNguồn: [1]")
    a = rag.ask("Bưu điện Việt Nam có bao nhiêu nhân viên?")
    assert a.abstained and not a.citations


def test_model_saying_not_found_abstains() -> None:
    rag, _ = make("Trả lời: Không tìm thấy thông tin trong tài liệu.\nNguồn: [1]")
    a = rag.ask("Dân số tỉnh Vĩnh Phúc là bao nhiêu người?")
    assert a.abstained and a.citations == []


def test_reply_repeating_the_question_abstains() -> None:
    q = "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"
    a = make(f"Trả lời: {q[:-1]} [1]?\nNguồn: [1]")[0].ask(q)
    assert a.abstained and a.citations == [] and a.text == NOT_FOUND
    a = make("Trả lời: Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1].")[0].ask(q)
    assert not a.abstained and a.signals["colocation"] > 0.5  # the sentence holding it speaks of it


def test_follow_up_is_made_whole_before_retrieval_and_generation() -> None:
    rag, gen = make("Trả lời: Hải Dương đề ra 3 nhóm mục tiêu cơ bản [2].")
    history = [("Mục tiêu chuyển đổi số của Nghệ An là gì?", "…")]
    a = rag.ask("Còn Hải Dương thì sao?", history)
    question, passages, hist = gen.seen[-1]
    assert question == "Mục tiêu chuyển đổi số của Hải Dương là gì?" and hist == []
    assert any(p.doc_id == "004_ccc08ab033797ff4" for p in passages)
    assert a.question == "Còn Hải Dương thì sao?" and not a.abstained and a.citations
    assert a.asked == "Mục tiêu chuyển đổi số của Hải Dương là gì?"
    assert rag.ask("Mục tiêu chuyển đổi số của Hải Dương là gì?").asked == ""  # asked as it was
    # a chain of follow-ups builds on the previous whole question
    chain = history + [("Còn Hải Dương thì sao?", a.text)]
    years = [("Nghệ An muốn đạt gì đến năm 2025?", "…"), ("Còn Hải Dương thì sao?", "…")]
    assert rag.whole_question("Còn năm 2030?", years) == "Hải Dương muốn đạt gì đến năm 2030?"
    assert (
        rag.whole_question("Còn Vĩnh Phúc thì sao?", chain) == "Mục tiêu chuyển đổi số của Vĩnh Phúc là gì?"
    )


def test_a_conversation_typed_without_marks_is_followed_too() -> None:
    """The turns get the marks their passages write before the follow-up is read: "con hai duong
    thi sao" names Hải Dương once "hai duong" is read as the passages write it."""
    rag, _ = make("Trả lời: Phát triển hạ tầng [1].")
    marked = [("Chuyển đổi số ở Nghệ An đạt kết quả gì?", "…")]
    assert rag.whole_question("con hai duong thi sao", marked) == "Chuyển đổi số ở Hải Dương đạt kết quả gì?"
    unmarked = [("chuyen doi so o nghe an dat ket qua gi", "…")]
    whole = rag.whole_question("con hai duong thi sao", unmarked)
    assert "Hải Dương" in whole and "Nghệ An" not in whole and whole.startswith("chuyển đổi số ở")
    # the name ends a longer one in the previous turn: nothing is made up
    post = [("buu dien viet nam co bao nhieu diem giao dich", "…")]
    assert rag.whole_question("con nghe an thi sao", post) == "con nghe an thi sao"


def test_other_follow_ups_retrieve_with_the_previous_question() -> None:
    rag, gen = make("Trả lời: Phát triển hạ tầng [1].")
    history = [("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?", "6 [1]")]
    rag.ask("Giải pháp đó là gì?", history)
    question, passages, hist = gen.seen[-1]
    assert question == "Giải pháp đó là gì?" and hist == history  # the model sees the conversation
    assert rag.search_query("Giải pháp đó là gì?", history).startswith("Chỉ thị 16/CT-TTg")
    assert rag.search_query("Chuyển đổi số ở Hải Dương đạt kết quả gì?", history) == (
        "Chuyển đổi số ở Hải Dương đạt kết quả gì?"  # a whole new question stands alone
    )


def test_empty_question_is_an_error(real_rag) -> None:  # type: ignore[no-untyped-def]
    for q in ["", "   \n\t"]:
        with pytest.raises(EmptyQuestionError):
            real_rag.ask(q)


def test_long_question_truncated_with_warning() -> None:
    rag, gen = make("Trả lời: Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1].")
    a = rag.ask("Bưu điện Việt Nam có bao nhiêu điểm giao dịch? " * 100)
    limit = rag.settings.max_question_chars
    assert len(a.question) == limit and len(gen.seen[-1][0]) == limit
    assert any("truncated" in w for w in a.warnings)
    assert not a.abstained and "13.000" in a.text


def test_llm_that_cannot_load_falls_back_to_extractive(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = Settings(index_dir=str(INDEX), generator="local", llm_path=str(tmp_path / "missing.gguf"))
    a = RAG(s).ask("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?")
    assert a.generator == "extractive" and not a.abstained and "13.000" in a.text
    assert any("unavailable" in w for w in a.warnings)
    s2 = Settings(
        index_dir=str(INDEX),
        generator="local",
        llm_path=str(tmp_path / "missing.gguf"),
        fallback_extractive=False,
    )
    with pytest.raises(ModelLoadError, match="RAG_LLM_PATH|llama-cpp-python"):
        RAG(s2).ask("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?")


def test_display_filter() -> None:
    d = ReplyDisplay()
    out = "".join(
        d.feed(c) for c in ["Trả ", "lời: ", "Có 6 ", "giải pháp [1].", "\nNguồn", ": [1]"]
    ) + d.feed("", final=True)
    assert out == "Có 6 giải pháp [1]."


def test_reply_of_markers_only_answered_from_the_pointed_passage() -> None:
    rag, gen = make("Trả lời: [1] [1]")
    a = rag.ask("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?")
    pointed = gen.seen[-1][1][0]
    assert not a.abstained and a.citations[0].chunk_id == pointed.chunk_id
    assert a.text.endswith("[1].") and a.text[:-5] in pointed.text


class TranslatingGenerator(ScriptedGenerator):
    """A scripted generator that also translates, as the local and OpenAI-compatible ones do."""

    def __init__(self, reply: str, translation: str) -> None:
        super().__init__(reply)
        self.translation = translation
        self.translated: list[str] = []

    def translate(self, question: str) -> str:
        self.translated.append(question)
        return self.translation


def test_english_question_is_searched_with_its_vietnamese_translation() -> None:
    q = "According to the delegates, Industry 4.0 is a precious opportunity to speed up what process?"
    vi = "Theo các đại biểu, cách mạng công nghiệp 4.0 là cơ hội quý báu để đẩy nhanh quá trình nào?"
    gen = TranslatingGenerator("Trả lời: industrialization and modernization [1]\nNguồn: [1]", vi)
    rag = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen)
    gold = "cơ hội quý báu mà Việt Nam chúng ta cần đón bắt"
    assert not any(gold in h.text for h in rag.retrieve(q, 3))  # e5-small alone misses it in English
    a = rag.ask(q)
    assert gen.translated == [q] and a.searched == vi
    question, passages, _ = gen.seen[0]
    assert question == q  # the model answers the question as asked, in its language
    assert gold in passages[0].text  # but reads the passage the translation found
    assert a.timings.translate_ms > 0


def test_short_answer_to_an_english_question_is_checked_against_the_translation() -> None:
    """A short answer is checked together with the question it answers; the English question's
    words are not in a Vietnamese passage, their translation's are."""
    q = "What is the core of Industry 4.0?"
    vi = "Cốt lõi của cách mạng công nghiệp 4.0 là gì?"
    gen = TranslatingGenerator("Trả lời: hệ thống mạng vật lý [1]\nNguồn: [1]", vi)
    a = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen).ask(q)
    assert not a.abstained and "hệ thống mạng vật lý" in a.citations[0].quote


class EnglishGenerator(TranslatingGenerator):
    """Translates questions into Vietnamese and answers into English."""

    def __init__(self, reply: str, translation: str, english: str) -> None:
        super().__init__(reply, translation)
        self.english = english
        self.put_into_english: list[str] = []

    def to_english(self, answer: str) -> str:
        self.put_into_english.append(answer)
        return self.english


def test_an_english_questions_answer_written_in_vietnamese_is_shown_in_english() -> None:
    q = "What is the core of Industry 4.0?"
    vi = "Cốt lõi của cách mạng công nghiệp 4.0 là gì?"
    gen = EnglishGenerator("Trả lời: hệ thống mạng vật lý [1]\nNguồn: [1]", vi, "cyber-physical systems [1]")
    rag = RAG(Settings(index_dir=str(INDEX), generator="scripted", min_confidence=0), generator=gen)
    a = rag.ask(q)
    # checked in Vietnamese against the passage first, then put into English
    assert gen.put_into_english == ["hệ thống mạng vật lý [1]"] and a.text == "cyber-physical systems [1]"
    assert "hệ thống mạng vật lý" in a.citations[0].quote  # the evidence stays in the document's words
    assert a.short == "cyber-physical systems"
    gen.english = ""  # no faithful translation: the checked answer is shown as it is
    assert rag.ask(q).text == "hệ thống mạng vật lý [1]"
    gen.reply, gen.english = "Trả lời: It is hệ thống mạng vật lý [1]\nNguồn: [1]", "It is CPS [1]"
    gen.put_into_english.clear()
    assert rag.ask(q).text == "It is CPS [1]"  # Vietnamese words inside an English sentence
    gen.reply = "Trả lời: cyber-physical systems [1]\nNguồn: [1]"
    gen.put_into_english.clear()
    assert rag.ask(q).text == "cyber-physical systems [1]"
    assert gen.put_into_english == []  # already in English
    gen.reply, gen.english = "Trả lời: hơn 13.000 điểm giao dịch [1]\nNguồn: [1]", "more than 13,000 [1]"
    gen.put_into_english.clear()
    assert rag.ask("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?").text.startswith("hơn 13.000")
    assert gen.put_into_english == []  # a Vietnamese question keeps its Vietnamese answer


def test_vietnamese_questions_are_not_translated() -> None:
    gen = TranslatingGenerator("Trả lời: hơn 13.000 điểm giao dịch [1]\nNguồn: [1]", "không dùng")
    rag = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen)
    assert rag.ask("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?").searched == ""
    assert rag.ask("buu dien viet nam co bao nhieu diem giao dich").searched.startswith("Bưu điện")
    assert gen.translated == []


def test_question_typed_without_diacritics_is_read_with_the_marks_its_passages_write() -> None:
    """The embedder, the reader and the checks all read 'buu dien ...' worse than the question
    with its marks, which the passages found through the accent-folded BM25 copy give back."""
    gen = ScriptedGenerator("Trả lời: hơn 13.000 điểm giao dịch [1]\nNguồn: [1]")
    rag = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen)
    a = rag.ask("buu dien viet nam co bao nhieu diem giao dich")
    marked = "Bưu điện Việt Nam có bao nhiêu điểm giao dịch"
    assert a.searched == marked and a.question == "buu dien viet nam co bao nhieu diem giao dich"
    question, passages, _ = gen.seen[0]
    assert question == marked  # what the model reads
    assert "13.000 điểm giao dịch" in passages[0].text
    assert not a.abstained and a.signals["foreign"] is False  # rated as a Vietnamese question


def test_marks_also_come_from_the_passages_bm25_ranks_best() -> None:
    """The dense half of a hybrid search reads an unmarked question poorly: it ranks the passage
    holding "giải pháp chủ yếu" 33rd for this one, which BM25's accent-folded copy ranks 3rd."""
    from rag.index import passage_text

    gen = ScriptedGenerator("Trả lời: 7 [1]\nNguồn: [1]")
    rag = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen)
    q = "Nghi quyet 06-NQ/TU xac dinh bao nhieu nhiem vu va giai phap chu yeu?"
    assert not any("chủ yếu" in passage_text(h.chunk) for h in rag.retrieve(q, 20))  # hybrid alone
    rag.ask(q)
    assert gen.seen[0][0] == "Nghị quyết 06-NQ/TU xác định bao nhiêu nhiệm vụ và giải pháp chủ yếu?"


def test_english_question_reads_the_passage_sentences_its_translation_points_to() -> None:
    """A long passage is cut to the sentences sharing most words with the question; an English
    question shares none, so its translation chooses them (else the excerpt missed "13.000")."""
    from rag.prompt import user_message

    q = "How many transaction points does Vietnam Post have?"
    gen = TranslatingGenerator(
        "Trả lời: 13.000 [1]\nNguồn: [1]", "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"
    )
    a = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen).ask(q)
    question, passages, history = gen.seen[0]
    assert "13.000 điểm giao dịch" in user_message(question, passages)  # what the model reads
    assert not a.abstained and "13.000 điểm giao dịch" in a.citations[0].quote


def test_a_turn_typed_without_marks_gets_them_once() -> None:
    """A question asked after others is first read as a possible follow-up, which gives it its
    marks; the answer then searches and reads that marked question without restoring it again."""
    gen = ScriptedGenerator("Trả lời: 7 [1]\nNguồn: [1]")
    rag = RAG(Settings(index_dir=str(INDEX), generator="scripted"), generator=gen)
    restored: list[str] = []
    restore = rag._restored

    def counted(text: str, hits: list[Hit]) -> str:
        restored.append(text)
        return restore(text, hits)

    rag._restored = counted  # type: ignore[method-assign]
    history = [("Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?", "6 [1]")]
    q = "Nghi quyet 06-NQ/TU xac dinh bao nhieu nhiem vu va giai phap chu yeu?"
    a = rag.ask(q, history)
    assert restored == [q]
    assert gen.seen[0][0] == "Nghị quyết 06-NQ/TU xác định bao nhiêu nhiệm vụ và giải pháp chủ yếu?"
    assert a.searched == gen.seen[0][0] and not a.abstained
