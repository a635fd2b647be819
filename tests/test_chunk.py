from rag.chunk import chunk_document
from rag.ingest import read_file

from .conftest import CORPUS


def test_chunks_point_back_exactly() -> None:
    for path in sorted(CORPUS.glob("*.txt")):
        doc = read_file(path, path.stem)
        for c in chunk_document(doc, 120, 1):
            assert c.text == "\n".join(doc.text[s:e] for s, e in c.spans)
            assert doc.text[c.start : c.end].startswith(c.text.split("\n")[0])
            assert c.doc_id == doc.doc_id and c.title == doc.title


def test_chunk_size_and_overlap() -> None:
    doc = read_file(CORPUS / "004_ccc08ab033797ff4.txt")
    count = lambda t: len(t.split())  # noqa: E731
    chunks = chunk_document(doc, 150, 1, count=count)
    assert len(chunks) > 5
    overlapping = 0
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start <= a.end + 2  # moves forward, never skips text
        overlapping += b.start < a.end  # starts inside a: the sentence of overlap
    assert overlapping >= len(chunks) // 3
    for c in chunks:
        assert count(c.text.replace("\n", " ")) <= 150 or "\n" not in c.text


def test_ids_deterministic_and_content_addressed() -> None:
    doc = read_file(CORPUS / "001_98b07f8de306c9c3.txt")
    a = [c.chunk_id for c in chunk_document(doc)]
    b = [c.chunk_id for c in chunk_document(doc)]
    assert a == b and len(set(a)) == len(a)
    doc.text = doc.text.replace("13.000", "14.000")
    c = [c.chunk_id for c in chunk_document(doc)]
    assert c != a and sum(x != y for x, y in zip(a, c)) <= 2
