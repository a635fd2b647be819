import pytest

from rag.short import short_answer


@pytest.mark.parametrize(
    ("question", "answer", "short"),
    [
        (
            "Ấn bản thứ bao nhiêu vẫn chưa chính thức bị công bố?",
            "Ấn bản thứ ba vẫn chưa được thay thế [1].",
            "ba",
        ),
        (
            "Bên nào đã chiến thắng trong chiến tranh Trung Hoa Dân Quốc từ năm 1937 đến 1945?",
            "Trung Quốc đã chiến thắng trong chiến tranh Trung Hoa Dân Quốc từ năm 1937 đến 1945 [1].",
            "Trung Quốc",
        ),
        (
            "Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?",
            "Chỉ thị 16/CT-TTg đưa ra 6 giải pháp lớn [1].",
            "6",
        ),
        (
            "Ai là Chủ tịch UBND tỉnh Nghệ An?",
            "Chủ tịch UBND tỉnh Nghệ An là ông Nguyễn Đức Trung [1].",
            "ông Nguyễn Đức Trung",
        ),
        # no counterpart to "Tại sao": the longest run of words the question does not have
        (
            "Tại sao sao Kim nóng?",
            "Sao Kim nóng vì hiệu ứng nhà kính của khí quyển dày [1].",
            "vì hiệu ứng nhà kính của khí quyển dày",
        ),
        ("chi thi 16 dua ra bao nhieu giai phap", "Chỉ thị 16 đưa ra 6 giải pháp lớn [1].", "6"),
        # a whole date asked for, not its year alone
        (
            "Alfred hoàn thành luận án tiến sĩ vào ngày tháng năm nào?",
            "Alfred hoàn thành luận án tiến sĩ vào ngày 30 tháng 4 năm 1905 [1].",
            "30 tháng 4 năm 1905",
        ),
        (
            "Einstein trở thành trợ giảng vào năm nào?",
            "Einstein trở thành trợ giảng vào năm 1908 [1].",
            "1908",
        ),
        # a bracket opened in the short answer is closed in it
        (
            "Thời đại được đặt tên dựa trên nhân vật nào?",
            "Thời đại Tulip được đặt tên dựa trên nhân vật Sultan Ahmed III (1703-1730) [1].",
            "Sultan Ahmed III (1703-1730)",
        ),
    ],
)
def test_short_answer_fills_the_question_word(question: str, answer: str, short: str) -> None:
    assert short_answer(question, answer) == short


def test_short_answer_falls_back_to_the_whole_answer() -> None:
    assert short_answer("Nghị quyết 52 là gì?", "Nghị quyết 52 là gì [1]") == "Nghị quyết 52 là gì"
    assert (
        short_answer("Nó là gì?", "Một chiến lược dài hạn cho cả nước [2].")
        == "Một chiến lược dài hạn cho cả nước"
    )


def test_snap_takes_the_documents_wording_for_a_nearly_copied_answer() -> None:
    from rag.short import snap

    passages = ['Ngoài Síp, Ireland, Malta và Anh Quốc lưu thông bên trái. Biệt danh "Wacko Jacko" ra đời.']
    assert snap("Ireland, Malta, Anh Quốc", passages) == "Ireland, Malta và Anh Quốc"
    assert snap("Wacko Jacko", passages) == "Wacko Jacko"
    # a word the passage does not have there keeps the answer as the model wrote it
    assert snap("lưu thông bên phải", passages) == "lưu thông bên phải"
    assert snap("Argentina", passages) == "Argentina"
    # a run that only holds the answer among many other words is a longer statement: left alone
    assert snap("Ireland", passages) == "Ireland"


def test_a_phrase_answer_is_shown_in_the_passages_words() -> None:
    from rag.short import snap, verbatim

    passage = "Síp là một trong bốn quốc gia lái bên trái, các quốc gia kia là Ireland, Malta và Anh Quốc."
    q = "Các quốc gia nào khác lái bên trái?"
    for answer, shown in [
        ("Ireland, Malta, Anh Quốc [1]", "Ireland, Malta và Anh Quốc [1]"),
        ("Ireland, Malta, Anh Quốc [1][2].", "Ireland, Malta và Anh Quốc [1][2]"),
        # a sentence keeps the model's wording (its claim is checked as a sentence)
        (
            "Các quốc gia khác là Ireland, Malta, Anh Quốc [1].",
            "Các quốc gia khác là Ireland, Malta, Anh Quốc [1].",
        ),
        ("Ireland [1], Malta, Anh Quốc [2]", "Ireland [1], Malta, Anh Quốc [2]"),  # markers inside
        ("Pháp [1]", "Pháp [1]"),  # not in the passage: nothing to copy
    ]:
        short = short_answer(q, answer)
        assert verbatim(answer, short, snap(short, [passage])) == shown


def test_question_words_are_read_with_their_marks() -> None:
    # "đầu" (first) is not "đâu" (where): the question word is "ai"
    assert short_answer("Người đứng đầu tỉnh là ai?", "Người lãnh đạo tỉnh là ông Nguyễn Văn A [1].") == (
        "ông Nguyễn Văn A"
    )
    # "máy" (machine) is not "mấy" (how many)
    assert short_answer("Máy in đời đầu có giá bao nhiêu?", "Máy in đời mới có giá 2 triệu đồng [1].") == (
        "2 triệu đồng"
    )
