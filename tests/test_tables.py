"""Tables in .docx, .xlsx, .pptx, .odt and PDFs become rows that keep their header, so a question
about one cell retrieves it, cited with the document and its sheet or page."""

from pathlib import Path

from rag.config import Settings
from rag.formats import table_rows
from rag.index import build_index
from rag.ingest import read_file
from rag.pipeline import RAG

from .conftest import FakeEmbedder
from .docfixtures import make_odt, make_pdf, make_pptx, make_xlsx

TABLE = [
    ["Chỉ tiêu", "Năm 2024", "Năm 2025"],
    ["Doanh thu bưu chính", "1.200 tỷ đồng", "1.450 tỷ đồng"],
    ["Số điểm giao dịch", "980", "1.020"],
    ["Thuê bao 5G", "0,5 triệu", "2,1 triệu"],
]
ROW = "Chỉ tiêu: Doanh thu bưu chính; Năm 2024: 1.200 tỷ đồng; Năm 2025: 1.450 tỷ đồng."


def _ask(corpus: Path, tmp_path: Path, question: str):  # type: ignore[no-untyped-def]
    emb = FakeEmbedder()
    s = Settings(index_dir=str(tmp_path / "idx"), corpus_dir=str(corpus), generator="extractive")
    build_index(settings=s, embedder=emb)
    return RAG(s, embedder=emb).ask(question)


def test_rows_keep_the_header() -> None:
    rows = table_rows([["Chỉ tiêu", "Năm 2025"], ["Doanh thu", 1450.0], [None, None], ["Ghi chú", ""]])
    assert rows == ["Chỉ tiêu: Doanh thu; Năm 2025: 1450.", "Chỉ tiêu: Ghi chú."]
    assert table_rows([["a", "b"]]) == ["a | b"] and table_rows([]) == []


def test_xlsx_cell_answered_with_its_sheet(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_xlsx(
        corpus / "so_lieu.xlsx",
        {"Dân số": [["Huyện", "Dân số"], ["Bát Xát", 82000], ["Sa Pa", 61000]], "Kinh tế": TABLE},
    )
    doc = read_file(corpus / "so_lieu.xlsx")
    assert ROW in doc.text.split("\n") and "Huyện: Sa Pa; Dân số: 61000." in doc.text
    a = _ask(corpus, tmp_path, "Doanh thu bưu chính năm 2025 là bao nhiêu?")
    assert not a.abstained and "1.450 tỷ đồng" in a.text
    c = a.citations[0]
    assert (c.doc_id, c.location) == ("so_lieu", "trang tính Kinh tế") and ROW in c.text


def test_docx_table_cell_answered(tmp_path: Path) -> None:
    import docx

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    d = docx.Document()
    d.add_heading("Kết quả thực hiện", level=1)
    d.add_paragraph("Bảng dưới đây tổng hợp các chỉ tiêu của ngành bưu chính viễn thông.")
    t = d.add_table(rows=len(TABLE), cols=3)
    for i, row in enumerate(TABLE):
        for j, value in enumerate(row):
            t.cell(i, j).text = value
    d.add_paragraph("Số liệu do Sở Khoa học và Công nghệ cung cấp.")
    d.save(str(corpus / "bao_cao.docx"))
    doc = read_file(corpus / "bao_cao.docx")
    lines = doc.text.split("\n")
    assert ROW in lines and lines.index(ROW) < lines.index("Số liệu do Sở Khoa học và Công nghệ cung cấp.")
    a = _ask(corpus, tmp_path, "Số thuê bao 5G năm 2025 là bao nhiêu?")
    assert not a.abstained and "2,1 triệu" in a.text
    assert a.citations[0].doc_id == "bao_cao" and a.citations[0].location == "mục: Kết quả thực hiện"


def test_pdf_table_rows_on_their_page(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_pdf(corpus / "bc.pdf", ["Phần mở đầu của báo cáo.", "Bảng số liệu ngành bưu chính:"], table=TABLE)
    doc = read_file(corpus / "bc.pdf")
    assert ROW in doc.text.split("\n")
    assert doc.text.count("1.450 tỷ đồng") == 1  # the table is not read twice (as text and as rows)
    a = _ask(corpus, tmp_path, "Doanh thu bưu chính năm 2025 là bao nhiêu?")
    assert "1.450 tỷ đồng" in a.text and a.citations[0].location == "trang 2"


def test_pptx_and_odt_tables(tmp_path: Path) -> None:
    make_pptx(tmp_path / "s.pptx", [("Mở đầu", "Giới thiệu."), ("Số liệu", "Kết quả năm 2025.")], table=TABLE)
    doc = read_file(tmp_path / "s.pptx")
    assert ROW in doc.text.split("\n")
    assert doc.location_at(doc.text.index(ROW)) == "trang chiếu 2"
    make_odt(tmp_path / "v.odt", [("h", "Số liệu"), ("t", ";".join("|".join(r) for r in TABLE))])
    doc = read_file(tmp_path / "v.odt")
    assert ROW in doc.text.split("\n") and doc.location_at(doc.text.index(ROW)) == "mục: Số liệu"
