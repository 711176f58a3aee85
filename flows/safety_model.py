"""The learned safety net: a small linear text classifier, standard library only.

Trained offline by tools/train_safety_model.py (scikit-learn logistic regression over
hashed word and character n-grams of the normalised text); its weights live in
flows/definitions/safety_model.json. `probability(text)` is the model's estimate that a
text is a crisis or an urgent side effect. flows/safety.py uses it to raise a text the
rules leave at `none` to `check` (the safety question), never to lower a rule's verdict.

Two more heads of the same form, `crisis` and `urgent` (one-vs-rest), may confirm a
rules' `check`: when the rules found risk words but no full rule, and a head is sure
enough, the text is treated as that level. A head never alerts on a text where no rule
saw risk (see flows/safety.py, `raise_with_model`).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MODEL_PATH = Path(__file__).resolve().parent / "definitions" / "safety_model.json"
_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


class SafetyModelError(ValueError):
    """The weights file is missing, malformed, or does not match this featuriser."""


def features(normalised: str, buckets: int) -> dict[int, float]:
    """Hashed features of a normalised text, L2-normalised: word 1-2 grams and the
    character 3-5 grams of each word (padded with spaces), as the training script saw."""
    words = _WORD.findall(normalised)
    counts: dict[int, float] = {}
    grams = ["w:" + w for w in words]
    grams += ["b:" + a + " " + b for a, b in zip(words, words[1:], strict=False)]
    for w in words:
        padded = " " + w + " "
        for n in (3, 4, 5):
            grams += ["c:" + padded[i:i + n] for i in range(len(padded) - n + 1)]
    for gram in grams:
        index = zlib.crc32(gram.encode("utf-8")) % buckets
        counts[index] = counts.get(index, 0.0) + 1.0
    norm = math.sqrt(sum(v * v for v in counts.values())) or 1.0
    return {i: v / norm for i, v in counts.items()}


def word_count(normalised: str) -> int:
    """Words in a normalised text (the stage's minimum-length gate counts these)."""
    return len(_WORDS_ONLY.findall(normalised))


_WORDS_ONLY = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class Head:
    """One more one-vs-rest classifier over the same features, with its own threshold."""

    intercept: float
    weights: dict[int, float]
    threshold: float

    def probability(self, feats: dict[int, float]) -> float:
        """Estimated probability of this head's level for the given features."""
        return _sigmoid(self.intercept + sum(self.weights.get(i, 0.0) * v
                                             for i, v in feats.items()))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class SafetyModel:
    """Exported weights of the learned stage and the threshold chosen by cross-validation."""

    buckets: int
    intercept: float
    weights: dict[int, float]
    threshold: float
    meta: dict
    min_words: int = 1
    heads: dict[str, Head] = field(default_factory=dict)

    def raises(self, normalised: str) -> bool:
        """True when the stage asks about this (normalised) text: long enough, and scored
        at or above the threshold."""
        return (word_count(normalised) >= self.min_words
                and self.probability(normalised) >= self.threshold)

    def probability(self, normalised: str) -> float:
        """Estimated probability that the (normalised) text is a crisis or urgent."""
        z = self.intercept + sum(self.weights.get(i, 0.0) * v
                                 for i, v in features(normalised, self.buckets).items())
        return _sigmoid(z)

    def confirms(self, normalised: str) -> str | None:
        """The level ("crisis" before "urgent") whose head is at or above its threshold
        for this (normalised) text, or None."""
        if not self.heads:
            return None
        feats = features(normalised, self.buckets)
        for level in ("crisis", "urgent"):
            head = self.heads.get(level)
            if head is not None and head.probability(feats) >= head.threshold:
                return level
        return None

    def head_probability(self, level: str, normalised: str) -> float:
        """One head's probability for the (normalised) text (0 when there is no such head)."""
        head = self.heads.get(level)
        return head.probability(features(normalised, self.buckets)) if head else 0.0


def load(path: Path = MODEL_PATH) -> SafetyModel:
    """Read and validate the weights file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        buckets = int(data["buckets"])
        weights = {int(i): float(w) for i, w in data["weights"]}
        threshold = float(data["threshold"])
        intercept = float(data["intercept"])
        min_words = int(data.get("min_words", 1))
        heads = {level: Head(float(h["intercept"]), {int(i): float(w) for i, w in h["weights"]},
                             float(h["threshold"]))
                 for level, h in data.get("heads", {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SafetyModelError(f"{path.name}: {exc}") from exc
    if data.get("featuriser") != FEATURISER:
        raise SafetyModelError(f"{path.name}: trained with featuriser "
                               f"{data.get('featuriser')!r}, this code is {FEATURISER!r}")
    if not 0.0 < threshold < 1.0 or buckets <= 0 or any(not 0 <= i < buckets for i in weights):
        raise SafetyModelError(f"{path.name}: threshold or feature indices out of range")
    for level, head in heads.items():
        if level not in ("crisis", "urgent") or not 0.0 < head.threshold <= 1.0 or any(
                not 0 <= i < buckets for i in head.weights):
            raise SafetyModelError(f"{path.name}: head {level!r} is not crisis or urgent, or "
                                   "its threshold or feature indices are out of range")
    meta = {k: v for k, v in data.items() if k not in ("weights", "heads")}
    meta["heads"] = {level: {k: v for k, v in h.items() if k != "weights"}
                     for level, h in data.get("heads", {}).items()}
    return SafetyModel(buckets, intercept, weights, threshold, meta, min_words, heads)


FEATURISER = "crc32-word12-char345-l2-v1"
"""Names the feature recipe above; the weights file records the one it was trained with."""
