"""Safety detection: measured recall and false alarms, the hard cases, and the reply templates."""

from __future__ import annotations

import ast
import csv
import re
import sys
import tomllib
from pathlib import Path

import pytest

import flows.safety as safety
from flows.safety import Assessment, assess, reply_key
from flows.sms_text import problems

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TEMPLATES = ROOT / "flows" / "definitions" / "safety.toml"
SAMPLE_CONTACT = "Dr Rivera's office 555-010-0199"  # 30 characters, the longest we allow for

KEYS = ("safety.crisis", "safety.emergency", "safety.other_person", "safety.other_person.told",
        "safety.urgent",
        "safety.gentle", "safety.crisis.told", "safety.emergency.told", "safety.urgent.told",
        "safety.check", "safety.check_no", "safety.check_unclear", "safety.check_unclear.told",
        "safety.check_repeat", "safety.check_repeat.told", "safety.suspended",
        "safety.plan_hint", "safety.plan_none",
        *(f"safety.{kind}.es{told}" for kind in ("crisis", "emergency", "other_person", "urgent")
          for told in ("", ".told")))


def load(name: str) -> list[dict[str, str]]:
    """Rows of a labelled file in tests/data."""
    with open(DATA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def figures(rows: list[dict[str, str]]) -> dict[str, float]:
    """Recall per level and the false-alarm rate, the way the care team experiences them.

    A crisis counts as caught only when assessed as crisis; an urgent message is caught
    when assessed as urgent or crisis (the care team hears either way); a false alarm is
    a 'none' message assessed as crisis or urgent.
    """
    levels = {row["level"]: [] for row in rows}
    for row in rows:
        levels[row["level"]].append(assess(row["text"]).level)
    return {
        "crisis_recall": sum(got == "crisis" for got in levels["crisis"]) / len(levels["crisis"]),
        "urgent_recall": sum(got in ("crisis", "urgent") for got in levels["urgent"])
        / len(levels["urgent"]),
        "false_alarms": sum(got in ("crisis", "urgent") for got in levels["none"])
        / len(levels["none"]),
        "n_crisis": len(levels["crisis"]),
        "n_urgent": len(levels["urgent"]),
        "n_none": len(levels["none"]),
    }


def report(name: str, f: dict[str, float]) -> None:
    """Print the figures (visible with pytest -s)."""
    print(
        f"\n{name}: crisis recall {f['crisis_recall']:.3f} (n={f['n_crisis']}), "
        f"urgent recall {f['urgent_recall']:.3f} (n={f['n_urgent']}), "
        f"false alarms {f['false_alarms']:.3f} (n={f['n_none']})"
    )


# ---------------------------------------------------------------- measured figures


def test_corpus_recall_and_false_alarms():
    rows = load("safety_corpus.csv")
    f = figures(rows)
    report("corpus", f)
    # A corpus that shrank could pass trivially.
    assert len(rows) >= 320 and f["n_crisis"] >= 110 and f["n_urgent"] >= 70 and f["n_none"] >= 140
    assert f["crisis_recall"] >= 0.97
    assert f["urgent_recall"] >= 0.90
    assert f["false_alarms"] <= 0.03


def test_dev_batch_recall_and_false_alarms():
    """The blind training batch: rules were written from it, so it must stay nearly perfect."""
    rows = load("dev/safety_dev.csv")
    f = figures(rows)
    report("dev", f)
    assert f["crisis_recall"] >= 0.97 and f["urgent_recall"] >= 0.97
    assert f["false_alarms"] <= 0.02
    experience = [r["text"] for r in rows if r["category"] == "ketamine_experience"]
    assert experience and not any(assess(text).alert for text in experience)


def test_holdout_recall_and_false_alarms():
    """Messages nobody tuned the rules to."""
    f = figures(load("safety_holdout.csv"))
    report("holdout", f)
    assert f["crisis_recall"] >= 0.90
    assert f["false_alarms"] <= 0.08


def test_labelled_files_use_only_known_levels_and_categories():
    allowed = {
        "crisis": set(safety.CRISIS_ORDER),
        "urgent": set(safety.URGENT_ORDER),
        "check": set(safety.CHECK_CATEGORIES),
        "none": {"", "mention"},
    }
    for name in ("safety_corpus.csv", "safety_holdout.csv"):
        for row in load(name):
            assert row["category"] in allowed[row["level"]], row


# ---------------------------------------------------------------- hard cases


@pytest.mark.parametrize(
    "text",
    [
        "I'm not suicidal",
        "no thoughts of hurting myself",
        "I would never kill myself, never would",
        "I don't want to die, I just feel sad",
        "suicidal thoughts? no",
    ],
)
def test_negation_cancels_what_it_negates(text):
    assert assess(text) == Assessment("none", None, ())


def test_negation_does_not_reach_past_a_but():
    a = assess("I'm not suicidal but I keep thinking about pills")
    assert (a.level, a.category) == ("crisis", "suicide")


@pytest.mark.parametrize("text", ["no", "I'm fine", "No, I'm fine"])
def test_a_lone_no_or_im_fine_is_nothing(text):
    assert assess(text).level == "none"


@pytest.mark.parametrize(
    "text",
    [
        "this commute is killing me",
        "I could kill for a coffee",
        "dying to see the movie",
        "I'm dead tired",
        "that joke killed me",
        "I laughed so hard I couldn't breathe",
        "that meeting was so boring I wanted to die",
        "I worry way more than I should",
    ],
)
def test_idioms_are_not_alarms(text):
    assert not assess(text).alert


@pytest.mark.parametrize(
    "text",
    [
        "my uncle died by suicide years ago",
        "my friend tried to overdose last year",
        "I attempted suicide when I was 19",
        "I used to cut myself in high school",
    ],
)
def test_other_people_and_the_past_get_a_gentle_mention(text):
    a = assess(text)
    assert (a.level, a.category, a.gentle, a.alert) == ("none", "mention", True, False)
    assert reply_key(a) == "safety.gentle"


def test_the_past_in_one_clause_does_not_excuse_the_present():
    assert assess("i used to love painting but now i want to kill myself").level == "crisis"


def test_someone_else_in_danger_now_is_still_an_emergency():
    """An emergency happening to someone present gets the guidance for helping them."""
    a = assess("my husband is having a seizure")
    assert (a.level, a.category) == ("crisis", "third_party_emergency")
    assert a.alert and reply_key(a) == "safety.other_person"
    assert reply_key(assess("my partner took a whole bottle of pills")) == "safety.other_person"
    assert assess("i'm having a seizure i think").category == "medical_emergency"


@pytest.mark.parametrize(
    "text",
    [
        "ego death",
        "it felt like I died and came back",
        "I felt like I was dying and then peace",
        "I'm done",
        "done",
        "I let go of my old self",
        "I saw my own funeral and felt strangely peaceful",
    ],
)
def test_integration_language_is_not_a_crisis(text):
    assert assess(text).level == "none"


@pytest.mark.parametrize(
    "text",
    [
        "I want to die",
        "I don't want to be here anymore",
        "everyone would be better off without me",
        "I want to go to sleep and not wake up",
        "what's the point of going on",
        "this is my last message",
        "tell my kids I love them, goodbye",
    ],
)
def test_direct_and_indirect_suicidal_language_is_a_crisis(text):
    a = assess(text)
    assert (a.level, a.category) == ("crisis", "suicide")
    assert reply_key(a) == "safety.crisis"


@pytest.mark.parametrize(
    "text",
    ["kms", "i wanna die", "I want to unalive myself", "i should just kys", "I WANT TO DIE",
     "I don\u2019t want to be here anymore", "thinkin bout killin myself"],
)
def test_texting_spellings_and_curly_quotes(text):
    assert assess(text).level == "crisis"


def test_a_crisis_sentence_buried_in_a_long_journal_entry():
    entry = (
        "Session notes: lots of colours, felt like floating over water, remembered my dad "
        "teaching me to fish. I want to let go of the anger. " * 8
        + "But if I'm honest everyone would be better off without me. "
        + "Small action this week: walk daily and call my sister. " * 10
    )[:1600]
    assert len(entry) == 1600 and "without me" in entry
    assert assess(entry).level == "crisis"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # A bare pair of numbers alerts only at 180/120 (it may be something else)...
        ("179/119", "none"),
        ("180/119", "urgent"),
        ("179/120", "urgent"),
        ("190 over 125", "urgent"),
        # ...a reading reported as blood pressure alerts from 160/100 (safety_rules.toml).
        ("bp 159/99", "none"),
        ("bp 160/95", "urgent"),
        ("bp 150/100", "urgent"),
        ("my blood pressure is 180/120", "urgent"),
        ("pounding headache and my bp cuff says 168/104", "urgent"),
        ("blood pressure 135 over 85", "none"),
        ("session is on 10/12 at 3", "none"),
        ("8/10 today", "none"),
    ],
)
def test_blood_pressure_thresholds(text, level):
    a = assess(text)
    assert a.level == level
    assert a.category == ("blood_pressure" if level == "urgent" else None)


@pytest.mark.parametrize(
    ("text", "level", "category"),
    [
        ("I have chest pain", "crisis", "medical_emergency"),
        ("his face is drooping and his speech is slurred", "crisis", "third_party_emergency"),
        ("I took the whole bottle", "crisis", "overdose"),
        ("I cut myself tonight", "crisis", "self_harm"),
        ("it burns when i pee", "urgent", "bladder"),
        ("still seeing things two days later", "urgent", "dissociation"),
        ("I took a double dose", "urgent", "extra_dose"),
        ("had some wine before my dose", "urgent", "mixing"),
        ("took a xanax after the session", "urgent", "mixing"),
        ("I'm craving it", "urgent", "craving"),
    ],
)
def test_each_category_is_recognised(text, level, category):
    a = assess(text)
    assert (a.level, a.category) == (level, category)
    assert a.alert and not a.gentle
    assert a.matched, "an alert must say which phrases triggered it"


def test_precedence_crisis_over_urgent_over_mention():
    assert assess("it burns when I pee and I want to die").level == "crisis"
    a = assess("my uncle died by suicide years ago. also it burns when I pee")
    assert (a.level, a.category) == ("urgent", "bladder")
    a = assess("I want to die. Now my chest hurts and I can't breathe")
    assert a.category == "medical_emergency"
    assert reply_key(a) == "safety.emergency"


def test_matched_names_the_phrase_for_clinicians():
    assert "want to die" in assess("honestly I want to die").matched


@pytest.mark.parametrize(
    ("assessment", "key"),
    [
        (Assessment("crisis", "suicide", ("x",)), "safety.crisis"),
        (Assessment("crisis", "self_harm", ("x",)), "safety.crisis"),
        (Assessment("crisis", "medical_emergency", ("x",)), "safety.emergency"),
        (Assessment("crisis", "overdose", ("x",)), "safety.emergency"),
        (Assessment("urgent", "bladder", ("x",)), "safety.urgent"),
        (Assessment("none", "mention", ("x",)), "safety.gentle"),
        (Assessment("none", None, ()), None),
    ],
)
def test_reply_key(assessment, key):
    assert reply_key(assessment) == key


@pytest.mark.parametrize("text", ["", "   ", "yes", "skip", "fri 6pm", "3", "stop texting me"])
def test_ordinary_replies_are_nothing(text):
    assert assess(text) == Assessment("none", None, ())


# ---------------------------------------------------------------- templates


def templates() -> dict[str, str]:
    """The clinician-reviewed safety messages."""
    with open(TEMPLATES, "rb") as f:
        return tomllib.load(f)["messages"]


def test_templates_exist_and_fit_in_two_gsm7_segments():
    messages = templates()
    assert set(messages) == set(KEYS)
    for key, text in messages.items():
        assert set(re.findall(r"{(\w*)}", text)) <= {"clinic_contact", "care_team",
                                                     "care_team_es"}, key
        rendered = text.format(clinic_contact=SAMPLE_CONTACT,
                               care_team=f"your care team at {SAMPLE_CONTACT}",
                               care_team_es=f"tu equipo de atencion al {SAMPLE_CONTACT}")
        assert problems(rendered) == [], key
        assert "ketamine" not in rendered.casefold(), key


def test_crisis_template_gives_every_way_to_get_help():
    messages = templates()
    for must in ("988", "741741", "HOME", "911"):
        assert must in messages["safety.crisis"] and must in messages["safety.crisis.told"]
    # In Spanish: 988's Spanish line (press 2, or text AYUDA) and 911.
    for must in ("988", "oprime 2", "AYUDA", "911"):
        assert must in messages["safety.crisis.es"] and must in messages["safety.crisis.es.told"]
    # "has been told" only in the variant the host sends after a page was accepted.
    for key, text in messages.items():
        told = "ya fue avisado" if ".es" in key else "has been told"
        assert (told in text) == key.endswith(".told"), key


def test_emergency_template_puts_911_first():
    text = templates()["safety.emergency"]
    assert "911" in text and "988" in text and text.index("911") < text.index("988")


def test_urgent_and_gentle_templates():
    messages = templates()
    for key in ("safety.urgent", "safety.urgent.told"):
        # No "prescriber" or "medication" on a lock screen; reads well with or without a
        # contact ("your care team" / "your care team at 555-0100", never "at your care team").
        assert "prescriber" not in messages[key] and "medication" not in messages[key]
        assert "911" in messages[key] and "{care_team}" in messages[key]
    assert "988" in messages["safety.gentle"]


def test_template_file_says_it_must_never_be_generated():
    head = TEMPLATES.read_text(encoding="utf-8").splitlines()[:5]
    assert any("never be generated" in line for line in head)


# ---------------------------------------------------------------- purity and the speed-up


def test_safety_imports_only_the_standard_library():
    for module in ("safety", "safety_rules", "safety_text", "safety_phrases", "safety_sheet",
                   "safety_model"):
        tree = ast.parse((ROOT / "flows" / f"{module}.py").read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, "no relative imports"
                imported.add(node.module)
        outside = {name for name in imported if name.split(".")[0] not in
                   set(sys.stdlib_module_names) | {"__future__"}}
        assert outside <= {"flows", "flows.safety_rules", "flows.safety_phrases", "flows.safety_model",
                           "flows.safety_text"}, (module, outside)


def test_the_word_gates_never_hide_a_match():
    """Phrases only run where the text holds a word they need; check that loses nothing.

    Every phrase is run the slow way (on its own, over the whole text) against every
    labelled message the rule authors may read; each place it matches must also be
    found by the fast path.
    """
    texts = [row["text"] for name in ("safety_corpus.csv", "safety_holdout.csv",
                                      "dev/safety_dev.csv") for row in load(name)]
    phrase_lists = [compiled.phrases for compiled in safety._COMPILED]
    assert len(phrase_lists) == len(safety.RULESET.rules)
    slow = [[(source, re.compile(r"\b(?:" + source + r")\b")) for source, _l, _g in p.entries]
            for p in phrase_lists]
    for text in texts:
        ctx = safety._Context(text)
        for phrases, patterns in zip(phrase_lists, slow, strict=True):
            fast = {m.start() for m in phrases.finditer(ctx)}
            for source, pattern in patterns:
                for m in pattern.finditer(ctx.text):
                    assert m.start() in fast, (source, text)
