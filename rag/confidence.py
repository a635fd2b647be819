"""How likely an answer is to be right, from signals that do not depend on the question's wording.

The signals: the model's own judgement that the cited sentences support the answer (P("Yes") from one
forward pass on a short prompt), how sure it was of the tokens it wrote, how close the best passage
is to the question, how much of the question's wording the passages share, and how much of what the
question asks the sentence holding the answer speaks of (``grounding.colocation``). A logistic model turns
them into a probability; its weights are fitted on the answers of the local model on two corpora with
``scripts/calibrate.py`` (one corpus held out at a time to check it carries over) and stored in
``calibration.json`` beside this file. An answer below ``Settings.min_confidence`` becomes an honest
"not found".
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import ModelLoadError

CALIBRATION = Path(__file__).with_name("calibration.json")
_CLIP = 1e-4
# A question in another language (or typed without tone marks) shares no word pairs with Vietnamese
# passages, and e5 rates it lower against them: English questions scored a median 0.09 below the same
# question asked in Vietnamese on the committed corpus (0.03-0.11 over five pairs).
CROSS_LINGUAL = 0.09


def logit(p: float) -> float:
    p = min(max(p, _CLIP), 1 - _CLIP)
    return math.log(p / (1 - p))


@dataclass
class Signals:
    """What is known about an answer before it is shown."""

    support: float | None = None  # P(the cited sentences support the answer), by the model itself
    mean_logprob: float | None = None  # mean log P of the answer's tokens
    min_logprob: float | None = None  # the least sure token
    top_cosine: float = 0.0  # dense similarity of the best passage to the question
    coverage: float = 0.0  # share of the question's word pairs found in the passages
    colocation: float | None = None  # how much of the question the sentence holding the answer speaks of
    foreign: bool = False  # the question is not written in Vietnamese script (English, no tone marks)
    translated: bool = False  # it was searched together with its Vietnamese translation

    def features(self) -> dict[str, float | None]:
        """The numbers the calibration weighs; None where a signal says nothing (a model signal the
        generator does not give, word-pair coverage across languages), which counts as average."""
        return {
            "support_logit": logit(self.support) if self.support is not None else None,
            "mean_logprob": self.mean_logprob,
            "min_logprob": max(self.min_logprob, -20.0) if self.min_logprob is not None else None,
            # searched with its translation, an English question's best passage scores about as a
            # Vietnamese question's would: the cross-lingual allowance would count twice
            "top_cosine": self.top_cosine + (CROSS_LINGUAL if self.foreign and not self.translated else 0.0),
            "coverage": None if self.foreign else self.coverage,
            "colocation": None if self.foreign else self.colocation,
        }

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    """A logistic model: P(right) = sigmoid(bias + Σ weight · feature)."""

    weights: dict[str, float]
    bias: float
    note: str = ""
    means: dict[str, float] = field(default_factory=dict)  # stand in for a feature that says nothing

    def score(self, features: dict[str, float | None]) -> float:
        """The log-odds that the answer is right."""
        z = self.bias
        for name, w in self.weights.items():
            v = features.get(name)
            z += w * (self.means.get(name, 0.0) if v is None else v)
        return z

    def probability(self, signals: Signals) -> float:
        z = self.score(signals.features())
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def save(self, path: Path = CALIBRATION) -> None:
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


@lru_cache(maxsize=4)
def load_calibration(path: Path = CALIBRATION) -> Calibration | None:
    """The stored calibration, or None when there is none (then no answer is held back by it)."""
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Calibration(
        {k: float(v) for k, v in raw["weights"].items()},
        float(raw["bias"]),
        raw.get("note", ""),
        {k: float(v) for k, v in raw.get("means", {}).items()},
    )


def calibration_for(path: str) -> Calibration | None:
    """The calibration at ``path`` (``RAG_CALIBRATION``, one fitted for another model), or the
    shipped one when ``path`` is empty. A path that holds none is an error, not a silent "no rating"."""
    if not path:
        return load_calibration()
    try:
        calibration = load_calibration(Path(path))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(
            f"RAG_CALIBRATION={path} is not a calibration written by scripts/calibrate.py: {exc}"
        ) from exc
    if calibration is None:
        raise ModelLoadError(
            f"RAG_CALIBRATION={path}: no such file — write one with scripts/calibrate.py --out {path}, "
            "or unset RAG_CALIBRATION to use the one fitted on the bundled model"
        )
    return calibration


def fit_logistic(
    rows: list[dict[str, float | None]], labels: list[int], l2: float = 1.0, iters: int = 50
) -> Calibration:
    """Logistic regression by Newton's method with an L2 penalty (features standardised while
    fitting, weights returned on the raw scale). A missing value counts as the feature's mean."""
    import numpy as np

    names = sorted(rows[0])
    x = np.array([[np.nan if r[n] is None else r[n] for n in names] for r in rows], dtype=float)
    y = np.array(labels, dtype=float)
    seen = ~np.isnan(x)
    mu = np.where(seen, x, 0.0).sum(0) / np.maximum(seen.sum(0), 1)  # 0 for a feature never seen
    x = np.where(np.isnan(x), mu, x)
    sd = x.std(0)
    sd[sd == 0] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    w = np.zeros(z.shape[1])
    penalty = np.eye(z.shape[1]) * l2
    penalty[0, 0] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + penalty @ w
        hess = z.T @ (z * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    raw = w[1:] / sd
    bias = float(w[0] - (raw * mu).sum())
    return Calibration(
        {n: float(v) for n, v in zip(names, raw)}, bias, means={n: float(m) for n, m in zip(names, mu)}
    )
