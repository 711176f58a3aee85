"""`python -m bench safety`: how the safety rules score on labelled texts, and what they cost.

For each set (the rule authors' corpus, the blind dev batch, the frozen evaluation set)
it prints crisis recall (assessed `crisis`), crisis reached (`crisis` or `check`), urgent
recall (`urgent` or `crisis`), alerts and checks on ordinary texts, alerts on
ketamine-experience descriptions, a table per category, and time per text (p50/p99)
against a trivial keyword baseline timed in the same run.

The frozen set is measured here and nowhere else: never print its rows or its misses
while writing rules (see tests/data/README.md). Only the rule authors' sets can list
misses (--misses).
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from collections import defaultdict
from pathlib import Path

from bench import percentile, print_json, print_table, ratio

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = {
    "corpus": DATA / "safety_corpus.csv",
    "holdout": DATA / "safety_holdout.csv",
    "dev": DATA / "dev" / "safety_dev.csv",
    "round2": DATA / "dev" / "safety_round2.csv",
    "round2b": DATA / "dev" / "safety_round2b.csv",
    "round2c": DATA / "dev" / "safety_round2c.csv",
    "round2d": DATA / "dev" / "safety_round2d.csv",
    "round2e": DATA / "dev" / "safety_round2e.csv",
    "round2f": DATA / "dev" / "safety_round2f.csv",
    "round2g": DATA / "dev" / "safety_round2g.csv",
    "round2h": DATA / "dev" / "safety_round2h.csv",
    "round2i": DATA / "dev" / "safety_round2i.csv",
    "round4a": DATA / "dev" / "safety_round4a.csv",
    "round4b": DATA / "dev" / "safety_round4b.csv",
    "round4c": DATA / "dev" / "safety_round4c.csv",
    "round5a": DATA / "dev" / "safety_round5a.csv",
    "round5b": DATA / "dev" / "safety_round5b.csv",
    "round5c": DATA / "dev" / "safety_round5c.csv",
    "eval": DATA / "safety_eval.csv",
    "eval_v2": DATA / "safety_eval_v2.csv",
    "eval_v3": DATA / "safety_eval_v3.csv",
    "eval_v4": DATA / "safety_eval_v4.csv",
    "eval_v5": DATA / "safety_eval_v5.csv",
    "eval_v6": DATA / "safety_eval_v6.csv",
}
"""Set name -> labelled file (level,category,text). `eval` was the round-1 evaluation set;
it is training data since round 2, and `eval_v2` since round 3 (tests/data/README.md).
`eval_v3` was the frozen set of round 3 (training data since round 4), `eval_v4` of round 4
(training data since round 5); `eval_v5` was the frozen set of round 5 (spent); `eval_v6` is the frozen set of
round 6, measured only with `--sets eval_v6`."""
DEFAULT_SETS = ("corpus", "dev", "round2", "round2b", "round2c", "round2d", "round2e", "round2f", "round2g", "round2h", "round2i", "round4a", "round4b", "round4c", "round5a", "round5b", "round5c", "eval", "eval_v2", "eval_v3", "eval_v4")
FROZEN = ("eval_v6",)
"""Sets whose misses are never printed (and that alone are compared with the targets)."""

TARGETS = {
    "crisis_recall": (">=", 0.90), "crisis_reached": (">=", 0.97),
    "urgent_recall": (">=", 0.90), "ordinary_alerts": ("<=", 0.02),
    "ordinary_checks": ("<=", 0.05), "experience_alerts": ("<=", 0),
}
"""The issue's targets for the frozen evaluation set."""

_BASELINE = re.compile(r"\b(?:suicid\w*|kill myself|want to die|overdose|self harm|911)\b")


def keyword_baseline(text: str):
    """A trivial detector timed beside the rules: lower-case and one keyword pattern."""
    return _BASELINE.search(text.lower())


def load(path: Path) -> list[tuple[str, str, str]]:
    """(expected level, category, text) rows of one labelled file."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [(r["level"], r["category"] or "-", r["text"]) for r in csv.DictReader(fh)]


def is_experience(category: str) -> bool:
    """True for categories of ketamine-experience descriptions (which must never alert)."""
    return "ketamine" in category or "experience" in category or category == "integration"


def score(rows, assess) -> dict:
    """Aggregate figures and the per-category counts for one set."""
    per_cat: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    verdicts = []
    for level, category, text in rows:
        got = assess(text).level
        if got not in ("crisis", "urgent", "check"):
            got = "none"
        per_cat[(level, category)][got] += 1
        verdicts.append((level, category, text, got))

    def share(want, ok):
        picked = [v for v in verdicts if want(v)]
        return ratio(sum(1 for v in picked if ok(v[3])), len(picked)), len(picked)

    result = {}
    result["crisis_recall"], result["n_crisis"] = share(lambda v: v[0] == "crisis",
                                                         lambda g: g == "crisis")
    result["crisis_reached"], _ = share(lambda v: v[0] == "crisis",
                                        lambda g: g in ("crisis", "check"))
    result["urgent_recall"], result["n_urgent"] = share(lambda v: v[0] == "urgent",
                                                         lambda g: g in ("urgent", "crisis"))
    result["check_reached"], result["n_check"] = share(lambda v: v[0] == "check",
                                                        lambda g: g != "none")
    result["ordinary_alerts"], result["n_ordinary"] = share(
        lambda v: v[0] == "none", lambda g: g in ("crisis", "urgent"))
    result["ordinary_checks"], _ = share(lambda v: v[0] == "none", lambda g: g == "check")
    experience = [v for v in verdicts if is_experience(v[1])]
    result["experience_alerts"] = sum(1 for v in experience if v[3] in ("crisis", "urgent"))
    result["experience_checks"] = sum(1 for v in experience if v[3] == "check")
    result["urgent_reached"], _ = share(lambda v: v[0] == "urgent", lambda g: g != "none")
    result["n_experience"] = len(experience)
    return {"figures": result, "per_category": per_cat, "verdicts": verdicts}


def timing(texts, fn, repeat: int) -> tuple[float, float]:
    """p50 and p99 microseconds per text: each text's fastest of `repeat` passes.

    The machine is shared, so one pass can be held up by someone else's work; the
    fastest of a few passes is the text's own cost (one warm-up pass first).
    """
    for text in texts:
        fn(text)
    best = [float("inf")] * len(texts)
    clock = time.perf_counter
    for _ in range(repeat):
        for i, text in enumerate(texts):
            start = clock()
            fn(text)
            best[i] = min(best[i], (clock() - start) * 1e6)
    return percentile(best, 0.50), percentile(best, 0.99)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _rules_only(text: str):
    from flows.safety import assess

    return assess(text, learned=False)


def _with_learned(text: str):
    from flows.safety import assess

    return assess(text, learned=True)


def report(name: str, rows, assess, *, misses: bool, repeat: int, stage=None) -> dict:
    """Print one set's figures (rules alone, and with the learned stage) and return them."""
    scored = score(rows, _rules_only)
    learned = score(rows, _with_learned)
    f, g = scored["figures"], learned["figures"]
    if stage is not None:
        f.update(embedding_figures(scored["verdicts"], stage))
    print(f"\n== {name}: {len(rows)} texts ({SETS[name].relative_to(DATA.parent.parent)})")

    def both(label, key, n_key=None, pct=True):
        show = _pct if pct else str
        n = f" of {f[n_key]}" if n_key else ""
        return (label, f"{show(f[key])}{n}", f"{show(g[key])}{n}")

    aggregate = [
        both("crisis recall (crisis)", "crisis_recall", "n_crisis"),
        both("crisis reached (crisis or check)", "crisis_reached", "n_crisis"),
        both("urgent recall (urgent or crisis)", "urgent_recall", "n_urgent"),
        both("urgent reached (urgent, crisis or check)", "urgent_reached", "n_urgent"),
        both("alerts on ordinary texts", "ordinary_alerts", "n_ordinary"),
        both("checks on ordinary texts", "ordinary_checks", "n_ordinary"),
        both("alerts on ketamine-experience texts", "experience_alerts", "n_experience",
             pct=False),
        both("checks on ketamine-experience texts", "experience_checks", "n_experience",
             pct=False),
    ]
    if stage is not None:
        aggregate += [
            ("with embedding stage: crisis reached", f"{_pct(f['emb_crisis_reached'])}", ""),
            ("with embedding stage: checks on ordinary", f"{_pct(f['emb_ordinary_checks'])}", ""),
        ]
    if f["n_check"]:
        aggregate.append(both("labelled check reached (not none)", "check_reached", "n_check"))
    if name in FROZEN:
        for key, (op, target) in TARGETS.items():
            met = [(v >= target if op == ">=" else v <= target) for v in (f[key], g[key])]
            aggregate.append((f"target {key} {op} {target}",
                              *("met" if m else "MISSED" for m in met)))
    print_table(aggregate, ("figure", "rules only", "rules + learned stage"))
    print()
    table = []
    raised = defaultdict(int)
    pairs = zip(scored["verdicts"], learned["verdicts"], strict=True)
    for (level, category, _, got), (_, _, _, got2) in pairs:
        if got != got2:
            raised[(level, category)] += 1
    for (level, category), counts in sorted(scored["per_category"].items()):
        n = sum(counts.values())
        want = {"crisis": ("crisis",), "urgent": ("urgent", "crisis"),
                "check": ("check", "urgent", "crisis"), "none": ("none",)}.get(level, ())
        hit = sum(counts[g] for g in want)
        table.append((f"{level}/{category}", str(n), *(str(counts[g]) for g in
                      ("crisis", "urgent", "check", "none")), _pct(ratio(hit, n)),
                      str(raised[(level, category)])))
    print_table(table, ("expected/category", "n", "crisis", "urgent", "check", "none", "right",
                        "learned: changed"))
    texts = [text for _, _, text in rows]
    from bench import safety_legacy
    from flows.safety import learned_probability

    base50, base99 = timing(texts, keyword_baseline, repeat)
    old50, old99 = timing(texts, safety_legacy.assess, repeat)
    rule50, rule99 = timing(texts, _rules_only, repeat)
    model50, model99 = timing(texts, learned_probability, repeat)
    both50, both99 = timing(texts, _with_learned, repeat)
    print()
    print_table([
        ("keyword baseline", f"{base50:.1f}", f"{base99:.1f}"),
        ("previous rules (bench/safety_legacy.py)", f"{old50:.1f}", f"{old99:.1f}"),
        ("rules only (assess, learned=False)", f"{rule50:.1f}", f"{rule99:.1f}"),
        ("learned stage alone (learned_probability)", f"{model50:.1f}", f"{model99:.1f}"),
        ("rules + learned stage (assess, learned=True)", f"{both50:.1f}", f"{both99:.1f}"),
        ("ratio rules to previous rules", f"{ratio(rule50, old50):.2f}x",
         f"{ratio(rule99, old99):.2f}x"),
        ("ratio rules + stage to rules only", f"{ratio(both50, rule50):.2f}x",
         f"{ratio(both99, rule99):.2f}x"),
        ("ratio rules + stage to keyword baseline", f"{ratio(both50, base50):.1f}x",
         f"{ratio(both99, base99):.1f}x"),
    ], ("time per text (us)", "p50", "p99"))
    if misses and name not in FROZEN:
        wrong = [v for v in learned["verdicts"] if not _right(v[0], v[3])]
        if wrong:
            print(f"\nmisses with the learned stage ({len(wrong)}):")
            for level, category, text, got in wrong:
                print(f"  want {level}/{category} got {got}: {text}")
    return {"set": name, **f, "learned": g, "p50_us": rule50, "p99_us": rule99,
            "learned_p50_us": both50, "learned_p99_us": both99,
            "previous_p50_us": old50, "previous_p99_us": old99,
            "baseline_p50_us": base50, "baseline_p99_us": base99}


def embedding_figures(verdicts, stage) -> dict:
    """Crisis reached and ordinary checks when the stage may raise a `none` to `check`."""
    def final(text, got):
        return "check" if got == "none" and stage.similarity(text) >= stage.threshold else got

    crisis = [final(t, g) for level, _, t, g in verdicts if level == "crisis"]
    ordinary = [final(t, g) for level, _, t, g in verdicts if level == "none"]
    return {
        "emb_crisis_reached": ratio(sum(g in ("crisis", "check") for g in crisis), len(crisis)),
        "emb_ordinary_checks": ratio(sum(g == "check" for g in ordinary), len(ordinary)),
    }


def _right(want: str, got: str) -> bool:
    if want == "crisis":
        return got == "crisis"
    if want == "urgent":
        return got in ("urgent", "crisis")
    if want == "check":
        return got != "none"
    return got == "none"


def main(argv: list[str] | None = None) -> int:
    """Score the rules on the labelled sets and time them."""
    parser = argparse.ArgumentParser(prog="python -m bench safety", description=__doc__)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS),
                        help=f"comma-separated, from {', '.join(SETS)}")
    parser.add_argument("--misses", action="store_true",
                        help="list misses (never for the frozen set)")
    parser.add_argument("--repeat", type=int, default=5, help="timing passes per set")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--embedding", metavar="MODEL_DIR",
                        help="also measure the optional embedding stage (bench/safety_embedding.py)")
    args = parser.parse_args(argv)
    from flows.safety import assess

    stage = None
    if args.embedding:
        from bench.safety_embedding import EmbeddingStage

        stage = EmbeddingStage(args.embedding)
        dev = load(SETS["dev"])
        ordinary = [t for level, _, t in dev if level == "none" and assess(t).level == "none"]
        threshold = stage.calibrate(ordinary)
        p50, p99 = stage.timed([t for _, _, t in dev])
        print(f"embedding stage: threshold {threshold:.3f} (calibrated on the dev batch's "
              f"ordinary texts), {p50:.1f} / {p99:.1f} ms per text (p50 / p99), "
              f"+{stage.extra_mb:.0f} MB peak memory")

    results = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name not in SETS:
            parser.error(f"unknown set {name!r}")
        if not SETS[name].exists():
            print(f"\n== {name}: {SETS[name].name} is not in this checkout yet, skipped")
            continue
        results.append(report(name, load(SETS[name]), assess, misses=args.misses,
                              repeat=args.repeat, stage=stage))
    if args.json:
        print_json({"safety": results})
    return 0
