"""The learned safety net: stdlib scores equal the trained model's, it only ever raises a
`none` to `check`, it leaves the session's experience alone, and its weights file is checked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bench import safety as bench_safety
from bot.config import Settings
from bot.storage.models import Alert
from flows import safety, safety_model
from flows.engine import Engine
from flows.safety import CHECK, CRISIS, NONE, URGENT, assess, assess_rules, reply_key
from tests.conftest import Phone
from tests.test_conversation import enroll
from tests.test_safety_net import pages

DATA = Path(__file__).resolve().parent / "data"
RAISED = "my bladder burns and theres blood"
"""A text no rule catches that the learned stage asks about."""
CONFIRMED = "i have been looking at the rope in the garage a lot"
"""A text the rules only ask about (a check) that the crisis head confirms."""


def _rows(name: str) -> list[tuple[str, str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as fh:
        return [(r["level"], r["category"], r["text"]) for r in csv.DictReader(fh)]


def test_stdlib_scores_equal_scikit_learns_for_the_same_features():
    # Fit a model here with scikit-learn on the trainer's feature matrix, export it the way
    # the trainer does, and score unseen texts both ways.
    import numpy as np  # a test dependency (scikit-learn): never skipped
    from sklearn.linear_model import LogisticRegression

    from tools import train_safety_model as trainer

    rows = [r for r in _rows("dev/safety_dev.csv") if r[0] != "check"]
    train, unseen = rows[:250], [r[2] for r in rows[250:]]
    y = [int(level in ("crisis", "urgent")) for level, _, _ in train]
    fitted = LogisticRegression(C=4.0, max_iter=2000).fit(
        trainer.matrix([t for _, _, t in train]), y)
    coef = fitted.coef_[0]
    model = safety_model.SafetyModel(trainer.BUCKETS, float(fitted.intercept_[0]),
                                     {int(i): float(coef[i]) for i in np.flatnonzero(coef)},
                                     0.5, {})
    expected = fitted.predict_proba(trainer.matrix(unseen))[:, 1]
    got = [model.probability(safety.normalise(t)) for t in unseen]
    assert len(unseen) > 40
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-9


def test_the_shipped_weights_reproduce_the_trainers_reference_scores():
    assert len(safety.MODEL.meta["reference"]) >= 50
    assert safety.check_model() == []
    # And the check can fail: a shifted reference is reported.
    text, p = safety.MODEL.meta["reference"][0]
    safety.MODEL.meta["reference"][0] = [text, min(1.0, p + 0.01)]
    try:
        assert len(safety.check_model()) == 1
    finally:
        safety.MODEL.meta["reference"][0] = [text, p]


def test_a_text_no_rule_catches_gets_the_safety_question_from_the_stage():
    assert assess_rules(RAISED).level == NONE
    assert safety.learned_probability(RAISED) >= safety.learned_threshold()
    a = assess(RAISED)
    assert a.level == CHECK and a.rules == ("learned_stage",) and not a.alert
    assert reply_key(a) is None
    assert assess(RAISED, learned=False).level == NONE


def test_the_stage_never_lowers_and_alerts_only_on_a_rules_check():
    # Every labelled text of two writers: a rule's crisis or urgent is kept as is; a none
    # becomes at most a check; only a check the rules gave (risk words) may become an alert,
    # and then only by a head's confirmation, named in the verdict's rules.
    raised = confirmed = 0
    for _, _, text in _rows("safety_eval_v2.csv") + _rows("dev/safety_round2.csv"):
        rules, full = assess_rules(text), assess(text, learned=True)
        if rules.level in (CRISIS, URGENT):
            assert full == rules, text
        elif rules.level == CHECK:
            assert full == rules or (full.alert and full.rules[-1] == "learned_confirm"), text
            confirmed += full != rules
        else:
            assert full.level in (NONE, CHECK), text
            raised += full.level == CHECK
    assert raised > 0 and confirmed > 0


def test_a_head_confirms_a_rules_check_and_nothing_else():
    model = safety.MODEL
    assert set(model.heads) == {"crisis"}
    text = CONFIRMED
    rules = assess_rules(text)
    assert rules.level == CHECK
    got = assess(text)
    assert got.level == CRISIS and got.category == "learned_crisis"
    assert got.rules == rules.rules + ("learned_confirm",)
    assert reply_key(got) == "safety.crisis"
    assert assess(text, learned=False) == rules
    # A check the stage raised by itself is never promoted, however sure a head is.
    stage_check = safety.Assessment(CHECK, "possible_risk", (), None, ("learned_stage",))
    assert safety.raise_with_model(text, stage_check) is stage_check
    # A question about lethal amounts is only ever asked (the issue's `check`).
    question = "how many of my pills would it take"
    assert safety.MODEL.head_probability("crisis", safety.normalise(question)) >= \
        safety.MODEL.heads["crisis"].threshold
    assert assess(question).level == CHECK


def test_a_confirmed_check_alerts_the_care_team_through_the_webhook(
        client, services, phone: Phone, sender, db):
    enroll(client, services, phone)
    texts = phone.text(CONFIRMED)
    assert any("988" in t and "YES or NO" not in t for t in texts), texts
    with db.session() as s:
        alerts = s.scalars(select(Alert)).all()
    assert [a.level for a in alerts] == ["crisis"]
    assert pages(sender), "the care team is paged"


@pytest.mark.parametrize("text", [
    "had full ego death today, felt like i died and came back",
    "felt like i died but in a good way? like letting go",
    "saw my own funeral during the session but it felt peaceful, not scary",
    "felt like being reborn honestly",
    "my body disappeared and it was just awareness",
    "I honestly thought I was going to die during the session, then it turned into peace",
    "the k hole was intense, i dissolved completely and then i was back on the couch",
    "during the journey i watched myself die and it was beautiful",
])
def test_ketamine_experience_language_is_not_checked(text):
    assert assess(text).level == NONE, (text, safety.learned_probability(text))


def test_the_experience_texts_of_every_writer_are_rarely_checked():
    texts = [t for name in ("safety_corpus.csv", "safety_eval.csv", "safety_eval_v2.csv",
                            "dev/safety_dev.csv")
             for _, cat, t in _rows(name) if bench_safety.is_experience(cat)]
    checked = sum(assess(t).level == CHECK and assess_rules(t).level == NONE for t in texts)
    assert len(texts) > 30 and checked <= len(texts) // 20


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(featuriser="something-else"), "featuriser"),
    (lambda d: d.update(threshold=1.5), "out of range"),
    (lambda d: d.update(weights=[[10 ** 9, 0.5]]), "out of range"),
    (lambda d: d.pop("intercept"), "intercept"),
])
def test_a_broken_weights_file_is_refused(tmp_path, change, message):
    data = json.loads(safety_model.MODEL_PATH.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "safety_model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(safety_model.SafetyModelError, match=message):
        safety_model.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(safety_model.SafetyModelError):
        safety_model.load(path)


def test_flows_check_reports_the_learned_stage(app):
    result = app.test_cli_runner().invoke(args=["flows", "check"])
    assert result.exit_code == 0, result.output
    assert f"learned stage of {len(safety.MODEL.weights)} weights" in result.output
    assert "reference scores checked" in result.output


def test_the_review_sheet_explains_the_learned_stage(app, tmp_path):
    out = tmp_path / "sheet.md"
    result = app.test_cli_runner().invoke(args=["flows", "safety-sheet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    sheet = out.read_text(encoding="utf-8")
    assert "## The learned safety net" in sheet
    assert f"{safety.MODEL.threshold:.3f}" in sheet
    assert "safety_eval_v2.csv" in sheet and "never alerts" in sheet
    assert "held-out writer" in sheet


def test_the_setting_turns_the_stage_on_and_off(services):
    assert Settings.from_env({"SAFETY_LEARNED_STAGE": "0"}).safety_learned_stage is False
    assert Settings.from_env({}).safety_learned_stage is True
    defs = services.definitions
    assert Engine(defs, learned_safety=False).assess(RAISED).level == NONE
    assert Engine(defs, learned_safety=True).assess(RAISED).level == CHECK
    assert services.engine.assess(RAISED).level == (
        CHECK if services.settings.safety_learned_stage else NONE)


def test_a_text_the_stage_raises_gets_the_question_and_pages_nobody_through_the_webhook(
        client, services, phone: Phone, sender, db):
    enroll(client, services, phone)
    texts = phone.text(RAISED)
    assert services.settings.safety_learned_stage
    assert any("YES or NO" in t and "988" in t for t in texts), texts
    assert pages(sender) == []
    with db.session() as s:
        assert s.scalars(select(Alert)).all() == []


def test_bench_safety_prints_figures_with_and_without_the_stage(capsys):
    assert bench_safety.main(["--sets", "holdout", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for figure in ("rules only", "rules + learned stage", "urgent reached",
                   "learned stage alone (learned_probability)", "learned: changed",
                   "checks on ketamine-experience texts"):
        assert figure in out
