"""Answers read against their place in the passages: echoes of the question, and co-location."""

from rag.grounding import agrees, colocation, echoes_question

PASSAGE = (
    "Năm 1683, quân Ottoman vây hãm Viên nhưng bị liên quân do Ba Lan dẫn đầu đánh bại. "
    "Trong Chiến tranh thế giới thứ hai, Nhật Bản chiếm đóng nhiều vùng ven Thái Bình Dương. "
    "Đế quốc Ottoman đánh bại Vương quốc Hungary trong trận Mohács năm 1526."
)


def test_an_answer_that_repeats_its_question_is_an_echo() -> None:
    q = "Quốc gia nào không tán thành việc khảo sát lại Nam Đại Dương?"
    assert echoes_question(q, "Quốc gia nào không tán thành việc khảo sát lại Nam Đại Dương [1]?")
    assert echoes_question(q, "[1]")  # markers only say nothing
    assert not echoes_question(q, "Argentina không tán thành việc khảo sát lại Nam Đại Dương [1].")


def test_new_word_pairs_make_an_answer_even_from_the_questions_syllables() -> None:
    q = "Bên nào đã chiến thắng trong chiến tranh Trung Hoa Dân Quốc?"
    assert not echoes_question(q, "Trung Quốc đã chiến thắng [1].")  # (trung, quốc) is not in the question
    # without a question word there is nothing left open: a yes/no answer may restate the question
    assert not echoes_question("Hà Nội có phải là thủ đô không?", "Hà Nội là thủ đô [1].")
    # in English too, whatever the order of the words
    q = "What kind of workforce does Vinh Phuc want to train to meet the challenges of Industry 4.0?"
    assert echoes_question(
        q, "Vinh Phuc wants to train a workforce to meet the challenges of Industry 4.0 [1]."
    )
    assert not echoes_question(q, "A workforce that masters automated production lines [1].")
    assert not echoes_question("Is Hanoi the capital?", "Hanoi is the capital [1].")


def test_colocation_is_high_when_the_answers_sentence_speaks_of_the_question() -> None:
    q = "Ottoman đánh bại quốc gia nào trong trận Mohács?"
    right = colocation(q, "Vương quốc Hungary", [PASSAGE])
    wrong = colocation(q, "Nhật Bản", [PASSAGE])  # in the passage, but in a sentence about another war
    assert right > 0.6
    assert wrong < 0.2
    assert colocation(q, "Liên Xô", [PASSAGE]) == 0.0  # held by no sentence at all


def test_colocation_matches_a_question_typed_without_tone_marks() -> None:
    q = "Ottoman danh bai quoc gia nao trong tran Mohacs?"
    assert colocation(q, "Vương quốc Hungary", [PASSAGE]) > 0.6


def test_a_statement_with_a_look_alike_of_a_question_word_asks_nothing() -> None:
    # "đầu" and "dầu" look like "đâu" once their marks are folded away; only a question word asks
    assert not echoes_question("Đầu năm nay giá dầu tăng, đúng không?", "Đầu năm nay giá dầu tăng [1].")
    assert echoes_question("dau nam nay gia dau tang o dau", "Đầu năm nay giá dầu tăng ở đâu [1]")


def test_two_readings_agree_when_one_answer_holds_most_of_the_other() -> None:
    assert agrees("Mạc My", "Mạc My ủng hộ nên không chịu quy phục")  # the same name, one says more
    assert agrees("Mưa axit sunfuric [1]", "Mưa axit")
    assert agrees("24", "24 [1]")


def test_two_readings_disagree_when_they_name_different_things() -> None:
    assert agrees("Tào Tháo", "Viên Thiệu") is False  # the subject taken for the object
    assert agrees("1923", "1925") is False
    assert agrees("2.000 điểm", "hơn 13.000 điểm") is False  # a number is one word, not "13" and "000"
    assert agrees("13.000", "13,000 điểm giao dịch")
    assert agrees("công nghệ", "Linh hồn của sự tiến bộ KH&CN") is False
    assert agrees("", "Viên Thiệu") is False


def test_a_reading_that_gives_no_answer_says_nothing_either_way() -> None:
    assert agrees("Tào Tháo", "") is None
    assert agrees("Tào Tháo", "[1]") is None
    assert agrees("Tào Tháo", "Không tìm thấy thông tin trong tài liệu.") is None
