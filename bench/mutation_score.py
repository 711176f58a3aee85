"""The mutation score of the last `mutmut run` (make mutate), per module and in total.

Reads mutmut's per-file results under mutants/ and prints a table: mutants killed by
the suite, survived (a change to the code no test noticed), timed out (counted as
killed: the suite noticed the change hung something), without tests, and not checked
yet (a run stopped early).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mutmut.stats import status_by_exit_code

MUTANTS = Path("mutants")


def tally(meta: Path) -> dict[str, int]:
    """Mutant outcomes in one module's results file."""
    data = json.loads(meta.read_text())
    counts: dict[str, int] = {}
    for code in data.get("exit_code_by_key", {}).values():
        status = status_by_exit_code[code]
        counts[status] = counts.get(status, 0) + 1
    return counts


def score(counts: dict[str, int]) -> float | None:
    """(killed + timeout) / (killed + timeout + survived), in percent."""
    caught = counts.get("killed", 0) + counts.get("timeout", 0)
    judged = caught + counts.get("survived", 0)
    return 100.0 * caught / judged if judged else None


def main() -> int:
    """Print the table; non-zero exit when there are no results yet."""
    metas = sorted(MUTANTS.rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutate`", file=sys.stderr)
        return 1
    total: dict[str, int] = {}
    print(f"{'module':28} {'killed':>7} {'timeout':>7} {'survived':>8} {'no tests':>8} "
          f"{'unchecked':>9} {'score':>7}")
    for meta in metas:
        counts = tally(meta)
        if not counts:
            continue
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
        name = str(meta.relative_to(MUTANTS)).removesuffix(".meta")
        value = score(counts)
        print(f"{name:28} {counts.get('killed', 0):>7} {counts.get('timeout', 0):>7} "
              f"{counts.get('survived', 0):>8} {counts.get('no tests', 0):>8} "
              f"{counts.get('not checked', 0):>9} {'-' if value is None else f'{value:.1f}%':>7}")
    value = score(total)
    print(f"{'total':28} {total.get('killed', 0):>7} {total.get('timeout', 0):>7} "
          f"{total.get('survived', 0):>8} {total.get('no tests', 0):>8} "
          f"{total.get('not checked', 0):>9} {'-' if value is None else f'{value:.1f}%':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
