"""The opt-out detector (flows/optout.py) and its rules file, without the engine.

The rules were written from tests/data/optout_train.csv and tests/data/dev/optout_dev.csv;
round 3 added dev/optout_round3.csv and the two spent evaluation lists (optout_eval.csv,
optout_eval_v2.csv); the frozen evaluation list is only ever scored by `python -m bench optout`, never here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import optout as bench_optout
from flows import keywords, loader, optout

TRAIN_AND_DEV = ("train", "dev", "round3")


def test_shipped_rules_are_sound():
    assert optout.check() == []
    assert loader.check() == []


@pytest.mark.parametrize("text, outcome, lang", [
    ("STOP", "immediate", "en"),
    ("Stop please", "immediate", "en"),
    ("PARAR", "immediate", "es"),
    ("baja gracias", "immediate", "es"),
    ("stpo", "immediate", "en"),  # a swapped pair of letters
    ("unsubcribe", "immediate", "en"),  # a dropped letter
    ("I revoke my consent to receive texts", "immediate", "en"),
    ("wrong number", "immediate", "en"),
    ("not interested", "confirm", "en"),
    ("no me interesa", "confirm", "es"),
    ("stop only the mood texts", "setting", "en"),
    ("my sister won't stop texting me", "none", "en"),
    ("I quit vaping last month", "none", "en"),
    ("stop lol", "none", "en"),
    ("what happens if I text stop?", "none", "en"),
    # Someone else's behalf: the owner died or is in hospital.
    ("The person who had this phone passed away", "immediate", "en"),
    ("on behalf of my grandmother please remove her from this list", "immediate", "en"),
    ("she is in hospice", "confirm", "en"),
    ("My dad passed away last year and today was hard", "none", "en"),
    ("la persona de este número falleció", "immediate", "es"),
    # Indirect: immediate when the texts are named, asked about otherwise.
    ("I'm good without these", "immediate", "en"),
    ("I'll pass on these texts from now on", "immediate", "en"),
    ("I'm done with this", "confirm", "en"),
    ("I'm done with feeling guilty", "none", "en"),
    ("Ya terminé con esto", "confirm", "es"),
    ("Ya terminé con mi ex", "none", "es"),
    # Spanish single keywords and sentences.
    ("Desuscribir", "immediate", "es"),
    ("CANCELA", "immediate", "es"),
    ("quiero dejar de recibir textos", "immediate", "es"),
    ("Quiero dejar de fumar", "none", "es"),
    ("alta", "none", "en"),  # coming back is not a request to stop
    # Round 3: formal revocation in more forms, English and Spanish.
    ("I take back my consent for these texts", "immediate", "en"),
    ("You no longer have my permission to message this phone", "immediate", "en"),
    ("Retiro cualquier consentimiento previo", "immediate", "es"),
    ("No autorizo más mensajes a mi teléfono", "immediate", "es"),
    # Remove, cancel, indirect, relatives, typos, "no more" in Spanish.
    ("could you scrub my number from your records", "immediate", "en"),
    ("por fa saquen mi cel de su lista", "immediate", "es"),
    ("Quisiera cancelar la suscripción a los mensajes", "immediate", "es"),
    ("I'm bowing out", "immediate", "en"),
    ("ya no cuenten conmigo", "immediate", "es"),
    ("my son told me to text back and ask you to stop", "immediate", "en"),
    ("my wife asked me to stop drinking", "none", "en"),
    ("plz stop textn me", "immediate", "en"),
    ("ya no kiero mas textos", "immediate", "es"),
    ("ni un mensaje más por favor", "immediate", "es"),
    # The wider net asks; delight, stories and one kind do not.
    ("STOP I'm serious", "immediate", "en"),  # a capital STOP, then "I'm" with an apostrophe
    ("honestly the reminders should stop", "confirm", "en"),

    ("estos mensajes no me sirven", "confirm", "es"),
    ("Stop!! this is exactly what I needed today", "none", "en"),
    ("ya para, me vas a hacer llorar", "none", "es"),
    ('mi hijo me dijo "ya no me mandes tantos mensajes" y me dio risa', "none", "es"),
    ("ya no me manden los de caminar pero los del diario sí", "setting", "es"),
])
def test_outcomes_and_languages(text, outcome, lang):
    verdict = optout.classify(text)
    assert verdict.outcome == outcome, optout.explain(text)
    if outcome != "none":
        assert verdict.lang == lang


def test_spanish_opt_in_words():
    for text in ("ALTA", "alta por favor", "Volver", "sí", "darme de alta"):
        assert keywords.keyword(text) in (keywords.OPT_IN, keywords.YES), text
        assert keywords.is_spanish_opt_in(text), text
    for text in ("START", "yes", "alta presion hoy"):
        assert not keywords.is_spanish_opt_in(text), text


def test_real_words_are_not_read_as_typos():
    rules = optout.default_rules()
    assert optout.fold("shop step cancer massage", rules) == "shop step cancer massage"
    assert optout.fold("Stoo txting me!!", rules) == "stop texting me!!"


def test_two_uncertain_signals_make_a_clear_request():
    assert optout.classify("Stop.").outcome == "immediate"  # the whole message is STOP
    assert optout.classify("thanks for today. stop").outcome == "confirm"
    assert optout.classify("thanks for today. stop. leave me alone").outcome == "immediate"


def test_keep_answers():
    for text in ("no", "No, keep them", "keep them coming", "sigan por favor"):
        assert optout.is_keep_answer(text), text
    for text in ("no thanks", "no more", "yes", "stop"):
        assert not optout.is_keep_answer(text), text


def write_rules(tmp_path: Path, replace: dict[str, str]) -> Path:
    """A copy of the shipped definitions with optout.toml edited."""
    target = tmp_path / "definitions"
    shutil.copytree(loader.DEFINITIONS_DIR, target)
    path = target / "optout.toml"
    text = path.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return target


@pytest.mark.parametrize("old, new, problem", [
    ('outcome = "immediate"\nlang = "en"\npattern = \'\\bwrong',
     'outcome = "maybe"\nlang = "en"\npattern = \'\\bwrong', "outcome must be one of"),
    ("pattern = '^capsverb\\b'", "pattern = '^capsverb\\b{nosuchlist}'", "unknown word list"),
    ("pattern = '^capsverb\\b'", "pattern = '^capsverb(\\b'", "bad pattern"),
    ('examples = ["capsverb being so hard on myself"]', 'examples = ["being kind"]',
     "does not match its example"),
    ('text = "my ex won\'t stop texting me"\noutcome = "none"',
     'text = "my ex won\'t stop texting me"\noutcome = "immediate"', "expected immediate"),
])
def test_a_broken_rules_file_is_refused_by_flows_check(tmp_path, old, new, problem):
    directory = write_rules(tmp_path, {old: new})
    problems = loader.check(directory)
    assert any(problem in p for p in problems), problems
    with pytest.raises(optout.RulesError):
        optout.load(directory / "optout.toml")


def test_training_and_dev_lists_meet_the_targets():
    # A regression guard on the lists the rules were written from (not an evaluation).
    classify = bench_optout.detector("classify")
    for name in TRAIN_AND_DEV:
        result = bench_optout.score(bench_optout.read_list(bench_optout.LISTS[name]), classify)
        for figure, target in bench_optout.TARGETS.items():
            if figure.startswith("recall"):
                assert result[figure] >= target, (name, figure, result[figure])
            else:
                assert result[figure] <= target, (name, figure, result[figure])


def test_bench_never_prints_rows_of_the_frozen_list(tmp_path, monkeypatch, capsys):
    stand_in = tmp_path / "frozen.csv"
    stand_in.write_text("label,lang,kind,text\nrequest,en,direct,SENTINEL never shown\n"
                        "not_request,en,ordinary,SENTINEL stop texting me\n", encoding="utf-8")
    monkeypatch.setitem(bench_optout.LISTS, "frozen", stand_in)
    stand_in_v2 = tmp_path / "frozen2.csv"
    stand_in_v2.write_text("label,lang,kind,text\nrequest,es,spanish_keyword,SENTINEL PARAR\n"
                           "request,en,direct,SENTINEL stop\n", encoding="utf-8")
    monkeypatch.setitem(bench_optout.LISTS, "frozen2", stand_in_v2)
    assert bench_optout.main(["--lists", "dev,frozen,frozen2", "--misses", "--kinds"]) == 0
    out = capsys.readouterr().out
    assert "frozen (1+1)" in out and "frozen2 (2+0)" in out and "SENTINEL" not in out
    assert "frozen2: outcomes by kind" in out and "request/es/spanish_keyword" in out
    assert "dev: misses" in out and "frozen: misses" not in out and "frozen2: misses" not in out
