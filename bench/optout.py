"""Opt-out recognition: recall, false opt-outs and confirmations on labelled texts.

Three lists, each a CSV with columns label (request | not_request), lang, kind, text:

- train: tests/data/optout_train.csv, written by the rule authors alongside the rules;
- dev: tests/data/dev/optout_dev.csv, written blind, read while writing rules;
- frozen: tests/data/optout_eval.csv, written blind and frozen; never read while writing
  rules. Its rows are never printed: only totals and per-kind counts.
- frozen2: tests/data/optout_eval_v2.csv (250 rows), written by a third blind writer after
  the first rules were final, to measure later rule changes on texts nobody tuned to;
  treated like frozen (never read, rows never printed).
- frozen3: tests/data/optout_eval_v3.csv (265 rows), written by a fourth blind writer after
  round 2 (2026-12-01), frozen before any round-3 rule was written; treated like frozen.

Each text is classified by `flows.optout.classify` (immediate opt-out, ask to confirm,
offer a setting, or not a request), or, with `--detector is_opt_out`, by the yes/no
`flows.keywords.is_opt_out` (immediate or nothing) for a comparison with the old rule.
The issue's targets on the frozen list: recall >= 0.95 counting "ask to confirm" as
caught and >= 0.85 immediate, false opt-outs <= 2%, confirmations on non-requests <= 5%.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import bench

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
LISTS = {
    "train": DATA / "optout_train.csv",
    "dev": DATA / "dev" / "optout_dev.csv",
    "round3": DATA / "dev" / "optout_round3.csv",
    "frozen": DATA / "optout_eval.csv",
    "frozen2": DATA / "optout_eval_v2.csv",
    "frozen3": DATA / "optout_eval_v3.csv",
}
"""List name -> labelled CSV."""

FROZEN = frozenset({"frozen", "frozen2", "frozen3"})
"""Evaluation lists: scored, never shown row by row."""

TARGETS = {"recall_caught": 0.95, "recall_immediate": 0.85, "false_optout": 0.02,
           "confirm_on_non_requests": 0.05}
"""The issue's targets (recall at least, the two rates at most)."""

OUTCOMES = ("immediate", "confirm", "setting", "none")


def read_list(path: Path) -> list[dict[str, str]]:
    """The rows of one labelled CSV."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def detector(name: str) -> Callable[[str], str]:
    """text -> one of OUTCOMES, for the named detector."""
    if name == "is_opt_out":
        from flows.keywords import is_opt_out

        return lambda text: "immediate" if is_opt_out(text) else "none"
    from flows import optout

    return lambda text: optout.classify(text).outcome


def score(rows: list[dict[str, str]], classify: Callable[[str], str]) -> dict:
    """Totals and per-kind outcome counts of one list."""
    kinds: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    totals = {"request": Counter(), "not_request": Counter()}
    outcomes = []
    for row in rows:
        outcome = classify(row["text"])
        outcomes.append(outcome)
        label = row["label"]
        totals[label][outcome] += 1
        kinds[(label, row.get("lang", ""), row.get("kind", ""))][outcome] += 1
    req, neg = totals["request"], totals["not_request"]
    n_req, n_neg = sum(req.values()), sum(neg.values())
    return {
        "requests": n_req,
        "non_requests": n_neg,
        "recall_immediate": _rate(req["immediate"], n_req),
        "recall_caught": _rate(req["immediate"] + req["confirm"], n_req),
        "false_optout": _rate(neg["immediate"], n_neg),
        "confirm_on_non_requests": _rate(neg["confirm"], n_neg),
        "kinds": {"/".join(k): dict(v) for k, v in sorted(kinds.items())},
        "outcomes": outcomes,
    }


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def print_summary(results: dict[str, dict]) -> None:
    """One line per list: the four figures against the targets."""
    rows = []
    for name, r in results.items():
        rows.append((f"{name} ({r['requests']}+{r['non_requests']})",
                     f"{r['recall_immediate']:.3f}", f"{r['recall_caught']:.3f}",
                     f"{r['false_optout']:.3f}", f"{r['confirm_on_non_requests']:.3f}"))
    rows.append(("target", f">={TARGETS['recall_immediate']}", f">={TARGETS['recall_caught']}",
                 f"<={TARGETS['false_optout']}", f"<={TARGETS['confirm_on_non_requests']}"))
    bench.print_table(rows, ("list (requests+others)", "recall now", "recall+ask",
                             "false opt-out", "ask on others"))


def print_kinds(name: str, result: dict) -> None:
    """Per-kind outcome counts of one list."""
    print(f"\n{name}: outcomes by kind")
    rows = [(kind, str(sum(c.values())), *(str(c.get(o, 0)) for o in OUTCOMES))
            for kind, c in result["kinds"].items()]
    bench.print_table(rows, ("label/lang/kind", "n", *OUTCOMES))


def print_misses(name: str, rows: list[dict[str, str]], outcomes: list[str]) -> None:
    """Rows whose outcome is wrong: a request not opted out now, or a non-request caught."""
    print(f"\n{name}: misses")
    for row, outcome in zip(rows, outcomes, strict=True):
        wrong = (outcome != "immediate") if row["label"] == "request" else (
            outcome in ("immediate", "confirm"))
        if wrong:
            print(f"  {row['label']:<11} {row.get('kind', ''):<22} {outcome:<9} {row['text']}")


def main(argv: list[str] | None = None) -> int:
    """Score the detector on the chosen lists and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench optout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", default="train,dev,frozen,frozen2",
                        help="comma-separated: train, dev, frozen, frozen2, frozen3 (default: all but frozen3, measured once per round)")
    parser.add_argument("--detector", choices=("classify", "is_opt_out"), default="classify")
    parser.add_argument("--kinds", action="store_true", help="per-kind tables")
    parser.add_argument("--misses", action="store_true",
                        help="print wrong rows of train and dev (never of the frozen lists)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.lists.split(",") if n.strip()]
    unknown = [n for n in names if n not in LISTS]
    if unknown:
        parser.error(f"unknown list(s) {unknown}; choose from {sorted(LISTS)}")
    classify = detector(args.detector)
    rows = {name: read_list(LISTS[name]) for name in names}
    results = {name: score(rows[name], classify) for name in names}
    if args.json:
        bench.print_json({name: {k: v for k, v in r.items() if k != "outcomes"}
                          for name, r in results.items()})
        return 0
    print(f"detector: {args.detector}")
    print_summary(results)
    if args.kinds:
        for name, result in results.items():
            print_kinds(name, result)
    if args.misses:
        for name in names:
            if name not in FROZEN:  # the frozen lists' rows are never shown
                print_misses(name, rows[name], results[name]["outcomes"])
    return 0
