from rag.cite import (
    asked_names,
    asked_role,
    asked_units,
    copied_share,
    counts,
    mentions,
    parse_markers,
    support,
    verify,
)
from rag.types import Chunk, Hit


def hit(text: str, n: int = 0) -> Hit:
    return Hit(Chunk(f"d{n}#0-x", f"d{n}", f"Tài liệu {n}", text, [(0, len(text))], 0), 1.0 - n / 10, n)


P = [
    hit(
        "Phát huy thế mạnh về hơn 13.000 điểm giao dịch trải rộng tới tận cấp xã. Bưu điện Việt Nam sẽ xây dựng hệ sinh thái dịch vụ số.",
        0,
    ),
    hit("Hội nghị được truyền trực tiếp tới 169 điểm cầu với 5.561 cán bộ tham gia.", 1),
    hit("Đồng chí Phan Xuân Dũng khẳng định Nghị quyết 52-NQ/TW là kim chỉ nam hành động.", 2),
]


def test_supported_marker_kept_and_quote_picked() -> None:
    v = verify("Trả lời: Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1].\nNguồn: [1]", P)
    assert v.grounded and v.text == "Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1]."
    assert v.citations[0].doc_id == "d0"
    assert v.citations[0].quote == "Phát huy thế mạnh về hơn 13.000 điểm giao dịch trải rộng tới tận cấp xã."
    assert v.citations[0].text[v.citations[0].quote_start :].startswith(v.citations[0].quote)


def test_wrong_marker_reattached_to_supporting_passage() -> None:
    v = verify("Trả lời: Hội nghị có 5.561 cán bộ tham gia [1].", P)
    assert v.grounded and [c.doc_id for c in v.citations] == ["d1"]
    assert v.text.endswith("[1].") and 1 in v.dropped


def test_marker_to_no_passage_dropped() -> None:
    v = verify("Trả lời: Hội nghị truyền tới 169 điểm cầu [7].\nNguồn: [7]", P)
    assert 7 in v.dropped
    assert [c.doc_id for c in v.citations] == ["d1"]


def test_invented_number_or_name_is_not_grounded() -> None:
    assert not verify("Trả lời: Bưu điện có 20.000 điểm giao dịch [1].", P).grounded
    assert not verify("Trả lời: Thủ đô của Pháp là Paris [1].\nNguồn: [1]", P).grounded
    assert not verify("Trả lời: Đồng chí Nguyễn Văn An khẳng định điều đó [3].", P).grounded


def test_renumbered_in_order_of_use() -> None:
    v = verify("Trả lời: Có 169 điểm cầu [2]. Có hơn 13.000 điểm giao dịch [1].", P)
    assert [(c.n, c.doc_id) for c in v.citations] == [(1, "d1"), (2, "d0")]
    assert v.text == "Có 169 điểm cầu [1]. Có hơn 13.000 điểm giao dịch [2]."


def test_sources_line_used_when_no_inline_markers() -> None:
    v = verify("Trả lời: Nghị quyết 52-NQ/TW là kim chỉ nam hành động.\nNguồn: [3]", P)
    assert v.grounded and v.citations[0].doc_id == "d2" and "[1]" in v.text


def test_support_and_markers() -> None:
    assert support("13.000 điểm giao dịch", P[0].text) == 1.0
    assert support("13000 điểm giao dịch", P[0].text) == 1.0
    assert support("14.000 điểm giao dịch", P[0].text) == 0.0
    assert parse_markers("a [1] b [2, 3] c [4;5]") == [1, 2, 3, 4, 5]


def test_short_claim_is_checked_with_its_question() -> None:
    # "Phan Xuân Dũng" is in passage 3, but that passage says nothing about who chairs the province
    assert not verify("Trả lời: Phan Xuân Dũng [3]", P, "Ai là Chủ tịch UBND tỉnh Quảng Trị?").grounded
    assert verify(
        "Trả lời: Phan Xuân Dũng [3]", P, "Ai khẳng định Nghị quyết 52-NQ/TW là kim chỉ nam hành động?"
    ).grounded


def test_bare_number_reattached_to_passage_that_has_it() -> None:
    v = verify("Trả lời: 169 [1]", P, "Hội nghị được truyền trực tiếp tới bao nhiêu điểm cầu?")
    assert v.grounded and [c.doc_id for c in v.citations] == ["d1"]


def test_marker_on_its_own_line_applies_to_the_answer() -> None:
    v = verify("Trả lời: The conference reached 169 connection points.\n\n[2]", P)
    assert v.grounded and v.citations[0].doc_id == "d1" and v.text.endswith("[1].")


def test_short_name_answer_needs_the_place_asked_about() -> None:
    # passage 3 names Phan Xuân Dũng but says nothing about Quảng Trị: a name answer is not supported
    assert not verify(
        "Trả lời: Phan Xuân Dũng [3]", P, "Ai phát biểu về Nghị quyết 52-NQ/TW ở Quảng Trị?"
    ).grounded
    # the place may be named in the document's title rather than in the passage itself
    q = "Hội nghị ở Nghệ An được truyền tới bao nhiêu điểm cầu?"
    assert not verify("Trả lời: 169 điểm cầu [2]", P, q).grounded
    titled = Hit(Chunk("na#0-x", "na", "Nghệ An: học tập chuyển đổi số", P[1].text, [(0, 9)], 0), 0.9, 0)
    assert verify("Trả lời: 169 điểm cầu [1]", [titled], q).grounded
    # … or in another passage shown from the same document
    named = hit("Đảng bộ Khối các cơ quan tỉnh Nghệ An tổ chức hội nghị.", 1)
    assert verify("Trả lời: 169 điểm cầu [1]", [P[1], named], q).grounded


def test_echo_of_the_question_is_not_a_claim() -> None:
    # "52-NQ/TW" and "Phan Xuân Dũng" come from the question; the new fact is in passage 3
    q = "Theo Phan Xuân Dũng, Nghị quyết 52-NQ/TW là gì?"
    v = verify("Trả lời: Theo Phan Xuân Dũng, Nghị quyết 52-NQ/TW là kim chỉ nam hành động [3].", P, q)
    assert v.grounded and v.citations[0].doc_id == "d2"
    # without the question, a number missing from the passage still sinks the sentence
    assert not verify("Trả lời: Năm 2030 Nghị quyết 52-NQ/TW là kim chỉ nam hành động [3].", P, q).grounded


def test_a_number_answer_needs_the_place_asked_about() -> None:
    # 13.000 is the count for Bưu điện Việt Nam; nothing shown is about Nghệ An
    q = "Bưu điện Nghệ An có bao nhiêu điểm giao dịch?"
    assert not verify("Trả lời: 13.000 [1]", P, q).grounded
    assert verify("Trả lời: 13.000 [1]", P, "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?").grounded


def test_a_place_that_opens_the_question_or_is_named_in_english_is_asked_about() -> None:
    # "Nghệ An" opens the question; a passage found about Nghệ An shows it is a name the documents use
    about = hit("Đảng bộ Khối các cơ quan tỉnh Nghệ An tổ chức hội nghị.", 3)
    for q in (
        "Nghệ An có bao nhiêu điểm giao dịch?",
        "Nghe An có bao nhiêu điểm giao dịch?",  # a translation that kept the name without marks
        "How many transaction points does Nghe An's post office have?",
    ):
        assert asked_names(q, about.chunk.text) == [q.split("An")[0].split()[-1] + " An"], q
        assert not verify("Trả lời: 13.000 [1]", P, q, P + [about]).grounded, q
    # a whole sentence is held to it too
    q = "Nghệ An có bao nhiêu điểm giao dịch?"
    assert not verify("Trả lời: Nghệ An có hơn 13.000 điểm giao dịch [1].", P, q, P + [about]).grounded
    # … to one of the places when it compares several
    q = "Bưu điện Việt Nam và Nghệ An có bao nhiêu điểm giao dịch?"
    assert verify("Trả lời: Bưu điện Việt Nam có hơn 13.000 điểm giao dịch [1].", P, q, P + [about]).grounded
    # an opening run, or one of an English question, that no passage writes is not required
    assert asked_names("Ngoài Síp, quốc gia nào được nhắc tới?", about.chunk.text) == []
    assert asked_names("Which country did the Ottoman Empire defeat?", about.chunk.text) == []
    assert verify("Trả lời: 13.000 [1]", P, "How many transaction points does Vietnam Post have?").grounded
    # inside a Vietnamese question a name is always asked about, written by a passage or not
    assert asked_names("Bưu điện Quảng Trị có bao nhiêu điểm?") == ["Quảng Trị"]


def test_a_count_must_count_what_was_asked() -> None:
    # 13.000 is in passage 1, but it counts points of service, not staff
    staff = "Bưu điện Việt Nam có bao nhiêu nhân viên?"
    assert not verify("Trả lời: 13.000 [1]", P, staff).grounded
    assert not verify("Trả lời: Bưu điện Việt Nam có 13.000 nhân viên [1].", P, staff).grounded
    assert verify("Trả lời: 13.000 [1]", P, "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?").grounded
    # a classifier ("nhóm") is skipped; the unit may also come before the number in its clause
    assert verify("Trả lời: 5.561 [2]", P, "Có bao nhiêu nhóm cán bộ tham gia?").grounded
    assert verify("Trả lời: 5.561 [1]", [hit("Số cán bộ tham gia là 5.561.")], "Bao nhiêu cán bộ?").grounded


def test_asked_units() -> None:
    assert asked_units("Bưu điện có bao nhiêu nhân viên?") == {"nhan"}
    assert asked_units("bao nhieu diem cau") == {"diem"}
    assert {"ty", "dong"} <= asked_units("Tỉnh đã chi bao nhiêu tiền?")
    assert "%" in asked_units("Kinh tế số chiếm bao nhiêu phần trăm GDP?")
    # an ordinal: what the number must follow
    assert asked_units("Nghị quyết số mấy về cải cách hành chính?") == {"nghi"}
    assert asked_units("Tỉnh xếp thứ mấy?") == {"thu"}
    # nothing to check: no unit, or a unit too general to pin down
    assert asked_units("Tổng vốn là bao nhiêu?") == set()
    assert asked_units("Dân số là bao nhiêu người?") == set()
    assert counts("20", "Kinh tế số chiếm 20% GDP.", asked_units("chiếm bao nhiêu phần trăm"))
    assert counts("100", "Năm 2021 tỉnh chi 100 tỷ đồng.", asked_units("chi bao nhiêu tiền"))


def test_mentions_a_name_as_a_phrase_with_its_marks() -> None:
    assert mentions("Đảng bộ tỉnh Nghệ An", "Nghệ An")
    assert not mentions("ứng dụng công nghệ an toàn", "Nghệ An")  # folded, it would match
    assert mentions("tinh Nghe An", "Nghe An")  # typed without marks: compared without marks


def test_an_ordinal_answer_must_follow_what_was_asked() -> None:
    p = [hit("Tỉnh đã ban hành Nghị quyết 05 về cải cách hành chính. Tỉnh đề ra 3 nhóm mục tiêu.")]
    q = "Tỉnh đã ban hành nghị quyết số mấy về cải cách hành chính?"
    assert verify("Trả lời: 05 [1]", p, q).grounded
    assert not verify("Trả lời: 3 [1]", p, q).grounded  # 3 is in the passage, but counts goals


def test_who_answer_must_hold_the_role_asked_about() -> None:
    p = [hit("Phát biểu khai mạc, đồng chí Chu Bá Long - Phó Bí thư Đảng ủy Khối CCQ tỉnh cho biết.")]
    assert asked_role("Ai là Chủ tịch UBND tỉnh?") == "chủ tịch"
    assert asked_role("Người đứng đầu là ai?") == ""  # too general to check
    assert not verify("Trả lời: Chu Bá Long [1]", p, "Ai là Chủ tịch UBND tỉnh?").grounded
    assert verify("Trả lời: Chu Bá Long [1]", p, "Ai là Phó Bí thư Đảng ủy Khối CCQ tỉnh?").grounded
    assert verify("Trả lời: Chu Bá Long [1]", p, "Ai phát biểu khai mạc?").grounded


def test_quote_is_the_sentence_holding_a_short_answer() -> None:
    text = (
        "Chính phủ điện tử và hệ thống chính trị được triển khai. Hội nghị thông tin chuyên đề, cập nhật "
        "kiến thức về Nghị quyết 52-NQ/TW của Bộ Chính trị được tổ chức trực tuyến qua 3 điểm cầu."
    )
    v = verify("Trả lời: Bộ Chính trị [1]", [hit(text)], "Nghị quyết 52-NQ/TW là của cơ quan nào?")
    assert v.citations[0].quote.startswith("Hội nghị thông tin")


def test_sentence_copied_from_another_passage_cites_that_passage() -> None:
    p = [
        hit("Thứ ba, triển khai đồng bộ nhiều giải pháp ứng dụng công nghệ thông tin vào đời sống.", 0),
        hit(
            "Chỉ thị đưa ra 6 giải pháp lớn: (1) phát triển hạ tầng, ứng dụng nhân lực công nghệ thông tin.",
            1,
        ),
    ]
    v = verify(
        "Trả lời: Phát triển hạ tầng, ứng dụng nhân lực công nghệ thông tin [1]",
        p,
        "Giải pháp thứ nhất là gì?",
    )
    assert [c.doc_id for c in v.citations] == ["d1"] and v.dropped == [1]
    assert copied_share("phát triển hạ tầng, ứng dụng", p[1].chunk.text) == 1.0


def test_a_range_matches_however_its_dash_is_spaced() -> None:
    """The answer "2020-2025 [1]" is what "nhiệm kỳ 2020- 2025" says; it was dropped as unsupported."""
    passage = "Nghị quyết Đại hội Đảng bộ tỉnh lần thứ XVII, nhiệm kỳ 2020- 2025, đã được ban hành."
    asked = "Nghị quyết Đại hội Đảng bộ tỉnh lần thứ XVII có nhiệm kỳ nào?"
    for claim in ("2020-2025", "2020 - 2025", "2020–2025"):
        assert support(claim, passage, context=asked, given=asked) > 0, claim
    assert support("2020-2030", passage, context=asked, given=asked) == 0
