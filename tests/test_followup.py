import pytest

from rag.followup import name_spans, rewrite_follow_up


@pytest.mark.parametrize(
    ("question", "previous", "whole"),
    [
        (
            "Còn Hải Dương thì sao?",
            "Chuyển đổi số ở Nghệ An đạt kết quả gì?",
            "Chuyển đổi số ở Hải Dương đạt kết quả gì?",
        ),
        ("Vĩnh Phúc thì sao?", "Mục tiêu của Nghệ An là gì?", "Mục tiêu của Vĩnh Phúc là gì?"),
        ("Còn tỉnh Vĩnh Phúc thì sao?", "Mục tiêu của Nghệ An là gì?", "Mục tiêu của Vĩnh Phúc là gì?"),
        (
            "Thế còn Hải Dương?",
            "Tại Nghệ An, chuyển đổi số đạt kết quả gì?",
            "Tại Hải Dương, chuyển đổi số đạt kết quả gì?",
        ),
        ("Còn năm 2030?", "Hải Dương muốn đạt gì đến năm 2025?", "Hải Dương muốn đạt gì đến năm 2030?"),
        # the name at the start of the previous question is a name; "Theo" is not part of one
        ("Còn Nghệ An thì sao?", "Hải Dương đặt mục tiêu gì?", "Nghệ An đặt mục tiêu gì?"),
        # a place named as one ("tỉnh …") can be swapped inside an organisation's name
        (
            "Còn Hải Dương thì sao?",
            "Ai là Chủ tịch UBND tỉnh Nghệ An?",
            "Ai là Chủ tịch UBND tỉnh Hải Dương?",
        ),
    ],
)
def test_elliptical_follow_up_made_whole(question: str, previous: str, whole: str) -> None:
    assert rewrite_follow_up(question, previous) == whole


@pytest.mark.parametrize(
    ("question", "previous", "whole"),
    [
        # typed without marks, then given its names' marks: "con", "thi sao" as typed
        (
            "con Hải Dương thi sao",
            "Chuyển đổi số ở Nghệ An đạt kết quả gì?",
            "Chuyển đổi số ở Hải Dương đạt kết quả gì?",
        ),
        (
            "Con Hải Dương thì sao?",
            "Mục tiêu của Nghệ An là gì?",
            "Mục tiêu của Hải Dương là gì?",
        ),  # not "Con Hải Dương"
        (
            "va con nam 2030 thi sao",
            "Hải Dương muốn đạt gì đến năm 2025?",
            "Hải Dương muốn đạt gì đến năm 2030?",
        ),
    ],
)
def test_a_follow_up_typed_without_marks_is_made_whole_too(question: str, previous: str, whole: str) -> None:
    assert rewrite_follow_up(question, previous, unmarked=True) == whole
    # "con" alone is also a classifier ("Con tàu nào …"): without "thi sao" it is no follow-up
    assert rewrite_follow_up("con tau Venera 4 lon nhat", previous, unmarked=True) is None


@pytest.mark.parametrize(
    ("question", "previous"),
    [
        ("Giải pháp thứ nhất là gì?", "Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?"),  # not elliptical
        ("Còn Hải Dương thì sao?", "Theo Nghị quyết 52, nguồn lực nào giữ vai trò quyết định?"),  # no name
        ("còn hải dương thì sao", "Chuyển đổi số ở Nghệ An đạt kết quả gì?"),  # no capitals to go by
        ("Còn năm 2030?", "Chuyển đổi số là gì?"),  # no number to replace
        # the name ends a longer name: swapping it would ask about "Bưu điện Hải Dương"
        ("Còn Hải Dương thì sao?", "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?"),
        ("Còn Huế thì sao?", "Sinh viên Đại học Quốc gia Hà Nội học gì?"),
    ],
)
def test_other_questions_are_left_alone(question: str, previous: str) -> None:
    assert rewrite_follow_up(question, previous) is None


def test_name_spans() -> None:
    text = "Bưu điện Việt Nam và Nghệ An, theo Chỉ thị 16/CT-TTg"
    assert [text[s:e] for s, e in name_spans(text)] == ["Việt Nam", "Nghệ An"]
    two = "Hải Dương, Vĩnh Phúc"
    assert [two[s:e] for s, e in name_spans(two)] == ["Hải Dương", "Vĩnh Phúc"]
