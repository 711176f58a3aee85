"""Train the learned safety net offline and export its weights (scikit-learn: dev only).

    .venv/bin/python -m tools.train_safety_model            # cross-validate, pick, export
    .venv/bin/python -m tools.train_safety_model --cv-only  # figures only, write nothing

The model is logistic regression over flows/safety_model.py's hashed features of the
rules' normalised text; the target is "crisis or urgent" (labelled `check` rows are left
out). Cross-validation holds out one writer at a time (all of that writer's files
together), so the figures estimate how the stage does on a writer it never saw. The
threshold is the lowest at which the stage adds at most BUDGET of checks on ordinary
texts, averaged over the held-out writers (each writer counts once: the rule authors'
corpus holds hundreds of hard negatives written to trip rules, and pooling would let it
decide alone). C is chosen from C_GRID the same way: the one whose threshold gives the
largest mean gain (crisis reached + urgent reached) over the held-out writers.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from flows import safety
from flows.safety_model import FEATURISER, MODEL_PATH, features, word_count

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
WRITERS = {
    "rule authors (corpus + holdout)": ["safety_corpus.csv", "safety_holdout.csv"],
    "dev writer (dev/safety_dev)": ["dev/safety_dev.csv"],
    "round-2 author (dev/safety_round2*)": [f"dev/safety_round2{s}.csv" for s in
                                            ["", "b", "c", "d", "e", "f", "g", "h", "i"]],
    "eval writer (safety_eval)": ["safety_eval.csv"],
    "eval_v2 writer (safety_eval_v2)": ["safety_eval_v2.csv"],
    "eval_v3 writer (safety_eval_v3)": ["safety_eval_v3.csv"],
    "round-4 writer a (dev/safety_round4a)": ["dev/safety_round4a.csv"],
    "round-4 writer b (dev/safety_round4b)": ["dev/safety_round4b.csv"],
    "round-4 writer c (dev/safety_round4c)": ["dev/safety_round4c.csv"],
    "eval_v4 writers (safety_eval_v4)": ["safety_eval_v4.csv"],
    "round-5 writer a (dev/safety_round5a)": ["dev/safety_round5a.csv"],
    "round-5 writer b (dev/safety_round5b)": ["dev/safety_round5b.csv"],
    "round-5 writer c (dev/safety_round5c)": ["dev/safety_round5c.csv"],
    "eval_v5 writers (safety_eval_v5)": ["safety_eval_v5.csv"],
    "opt-out writers (ordinary texts)": ["optout_train.csv", "dev/optout_dev.csv",
                                         "dev/optout_round3.csv"],
    "lead (ordinary integration journal)": ["dev/ordinary_integration.csv"],
}
"""Training files grouped by who wrote them. safety_eval_v6.csv is never read here.

The opt-out files are everyday texts to the bot (replies, questions, requests to stop)
labelled for another purpose; those the safety rules leave at none are used as ordinary
texts, so the model learns how short everyday replies look (without them it asked about
"I am allowed to rest")."""
BUCKETS = 2 ** 18
MIN_WORDS = 6
MIN_WORDS_GRID = (6,)
"""Gates tried in cross-validation; the one with the largest mean gain within the budget is
kept. Round 6 tried (3, 4, 6): 3 and 4 gained 0.1 point of reached over 6 in
cross-validation, but with 3 the stage asked the safety question on a four-word intention
("be gentle with myself") in a product test: short everyday replies are most of what the
bot receives, so the gate stays at 6."""
"""The stage only judges texts of at least this many words. Short everyday replies ("soon I
think", "to be kind to myself") carry too little for the model and drew most of its false
questions; in cross-validation the gate lost no crisis or urgent text the stage found."""
BUDGET = 0.03
"""Extra checks on ordinary texts allowed at the chosen threshold (the issue allows 0.03). Raised
from 0.025 in round 5, when everyday integration-journal texts joined the ordinary texts and
would otherwise have pushed the threshold from 0.895 to 0.915 (4 points of crisis reached)."""
C = 4.0
C_GRID = (1.0, 4.0, 16.0)
CLASS_WEIGHT = {0: 1.0, 1: 2.0}
"""Errs towards recall: a missed crisis or urgent text costs twice a false one in training."""
HEAD_LEVELS = ("crisis",)
"""The heads that may confirm a rules' check as that level (one-vs-rest). An urgent head was
tried in round 4 and confirmed nothing in cross-validation (the rules rarely leave an urgent
text at check), so only the crisis head ships."""
ALERT_BUDGET = 0.005
"""Extra alerts on ordinary texts the heads may add, averaged over held-out writers."""


def load_rows():
    """(writer, level, category, text) of every training row."""
    rows = []
    for writer, files in WRITERS.items():
        for name in files:
            with (DATA / name).open(newline="", encoding="utf-8") as fh:
                for r in csv.DictReader(fh):
                    if "level" in r:
                        rows.append((writer, r["level"], r["category"] or "-", r["text"]))
                    elif safety.assess_rules(r["text"]).level == "none":  # opt-out files
                        rows.append((writer, "none", "optout_" + r["kind"], r["text"]))
    return rows


def matrix(texts):
    """Sparse feature matrix of texts, exactly as flows/safety_model.py computes them."""
    data, indices, indptr = [], [], [0]
    for text in texts:
        feats = features(safety.normalise(text), BUCKETS)
        for i in sorted(feats):
            indices.append(i)
            data.append(feats[i])
        indptr.append(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(texts), BUCKETS))


def fit(x, y):
    """The classifier, fitted."""
    model = LogisticRegression(C=C, class_weight=CLASS_WEIGHT, max_iter=2000)
    return model.fit(x, y)


def cross_validate(rows, x, rule_levels, positive=("crisis", "urgent"), gate=True):
    """Out-of-fold probabilities, each writer scored by a model trained on the others."""
    writers = np.array([r[0] for r in rows])
    levels = np.array([r[1] for r in rows])
    train_mask = levels != "check"
    y = np.isin(levels, list(positive)).astype(int)
    prob = np.zeros(len(rows))
    for writer in WRITERS:
        held = writers == writer
        model = fit(x[~held & train_mask], y[~held & train_mask])
        prob[held] = model.predict_proba(x[held])[:, 1]
    if not gate:
        return prob
    return gated(rows, prob, MIN_WORDS)


def gated(rows, prob, min_words):
    """Probabilities with texts shorter than min_words set to 0 (the stage does not judge them)."""
    long_enough = np.array([word_count(safety.normalise(r[3])) >= min_words for r in rows])
    return np.where(long_enough, prob, 0.0)


def figures(rows, rule_levels, prob, threshold, writer=None):
    """Crisis reached, urgent reached and ordinary checks, without and with the stage."""
    out = {}
    pick = [i for i, r in enumerate(rows) if writer is None or r[0] == writer]
    for stage in (False, True):
        final = []
        for i in pick:
            got = rule_levels[i]
            if stage and got == "none" and prob[i] >= threshold:
                got = "check"
            final.append((rows[i][1], got))
        crisis = [g for lv, g in final if lv == "crisis"]
        urgent = [g for lv, g in final if lv == "urgent"]
        ordinary = [g for lv, g in final if lv == "none"]
        key = "with" if stage else "rules"
        out[key] = {
            "crisis_reached": sum(g in ("crisis", "check") for g in crisis) / max(1, len(crisis)),
            "urgent_recall": sum(g in ("urgent", "crisis") for g in urgent) / max(1, len(urgent)),
            "urgent_reached": sum(g != "none" for g in urgent) / max(1, len(urgent)),
            "ordinary_checks": sum(g == "check" for g in ordinary) / max(1, len(ordinary)),
            "n": (len(crisis), len(urgent), len(ordinary)),
        }
    return out


def extra_checks(rows, rule_levels, prob, threshold, writer=None):
    """Share of ordinary texts the stage turns from none to check."""
    idx = [i for i, r in enumerate(rows) if r[1] == "none" and (writer is None or r[0] == writer)]
    return sum(rule_levels[i] == "none" and prob[i] >= threshold for i in idx) / max(1, len(idx))


def choose_threshold(rows, rule_levels, prob) -> float:
    """Lowest threshold whose extra ordinary checks, averaged over writers, stay within BUDGET."""
    for t in np.arange(0.50, 0.995, 0.005):
        mean = np.mean([extra_checks(rows, rule_levels, prob, t, w) for w in WRITERS])
        if mean <= BUDGET:
            return round(float(t), 3)
    return 0.995


def mean_gain(rows, rule_levels, prob, threshold) -> float:
    """Crisis reached + urgent reached gained by the stage, averaged over held-out writers."""
    gains = []
    for writer in WRITERS:
        f = figures(rows, rule_levels, prob, threshold, writer)
        gains.append(f["with"]["crisis_reached"] - f["rules"]["crisis_reached"]
                     + f["with"]["urgent_reached"] - f["rules"]["urgent_reached"])
    return float(np.mean(gains))


def experience_checks(rows, rule_levels, prob, threshold) -> tuple[int, int]:
    """(raised to check, total) among ketamine-experience texts the rules leave at none."""
    idx = [i for i, r in enumerate(rows) if _is_experience(r[2])]
    return int(sum(rule_levels[i] == "none" and prob[i] >= threshold for i in idx)), len(idx)


def _is_experience(category: str) -> bool:
    return "ketamine" in category or "experience" in category or category == "integration"


def promoted(rule_levels, head_prob, threshold):
    """Indices whose rules' check a head at this threshold confirms (rule_levels holds
    "check" only for checks flows.safety.confirmable allows; see main)."""
    return {i for i, lv in enumerate(rule_levels) if lv == "check" and head_prob[i] >= threshold}


def choose_head_threshold(rows, rule_levels, head_prob, level):
    """Lowest threshold whose extra alerts on ordinary texts, averaged over writers, stay
    within ALERT_BUDGET; with the recall it gains for its level (pooled)."""
    for t in np.arange(0.30, 0.995, 0.005):
        up = promoted(rule_levels, head_prob, t)
        extra = []
        for w in WRITERS:
            idx = [i for i, r in enumerate(rows) if r[0] == w and r[1] == "none"]
            extra.append(sum(i in up for i in idx) / max(1, len(idx)))
        if np.mean(extra) <= ALERT_BUDGET:
            mine = [i for i, r in enumerate(rows) if r[1] == level]
            already = {"crisis": ("crisis",), "urgent": ("urgent", "crisis")}[level]
            gain = sum(i in up and rule_levels[i] not in already for i in mine) / len(mine)
            return round(float(t), 3), gain
    return 0.995, 0.0


def fit_head(x, rows, level):
    """One head fitted on every training row (labelled check rows left out)."""
    levels = np.array([r[1] for r in rows])
    keep = levels != "check"
    return fit(x[keep], (levels[keep] == level).astype(int))


def export_head(model, threshold):
    """A head as the weights file stores it."""
    coef = model.coef_[0]
    return {"intercept": round(float(model.intercept_[0]), 6), "threshold": threshold,
            "weights": [(int(i), round(float(coef[i]), 5)) for i in np.flatnonzero(coef)
                        if round(float(coef[i]), 5) != 0.0]}


def main(argv=None) -> int:
    """Cross-validate by writer, print the figures, fit on everything, export."""
    parser = argparse.ArgumentParser(prog="python -m tools.train_safety_model")
    parser.add_argument("--cv-only", action="store_true")
    args = parser.parse_args(argv)
    rows = load_rows()
    rule_levels = [safety.assess_rules(r[3]).level for r in rows]
    x = matrix([r[3] for r in rows])
    global C, MIN_WORDS
    best = None
    for c in C_GRID:
        C = c
        ungated = cross_validate(rows, x, rule_levels, gate=False)
        for min_words in MIN_WORDS_GRID:
            p = gated(rows, ungated, min_words)
            t = choose_threshold(rows, rule_levels, p)
            gain = mean_gain(rows, rule_levels, p, t)
            print(f"C={c}, min_words={min_words}: threshold {t}, mean gain over writers "
                  f"{gain:+.4f}")
            if best is None or gain > best[0]:
                best = (gain, c, min_words, t, p)
    _, C, MIN_WORDS, threshold, prob = best
    raised, n_exp = experience_checks(rows, rule_levels, prob, threshold)
    print(f"chosen C={C}, min_words={MIN_WORDS}, threshold {threshold} (budget {BUDGET:.3f} extra ordinary checks, "
          f"mean over writers); ketamine-experience texts raised to check: {raised} of {n_exp}")
    report = {}
    for writer in [*WRITERS, None]:
        f = figures(rows, rule_levels, prob, threshold, writer)
        name = writer or "ALL (pooled)"
        report[name] = f
        r, w = f["rules"], f["with"]
        print(f"{name:40s} n(c/u/o)={r['n']}  crisis reached {r['crisis_reached']:.3f} -> "
              f"{w['crisis_reached']:.3f}  urgent reached {r['urgent_reached']:.3f} -> "
              f"{w['urgent_reached']:.3f}  ordinary checks {r['ordinary_checks']:.3f} -> "
              f"{w['ordinary_checks']:.3f}")
    heads = {}
    verdicts = [safety.assess_rules(r[3]) for r in rows]
    confirmable = ["check" if safety.confirmable(v) else ("ask-only" if v.level == "check" else v.level)
                   for v in verdicts]
    for level in HEAD_LEVELS:
        head_prob = cross_validate(rows, x, rule_levels, positive=(level,), gate=False)
        t, gain = choose_head_threshold(rows, confirmable, head_prob, level)
        heads[level] = (t, head_prob)
        print(f"{level} head: threshold {t} (budget {ALERT_BUDGET:.3f} extra ordinary alerts), "
              f"pooled {level} recall gained from rules' checks {gain:+.3f}")
    if args.cv_only:
        return 0
    levels = np.array([r[1] for r in rows])
    keep = levels != "check"
    y = np.isin(levels, ["crisis", "urgent"]).astype(int)
    model = fit(x[keep], y[keep])
    coef = model.coef_[0]
    nonzero = [(int(i), round(float(coef[i]), 5)) for i in np.flatnonzero(coef)
               if round(float(coef[i]), 5) != 0.0]
    samples = [r[3] for r in rows[::37]]
    reference = model.predict_proba(matrix(samples))[:, 1]
    exported_heads, head_reference = {}, {}
    for level, (t, _) in heads.items():
        head = fit_head(x, rows, level)
        exported_heads[level] = export_head(head, t)
        head_reference[level] = [round(float(p), 6) for p in
                                 head.predict_proba(matrix(samples))[:, 1]]
    payload = {
        "featuriser": FEATURISER, "buckets": BUCKETS,
        "intercept": round(float(model.intercept_[0]), 6), "threshold": threshold, "min_words": MIN_WORDS,
        "trained_on": {w: files for w, files in WRITERS.items()},
        "n_rows": int(keep.sum()), "C": C, "class_weight": {"1": CLASS_WEIGHT[1]},
        "budget": BUDGET, "experience_raised_cv": [raised, n_exp],
        "cross_validation": {k: {s: {m: (list(v) if isinstance(v, tuple) else round(v, 4))
                                      for m, v in d.items()} for s, d in f.items()}
                             for k, f in report.items()},
        "reference": [[t, round(float(p), 6)] for t, p in zip(samples, reference, strict=True)],
        "head_reference": head_reference, "alert_budget": ALERT_BUDGET,
        "weights": nonzero,
        "heads": exported_heads,
    }
    MODEL_PATH.write_text(json.dumps(payload, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size / 1e6:.2f} MB, "
          f"{len(nonzero)} weights)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
