"""The short generations every LLM backend gives besides its answer, written once over each
backend's own ``_complete`` (one short greedy completion): the second reading of an answer's cited
sentences, the translation of an English question, and an answer put into English."""

from __future__ import annotations

from ..prompt import (
    REREAD_TOKENS,
    TRANSLATION_TOKENS,
    english_answer,
    english_messages,
    reread_messages,
    translate_messages,
    translation,
)


class ShortCompletions:
    def _complete(self, msgs: list[dict[str, str]], max_tokens: int) -> str:
        """The text of one short greedy completion for ``msgs`` ("" when the model gave none)."""
        raise NotImplementedError

    def _english_limit(self, answer: str) -> int:
        """How many tokens the English version of ``answer`` may take."""
        return 4 * TRANSLATION_TOKENS

    def reread(self, question: str, evidence: list[str]) -> str:
        """The model's answer to ``question`` from ``evidence`` (the cited sentences) alone."""
        return self._complete(reread_messages(question, evidence), REREAD_TOKENS)

    def translate(self, question: str) -> str:
        """``question`` in Vietnamese, or "" when the model gave none."""
        return translation(self._complete(translate_messages(question), TRANSLATION_TOKENS))

    def to_english(self, answer: str) -> str:
        """``answer`` (checked, in Vietnamese) in English, or "" when the model gave no faithful one."""
        return english_answer(self._complete(english_messages(answer), self._english_limit(answer)), answer)
