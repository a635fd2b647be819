import shutil
from pathlib import Path

import pytest

from rag.cli import main

from .conftest import CORPUS, INDEX


def test_search_prints_ranked_passages(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["search", "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", "-k", "3", "--index", str(INDEX)])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("[1] ") and "13.000 điểm giao dịch" in out and "[3] " in out


def test_ask_prints_answer_and_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "ask",
                "Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?",
                "--generator",
                "extractive",
                "--index",
                str(INDEX),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "6 giải pháp lớn" in out and "Nguồn:" in out and "[1] Hải Dương" in out


def test_ask_says_how_a_question_typed_without_diacritics_was_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    q = "chi thi 16/CT-TTg dua ra bao nhieu giai phap lon?"
    assert main(["ask", q, "--generator", "extractive", "--index", str(INDEX)]) == 0
    captured = capsys.readouterr()
    assert "Câu hỏi được đọc là: «Chỉ thị 16/CT-TTg đưa ra bao nhiêu giải pháp lớn?»" in captured.err
    assert "6 giải pháp lớn" in captured.out


def test_a_streamed_answer_is_followed_by_the_checked_one_when_it_differs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rag.cli import _print_answer
    from rag.pipeline import NOT_FOUND
    from rag.types import Answer, Timings

    held = Answer("Ai?", NOT_FOUND, [], True, [], [], "local", Timings(), [])
    _print_answer(held, "Ông Nguyễn Văn A [1]")  # held back after it was streamed
    assert NOT_FOUND in capsys.readouterr().out
    shown = Answer("Who?", "Mr Nguyen Van A [1]", [], False, [], [], "local", Timings(), [])
    _print_answer(shown, "Mr Nguyen Van A [1]")  # the same text is not printed twice
    assert capsys.readouterr().out.count("Mr Nguyen Van A") == 0


def test_empty_question_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "  ", "--generator", "extractive"]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["search", ""]) == 2


def test_index_summary_lists_skipped_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(CORPUS, corpus)
    (corpus / "broken.pdf").write_bytes(b"not a pdf")
    out_dir = tmp_path / "idx"
    assert main(["index", str(corpus), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "indexed 5 files" in out and "skipped" in out and "broken.pdf" in out
    assert (out_dir / "manifest.json").exists()


def test_missing_index_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "chuyển đổi số", "--index", str(tmp_path / "none")]) == 1
    assert "rag index" in capsys.readouterr().err


def test_index_reports_conversions_and_search_names_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.formats.legacy import to_tcvn3

    from .docfixtures import make_pdf
    from .test_locations import PAGES

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "cu.txt").write_bytes(to_tcvn3("hà nội là thủ đô của nước việt nam.").encode("latin-1"))
    make_pdf(corpus / "bao_cao.pdf", PAGES)
    out_dir = tmp_path / "idx"
    assert main(["index", str(corpus), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "indexed 2 files" in out and "converted cu from tcvn3 to Unicode" in out
    assert main(["search", "trạm phát sóng di động", "-k", "1", "--index", str(out_dir)]) == 0
    first = capsys.readouterr().out.split("\n")[0]
    assert "— trang 3" in first and "bao_cao#" in first


def test_serve_options() -> None:
    from rag.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "8765", "--no-chat", "--generator", "extractive"])
    assert args.port == 8765 and args.host == "127.0.0.1" and args.chat is False
