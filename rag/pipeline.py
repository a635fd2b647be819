"""The RAG object: retrieve → generate → cite. ``retrieve()`` and ``ask()`` are thin wrappers."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from functools import cached_property

from .cite import Verified, parse_markers, verify
from .confidence import Signals, calibration_for
from .config import Settings
from .embed import Embedder, make_embedder
from .errors import EmptyQuestionError, MissingDependencyError, ModelLoadError
from .followup import rewrite_follow_up
from .gate import off_topic, pair_coverage
from .generators import Generator, make_generator
from .generators.extractive import rank_sentences
from .grounding import colocation, echoes_question, read_again
from .index import passage_text
from .prompt import ReplyDisplay, distinct, focused, in_english, says_not_found, strip_format
from .restore import restore, typed_without_marks
from .retrieve import Mode, Retriever
from .short import short_answer, snap, verbatim
from .text import CITATION, is_vietnamese, looks_english
from .types import Answer, Hit, Timings

logger = logging.getLogger(__name__)

NOT_FOUND = "Tài liệu hiện có không chứa thông tin để trả lời câu hỏi này."
NOT_FOUND_EN = "The documents do not contain the information to answer this question."
MAX_TURNS = 5  # how far back a chain of follow-ups is followed
RESTORE_FROM = 20  # passages whose words give a question typed without diacritics its marks
_FOLLOW_UP = re.compile(r"^(còn|vậy|thế còn|và)\s|thì sao|thi sao", re.I)
_PRONOUN = re.compile(r"\b(đó|này|ấy|họ|nó|vậy)\b", re.I)
_SYL = re.compile(r"\w+")


class AnswerStream:
    """Iterate for text as it is generated; ``.answer`` holds the verified Answer afterwards."""

    def __init__(self, events: Iterator[str], holder: dict[str, Answer]) -> None:
        self._events = events
        self._holder = holder

    def __iter__(self) -> Iterator[str]:
        yield from self._events

    @property
    def answer(self) -> Answer:
        if "answer" not in self._holder:
            for _ in self._events:
                pass
        return self._holder["answer"]


class RAG:
    """One configured chatbot: an index, an embedder and (lazily) generators."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.settings = settings or Settings()
        calibration_for(self.settings.calibration)  # a wrong RAG_CALIBRATION fails here, not on an answer
        self._embedder = embedder
        self._generators: dict[str, Generator] = {}
        if generator is not None:
            self._generators[generator.name] = generator
        self._lock = threading.Lock()
        self.uploads: str | None = None  # a user's uploads collection, searched with the chosen one
        self._others: dict[str, RAG] = {}
        self._marked: dict[str, str] = {}  # conversation turns typed without marks, restored

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or make_embedder(self.settings.embedder)

    @cached_property
    def retriever(self) -> Retriever:
        from .collections import open_retriever

        return open_retriever(self.settings, self.embedder, self.uploads)

    def for_collection(self, name: str | None = None, uploads: str | None = None) -> RAG:
        """A RAG over another collection (and a user's uploads) sharing embedder and generators."""
        key = f"{name or self.settings.collection}\0{uploads or ''}"
        with self._lock:
            if key not in self._others:
                s = Settings(**{**self.settings.__dict__, "collection": name or self.settings.collection})
                other = RAG(s, embedder=self.embedder)
                other._generators, other._lock, other.uploads = self._generators, self._lock, uploads
                self._others[key] = other
            return self._others[key]

    def for_index(self, index_dir: str) -> RAG:
        """A RAG over another index that shares this one's embedder and loaded generators."""
        other = RAG(Settings(**{**self.settings.__dict__, "index_dir": index_dir}), embedder=self.embedder)
        other._generators = self._generators
        other._lock = self._lock
        return other

    def has_generator(self, name: str | None = None) -> bool:
        return (name or self.settings.generator) in self._generators

    def reload(self) -> None:
        """Re-read the index from disk (after documents were added)."""
        with self._lock:
            self.__dict__.pop("retriever", None)
            self._marked = {}

    def retrieve(self, query: str, k: int | None = None, mode: Mode = "hybrid") -> list[Hit]:
        return self.retriever.search(query, k or self.settings.top_k, mode)

    def generator(self, name: str | None = None) -> Generator:
        """The named generator (default: settings), loaded once; falls back to extractive if allowed."""
        name = name or self.settings.generator
        with self._lock:
            if name not in self._generators:
                try:
                    self._generators[name] = make_generator(name, self.settings)
                except (ModelLoadError, MissingDependencyError) as exc:
                    if not self.settings.fallback_extractive or name == "extractive":
                        raise
                    logger.warning("generator %r failed to load (%s); using extractive answers", name, exc)
                    self._generators[name] = make_generator("extractive", self.settings)
            return self._generators[name]

    def _check(self, question: str, warnings: list[str]) -> str:
        q = (question or "").strip()
        if not q:
            raise EmptyQuestionError("the question is empty — type a question about the documents")
        limit = self.settings.max_question_chars
        if len(q) > limit:
            q = q[:limit]
            msg = f"question truncated to {limit} characters"
            logger.warning(msg)
            warnings.append(msg)
        return q

    def whole_question(self, question: str, history: list[tuple[str, str]]) -> str:
        """``question`` made whole from the conversation when it is an elliptical follow-up
        ("Còn Hải Dương thì sao?"); otherwise the question itself."""
        if not history:
            return question
        previous = self._with_marks(self.whole_question(history[-1][0], history[-MAX_TURNS:-1]))
        unmarked = typed_without_marks(question)  # "con hai duong thi sao": its names' marks first
        return rewrite_follow_up(self._with_marks(question), previous, unmarked) or question

    def _with_marks(self, text: str) -> str:
        """``text`` with the marks its passages write when it was typed without them (a turn of a
        conversation, before it is read as a follow-up's context); else ``text`` itself."""
        if not typed_without_marks(text):
            return text
        marked = self._marked.get(text)
        if marked is None:
            marked = self._restored(text, self.retrieve(text, RESTORE_FROM))
            if len(self._marked) > 256:  # a cache per index: turns are read again at every follow-up
                self._marked = {}
            self._marked[text] = marked
        return marked

    def _restored(self, text: str, hits: list[Hit]) -> str:
        """``text`` (typed without marks) with the marks of the passages ``hits`` found and of the best
        by BM25's accent-folded copy alone, which a hybrid search led by its dense half can miss."""
        lexical = self.retrieve(text, RESTORE_FROM, "bm25")
        chunks = {h.chunk.chunk_id: h.chunk for h in [*hits, *lexical]}
        return restore(text, [passage_text(c) for c in chunks.values()])

    def search_query(self, question: str, history: list[tuple[str, str]]) -> str:
        """The text used for retrieval: a follow-up made whole, or carrying the previous question."""
        if not history:
            return question
        whole = self.whole_question(question, history)
        if whole != question:
            return whole
        words = len(question.split())
        if words <= 4 or _FOLLOW_UP.search(question) or (words <= 8 and _PRONOUN.search(question)):
            return f"{self.whole_question(history[-1][0], history[-MAX_TURNS:-1])} {question}"
        return question

    def stream(
        self,
        question: str,
        history: list[tuple[str, str]] | None = None,
        *,
        generator: str | None = None,
        k: int | None = None,
        collection: str | None = None,
    ) -> AnswerStream:
        """Answer ``question`` streaming text; read ``.answer`` for the verified result."""
        if collection and collection != self.settings.collection:
            return self.for_collection(collection, self.uploads).stream(
                question, history, generator=generator, k=k
            )
        history = list(history or [])
        warnings: list[str] = []
        q = self._check(question, warnings)
        holder: dict[str, Answer] = {}
        return AnswerStream(self._run(q, history, generator, k, warnings, holder), holder)

    def _run(
        self,
        q: str,
        history: list[tuple[str, str]],
        gen_name: str | None,
        k: int | None,
        warnings: list[str],
        holder: dict[str, Answer],
    ) -> Iterator[str]:
        t0 = time.perf_counter()
        timings = Timings()
        asked = self.whole_question(q, history)
        if asked != q:  # a whole question needs no history, and the citations are checked against it
            history = []
        query = self.search_query(asked, history)
        gen = self.generator(gen_name)
        if gen.name != (gen_name or self.settings.generator):
            warnings.append(
                f"generator {gen_name or self.settings.generator!r} unavailable; answered with {gen.name!r}"
            )
        searched = self._translated(asked, gen, timings)
        t_search = time.perf_counter()
        k = k or self.settings.top_k
        reading = asked  # the question as the reader and the checks read it
        if searched:
            hits = self.retrieve(f"{query}\n{searched}", k)
        elif typed_without_marks(asked):
            # typed without diacritics: the passages found through the accent-folded BM25 copy
            # give its words their marks back, and the marked question is searched and read (a
            # turn of a conversation was given them when it was read as a possible follow-up)
            hits, reading = [], self._marked.get(asked, "")
            if not reading:
                hits = self.retrieve(query, max(RESTORE_FROM, k))
                reading = self._restored(asked, hits)
            if reading != asked:
                searched = reading
                query = self.search_query(reading, history)
            if reading != asked or not hits:
                hits = self.retrieve(query, k)
            hits = hits[:k]
        else:
            hits = self.retrieve(query, k)
        timings.retrieval_ms = (time.perf_counter() - t_search) * 1000
        translated = bool(searched) and reading == asked
        not_found = NOT_FOUND_EN if looks_english(asked) else NOT_FOUND  # in the question's language

        def finish(answer: Answer) -> None:
            answer.timings.total_ms = (time.perf_counter() - t0) * 1000
            answer.asked = asked if asked != q else ""
            answer.searched = searched
            holder["answer"] = answer

        if off_topic(query, hits, searched):
            yield not_found
            finish(Answer(q, not_found, [], True, hits[:3], hits, gen.name, timings, warnings))
            return
        words = f"{asked}\n{searched}" if translated else reading  # what the excerpts are cut for
        passages = distinct(words, hits, self.settings.context_k) if gen.name != "extractive" else hits[:5]
        shown = [focused(h, words) for h in passages] if translated else passages
        display = ReplyDisplay()
        for delta in gen.stream(reading, shown, history):
            if timings.first_token_ms is None:
                timings.first_token_ms = (time.perf_counter() - t0) * 1000
            timings.tokens += 1
            out = display.feed(delta)
            if out:
                yield out
        tail = display.feed("", final=True)
        if tail:
            yield tail
        raw = display.raw
        wording = searched or asked  # the question in the documents' language, to check claims against
        checked = verify(raw, passages, wording, hits)
        if searched and not checked.grounded:  # a loose translation ("Soviet Union" left in English)
            checked = verify(raw, passages, asked, hits)  # must not undo what the question itself supports
        if not checked.grounded and not says_not_found(strip_format(raw)):
            checked = self._from_pointed_passages(wording, raw, passages) or checked
        if (
            says_not_found(strip_format(raw))
            or not checked.grounded
            or echoes_question(reading, checked.text)
        ):
            finish(Answer(q, not_found, [], True, hits[:3], hits, gen.name, timings, warnings))
            return
        answer = Answer(q, checked.text, checked.citations, False, [], hits, gen.name, timings, warnings)
        short = short_answer(reading, checked.text)
        answer.short = snap(short, [c.text for c in checked.citations])
        answer.text = verbatim(answer.text, short, answer.short)
        self._rate(answer, gen, reading, query, passages, searched if translated else "")
        if self._held_back(answer, gen, wording):
            answer.withheld, answer.text, answer.citations, answer.short = answer.text, not_found, [], ""
            answer.abstained, answer.related = True, hits[:3]
        elif not_found is NOT_FOUND_EN:
            self._in_english(answer, gen, reading)
        finish(answer)

    @staticmethod
    def _translated(question: str, gen: Generator, timings: Timings) -> str:
        """An English ``question`` in Vietnamese, to search the documents with (with the question
        itself): e5-small ranks Vietnamese passages poorly for English questions, and BM25 finds
        none of their words. "" for other questions, or when the generator cannot translate."""
        translate = getattr(gen, "translate", None)
        if translate is None or not looks_english(question):
            return ""
        t = time.perf_counter()
        try:
            return str(translate(question))
        finally:
            timings.translate_ms = (time.perf_counter() - t) * 1000

    @staticmethod
    def _in_english(answer: Answer, gen: Generator, question: str) -> None:
        """The answer to an English ``question``, when the reader wrote it in Vietnamese words
        ("7 nguyên tắc, 10 nhóm giải pháp [1]"), put into English: checked first, then translated
        with its numbers and markers kept. Left in Vietnamese when no faithful translation comes."""
        to_english = getattr(gen, "to_english", None)
        if to_english is None or in_english(answer.text):
            return
        t = time.perf_counter()
        english = str(to_english(answer.text))
        answer.timings.translate_ms += (time.perf_counter() - t) * 1000
        if english:
            answer.text, answer.short = english, short_answer(question, english)

    def _rate(
        self, answer: Answer, gen: Generator, asked: str, query: str, passages: list[Hit], searched: str
    ) -> None:
        """Read the signals of ``answer`` and, when the generator gives the model's own ones and a
        calibration exists, the probability that it is right. ``searched`` is an English question's
        Vietnamese translation when the search used one."""
        t = time.perf_counter()
        sig = Signals(
            top_cosine=max((h.dense for h in passages if h.dense is not None), default=0.0),
            coverage=pair_coverage(query, passages),
            foreign=not is_vietnamese(query),
            translated=bool(searched),
            colocation=colocation(asked, answer.short or answer.text, [c.text for c in answer.citations]),
        )
        logprobs = gen.last_logprobs() if hasattr(gen, "last_logprobs") else []
        if logprobs:
            sig.mean_logprob = sum(logprobs) / len(logprobs)
            sig.min_logprob = min(logprobs)
        if hasattr(gen, "support_probability"):
            evidence = [f"({c.title}) {c.quote}" for c in answer.citations]
            # the short answer: judged on the whole sentence, the model mostly agrees with itself
            sig.support = gen.support_probability(
                asked, answer.short or CITATION.sub("", answer.text), evidence
            )
            if sig.support is None:
                answer.warnings.append(f"{gen.name} gives no log-probabilities: the answer is not rated")
        answer.signals = sig.as_dict()
        answer.timings.check_ms = (time.perf_counter() - t) * 1000
        calibration = calibration_for(self.settings.calibration)
        if calibration is not None and sig.support is not None and self.settings.min_confidence > 0:
            answer.confidence = calibration.probability(sig)

    def _held_back(self, answer: Answer, gen: Generator, question: str) -> bool:
        """Whether a rated ``answer`` is too unlikely to be right to give: below the confidence cut,
        or borderline and contradicted by a second reading of its cited sentences."""
        c = answer.confidence
        if c is None or c >= self.settings.recheck_below and c >= self.settings.min_confidence:
            return False
        return c < self.settings.min_confidence or not read_again(answer, gen, question)

    @staticmethod
    def _from_pointed_passages(q: str, raw: str, passages: list[Hit]) -> Verified | None:
        """A reply of markers only ("Trả lời: [2]") points at passages but says nothing: answer
        from the best matching sentence of the passages it pointed at."""
        if _SYL.search(CITATION.sub("", strip_format(raw))):
            return None  # the model did write a claim; it just was not supported
        pointed = [n for n in dict.fromkeys(parse_markers(raw)) if 1 <= n <= len(passages)]
        if not pointed:
            return None
        ranked = rank_sentences(q, [passages[n - 1] for n in pointed])
        if not ranked or ranked[0][0] <= 0:
            return None
        _, i, sent = ranked[0]
        v = verify(f"{sent} [{pointed[i]}]", passages, q)
        return v if v.grounded else None

    def ask(
        self,
        question: str,
        history: list[tuple[str, str]] | None = None,
        *,
        generator: str | None = None,
        k: int | None = None,
        collection: str | None = None,
    ) -> Answer:
        """Answer ``question`` from the documents, with verified citations."""
        return self.stream(question, history, generator=generator, k=k, collection=collection).answer


_default: RAG | None = None
_default_lock = threading.Lock()


def default_rag() -> RAG:
    """The process-wide RAG built from the environment's settings (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = RAG()
        return _default


def retrieve(query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
    """Ranked passages for ``query`` from the configured index (``RAG_INDEX_DIR``)."""
    return default_rag().retrieve(query, k, mode)


def ask(
    question: str,
    history: list[tuple[str, str]] | None = None,
    *,
    generator: str | None = None,
    k: int | None = None,
    collection: str | None = None,
) -> Answer:
    """Answer ``question`` in Vietnamese with citations [n] (``RAG_GENERATOR`` picks the model;
    ``collection`` a knowledge base other than ``RAG_COLLECTION``)."""
    return default_rag().ask(question, history, generator=generator, k=k, collection=collection)


def ask_stream(
    question: str,
    history: list[tuple[str, str]] | None = None,
    *,
    generator: str | None = None,
    collection: str | None = None,
) -> AnswerStream:
    """Streaming form of :func:`ask`: iterate for text, then read ``.answer``."""
    return default_rag().stream(question, history, generator=generator, collection=collection)
