"""Retrieval-augmented Q&A over Vietnamese documents, with checkable citations.

>>> from rag import retrieve, ask
>>> hits = retrieve("Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", k=5)
"""

from .config import Settings
from .errors import EmptyQuestionError, RagError
from .index import BuildReport, build_index
from .pipeline import RAG, AnswerStream, ask, ask_stream, retrieve
from .types import Answer, Chunk, Citation, Document, Hit

__all__ = [
    "RAG",
    "AnswerStream",
    "Answer",
    "BuildReport",
    "Chunk",
    "Citation",
    "Document",
    "EmptyQuestionError",
    "Hit",
    "RagError",
    "Settings",
    "ask",
    "ask_stream",
    "build_index",
    "retrieve",
]
