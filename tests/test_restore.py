import pytest

from rag.restore import restore, typed_without_marks, vocabulary

PASSAGE = (
    "Để cụ thể hóa Nghị quyết Đại hội Đảng bộ tỉnh Hải Dương lần thứ XVII, nhiệm kỳ 2020 - 2025, "
    "Ban Chấp hành Đảng bộ tỉnh đã ban hành Nghị quyết chuyên đề về chuyển đổi số."
)


def test_a_question_gets_the_marks_its_passage_writes() -> None:
    q = "nghi quyet dai hoi dang bo tinh hai duong lan thu xvii co nhiem ky nao"
    assert restore(q, [PASSAGE]) == ("Nghị quyết Đại hội Đảng bộ tỉnh Hải Dương lần thứ XVII có nhiệm kỳ nào")


def test_words_are_cased_as_the_passages_write_them_inside_a_sentence() -> None:
    texts = ["Chuyển đổi số ở Hải Dương. Tỉnh đẩy mạnh chuyển đổi số."]
    assert restore("chuyen doi so o hai duong", texts) == "chuyển đổi số ở Hải Dương"
    assert restore("Tinh day manh", texts) == "Tỉnh đẩy mạnh"  # a capital the user typed stays


def test_a_name_that_opens_a_sentence_keeps_its_capital() -> None:
    texts = ["Hải Dương đẩy mạnh chuyển đổi số. Nghệ An cũng vậy.", "Hải Dương có 12 đơn vị."]
    assert restore("con hai duong thi sao", texts) == "con Hải Dương thì sao"
    assert restore("nghe an", texts) == "Nghệ An"


def test_a_word_the_passages_do_not_write_is_left_as_typed() -> None:
    assert restore("ai la giam doc", [PASSAGE]) == "ai là giam doc"


def test_a_word_the_passages_write_two_ways_is_left_alone_unless_its_neighbours_decide() -> None:
    texts = ["Tỉnh có nhiều đổi mới.", "Tính toán số liệu.", "Ban chấp hành tỉnh Hải Dương."]
    assert restore("tinh", texts) == "tinh"  # tỉnh or tính: the passages do not say which
    assert restore("tinh hai duong", texts) == "tỉnh Hải Dương"


def test_a_question_phrase_wins_over_a_run_that_straddles_it() -> None:
    """'uoc tinh bao nhieu' is 'ước tính bao nhiêu', though a passage writes 'tình báo'."""
    texts = ["Ông là một điệp viên tình báo nhiều năm.", "Tài sản ước tính lớn."]
    assert restore("uoc tinh bao nhieu", texts) == "ước tính bao nhiêu"


def test_a_run_does_not_cross_punctuation() -> None:
    vocab = vocabulary(["Hà Nội, Việt Nam"])
    assert "noi viet" not in vocab and "ha noi" in vocab and "viet nam" in vocab
    assert restore("ha noi. viet nam", ["Thủ đô Hà Nội, Việt Nam"]) == "Hà Nội. Việt Nam"


def test_numbers_and_codes_are_kept() -> None:
    assert restore("nghi quyet 52-NQ/TW nam 2018", ["Nghị quyết 52-NQ/TW năm 2018"]) == (
        "nghị quyết 52-NQ/TW năm 2018"
    )


@pytest.mark.parametrize(
    ("question", "without"),
    [
        ("buu dien viet nam co bao nhieu diem giao dich", True),
        ("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", False),
        ("How many transaction points does Vietnam Post have?", False),
        ("COVID-19", False),
        ("chuyển doi so la gi", True),
    ],
)
def test_which_questions_were_typed_without_marks(question: str, without: bool) -> None:
    assert typed_without_marks(question) is without


def test_words_typed_with_their_marks_stay_and_the_rest_are_restored() -> None:
    texts = ["Chuyển đổi số là quá trình thay đổi tổng thể.", "Tỉnh có nhiều đổi mới."]
    assert typed_without_marks("chuyển doi so la gi")  # one word of five marked
    assert restore("chuyển doi so la gi", texts) == "chuyển đổi số là gì"
    assert restore("chuyen đôi so", texts) == "chuyển đôi số"  # no run overrides the typed "đôi"


def test_a_question_written_with_its_marks_is_left_alone() -> None:
    assert not typed_without_marks("Ai là Chủ tịch UBND tỉnh Nghệ An?")
    assert not typed_without_marks('Vì sao Longshanks có biệt danh là "Edward I"?')  # 4 of 9 marked
