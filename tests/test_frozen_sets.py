"""The evaluation sets are frozen: written blind before the rules changed, never edited to fit."""

import hashlib
from pathlib import Path

DATA = Path(__file__).parent / "data"


def test_frozen_evaluation_sets_are_unchanged():
    for line in (DATA / "FROZEN.sha256").read_text().splitlines():
        digest, name = line.split()
        actual = hashlib.sha256((DATA.parent.parent / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} was edited after it was frozen"
