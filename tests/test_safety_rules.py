"""Safety rules as reviewable data: levels, the check tier, normalisation, the rules file,
the review sheet, and an emergency happening to someone else through the real webhook."""

from __future__ import annotations

import tomllib

import pytest
from sqlalchemy import select

from bench import safety as bench_safety
from bot.storage.models import Alert
from flows import safety, safety_rules
from flows.safety import CHECK, CRISIS, NONE, URGENT, assess, reply_key
from flows.safety_phrases import Phrases
from tests.conftest import Phone
from tests.test_conversation import enroll
from tests.test_safety_net import pages

# ---------------------------------------------------------------- levels


def test_levels_are_exactly_four_strings():
    assert (CRISIS, URGENT, CHECK, NONE) == ("crisis", "urgent", "check", "none")
    for text in ("i want to die", "my bp is 190/125", "whats the point honestly", "ok"):
        assert assess(text).level in {CRISIS, URGENT, CHECK, NONE}


@pytest.mark.parametrize("text", [
    # The companion safety-path work relies on these two asking, not alerting.
    "sometimes i wonder if everyone would be better off if i just disappeared",
    "how many of my sleeping pills would it take to not wake up",
    "what's a lethal dose of tylenol",
    "i think about death a lot lately",
    "s u i c i d e",
])
def test_unclear_risk_gets_the_safety_question_not_silence(text):
    a = assess(text)
    assert a.level == CHECK and a.check and not a.alert
    assert reply_key(a) is None  # the host asks the safety question itself


@pytest.mark.parametrize("text", [
    "had full ego death today, felt like i died and came back",
    "felt like i died but in a good way? like letting go",
    "i think i met death and it was kind?? very weird session",
    "saw my own funeral during the session but it felt peaceful, not scary",
    "felt like being reborn honestly",
    "my body disappeared and it was just awareness",
    "I honestly thought I was going to die during the session, then it turned into peace",
    "I'm done",
])
def test_ketamine_experience_language_never_alerts(text):
    assert not assess(text).alert, text


@pytest.mark.parametrize("text, level, category", [
    ("planning to end things this weekend", CRISIS, "suicide"),
    ("i picked a date. the 14th. just wanted someone to know", CRISIS, "suicide"),
    ("gave my cat to my sister today. thank u for everything. goodbye", CRISIS, "suicide"),
    ("i attempted again on friday", CRISIS, "suicide"),
    ("my roommate cut herself really bad theres blood everywhere", CRISIS,
     "third_party_emergency"),
    ("the voice says i need to kill my neighbor", CRISIS, "harm_others"),
    ("i cant pee. been trying all morning", URGENT, "bladder"),
    ("heart rate is 150 sitting on the couch", URGENT, "heart"),
    ("i blacked out for a few seconds earlier", URGENT, "fainting"),
    ("the tv is talking directly to me", URGENT, "psychosis"),
    ("smoked weed right after dosing", URGENT, "mixing"),
    ("my bp was one eighty five over one twenty", URGENT, "blood_pressure"),
])
def test_categories_the_issue_names(text, level, category):
    a = assess(text)
    assert (a.level, a.category) == (level, category), a


@pytest.mark.parametrize("text", [
    "my therapist asked if i was suicidal and i said no, which is true",
    "read that ketamine can reduce suicidal thoughts fast, is that true?",
    "i used to want to die but not anymore. this treatment helped",
    "listening to kill this love on repeat lol",
    "my phone died so i missed the reminder",
    "i could murder a burger rn",
    "my heart was racing a little during the session but it settled",
])
def test_scoping_keeps_ordinary_texts_quiet(text):
    assert assess(text).level == NONE, assess(text)


# ---------------------------------------------------------------- how people type


@pytest.mark.parametrize("text", [
    "i want to k1ll mys3lf", "killmyself", "i want to kill my self", "wanna unalive myslef",
    "im gonna k.m.s", "thinking about su1c1de again", "i just want to d!e",
    "gonna end my l1fe", "i want to diiiie", "I’m going to kill myself", "IM SUICIDAL",
    "thinking about s*icide a lot", "sewer slide is looking real good rn", "kms fr this time",
    "i want to kil myself tonight",
])
def test_spellings_people_use_are_still_a_crisis(text):
    assert assess(text).level == CRISIS, (text, safety.normalise(text))


def test_emoji_that_carry_meaning_become_words():
    assert "pills" in safety.normalise("\U0001F48A\U0001F48A goodbye")
    assert assess("\U0001F48A\U0001F48A\U0001F48A goodbye").level in (CHECK, CRISIS)
    assert assess("lmao im dead \U0001F480").level == NONE


def test_typo_repair_leaves_ordinary_words_alone():
    assert safety.normalise("i'm willing to try, the fridge is overdone") == \
        "i'm willing to try, the fridge is overdone"


# ---------------------------------------------------------------- rules as data


def test_every_rule_has_a_description_and_examples_that_hold():
    assert safety.check_examples() == []
    for rule in safety.RULESET.rules:
        assert rule.description and rule.examples, rule.id


def _data() -> dict:
    return tomllib.loads(safety_rules.RULES_FILE.read_text(encoding="utf-8"))


def test_the_loader_rejects_a_malformed_rule():
    data = _data()
    data["rule"].append({"id": "broken", "level": "severe", "category": "nope",
                         "patterns": ["(unclosed"], "examples": []})
    rules, problems = safety_rules.parse(data)
    assert rules is None
    text = "\n".join(problems)
    for expected in ("level must be one of", "unknown category", "does not compile",
                     "needs at least one example", "plain-language description"):
        assert expected in text


def test_an_example_the_rule_misses_or_a_counter_example_it_hits_is_reported():
    rule = safety_rules.Rule(
        "demo", CRISIS, "suicide", "demo", (r"want to vanish",), frozenset({"negated"}),
        frozenset(), frozenset(), frozenset(), None,
        ("i want to disappear",), ("i want to vanish into the crowd at the concert",))
    problems = safety.check_examples([safety._Compiled(rule, Phrases(*rule.patterns))])
    assert len(problems) == 2
    assert "example not matched" in problems[0] and "counter-example matched" in problems[1]


def test_flows_check_reports_the_safety_rules(app):
    result = app.test_cli_runner().invoke(args=["flows", "check"])
    assert result.exit_code == 0, result.output
    assert f"{len(safety.RULESET.rules)} safety rules" in result.output


def test_safety_sheet_lists_every_rule_with_its_examples(app, tmp_path):
    out = tmp_path / "sheet.md"
    result = app.test_cli_runner().invoke(args=["flows", "safety-sheet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    sheet = out.read_text(encoding="utf-8")
    for rule in safety.RULESET.rules:
        assert f"{rule.id} ({rule.level}, {rule.category})" in sheet
        assert rule.description in sheet
        assert rule.examples[0] in sheet
    assert "Reviewed by" in sheet


# ---------------------------------------------------------------- through the webhook


def test_someone_else_in_danger_gets_help_for_them_and_pages_the_team(
        client, services, phone: Phone, sender, db):
    enroll(client, services, phone)
    texts = phone.text("my friend took a bunch of pills and is barely responsive")
    assert "911" in texts[0] and "someone with you" in texts[0]
    assert len(pages(sender)) == 1
    with db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert (alert.level, alert.category) == ("crisis", "third_party_emergency")


def test_a_check_text_raises_no_alert_and_no_error(client, services, phone: Phone, sender, db):
    enroll(client, services, phone)
    texts = phone.text("sometimes i wonder if everyone would be better off if i just disappeared")
    assert texts is not None
    assert pages(sender) == []
    with db.session() as s:
        assert s.scalars(select(Alert)).all() == []


# ---------------------------------------------------------------- the bench


def test_bench_safety_reports_both_figures_on_the_rule_authors_sets(capsys):
    assert bench_safety.main(["--sets", "corpus,dev", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for figure in ("crisis recall (crisis)", "crisis reached (crisis or check)",
                   "urgent recall (urgent or crisis)", "alerts on ordinary texts",
                   "checks on ordinary texts", "time per text (us)", "expected/category"):
        assert figure in out
    assert "== corpus" in out and "== dev" in out


# ---------------------------------------------------------------- round 2: kinds and the net


@pytest.mark.parametrize("text, level, category", [
    # A method being set up, a goodbye with arrangements, an attempt in the last days.
    ("im sitting in the garage with the engine on", CRISIS, "suicide"),
    ("my brother is in the garage with the car running and the door locked", CRISIS,
     "third_party_emergency"),
    ("left the passwords and the life insurance papers for my wife in the top drawer. its time",
     CRISIS, "suicide"),
    ("just got discharged from psych after my attempt monday", CRISIS, "suicide"),
    ("my arms are full of fresh cuts", CRISIS, "self_harm"),
    ("took every single one of my lithium just now", CRISIS, "overdose"),
    # Lay words for the urgent side effects.
    ("havent peed since last night and my belly hurts", URGENT, "bladder"),
    ("the toilet was red after i went", URGENT, "bladder"),
    ("i keep hearing music nobody else hears", URGENT, "psychosis"),
    ("i feel like i cant cope without it now", URGENT, "craving"),
])
def test_rules_by_kind_catch_new_wordings(text, level, category):
    a = assess(text)
    assert (a.level, a.category) == (level, category), (text, a)


@pytest.mark.parametrize("text", [
    "you were all kind to me. goodbye",
    "filling the tub now. i have the blades",
    "every night i pray god takes me in my sleep",
    "i want you to know it's nobody's fault, especially not yours",
])
def test_the_check_net_asks_when_no_rule_holds(text):
    # The rules alone ask; the learned stage's crisis head may confirm the net's check as a
    # crisis (flows.safety.CONFIRMABLE_RULES), never lower it.
    a = assess(text, learned=False)
    assert a.level == CHECK and "check_net" in a.rules and not a.alert
    assert reply_key(a) is None
    full = assess(text)
    assert full == a or (full.level == CRISIS and full.rules == a.rules + ("learned_confirm",))


@pytest.mark.parametrize("text", [
    "the bridge walk tonight was lovely with my wife",
    "bought rope for the tomato plants",
    "i cut the cake and said goodbye to my coworker",
    "my plan is to walk every morning this week",
    "goodbye for now, talk tomorrow",
    "felt my self disappear and merge with everything, then came back",
    "I'm done",
])
def test_the_check_net_leaves_ordinary_and_session_texts_alone(text):
    assert assess(text).level == NONE, (text, safety.net_score(text))


def test_the_check_net_never_lowers_a_rule_verdict():
    # Risk words of many kinds in a text a rule already calls a crisis: still a crisis.
    text = "goodbye everyone, i have the pills and the rope and i'm going to kill myself tonight"
    assert safety.net_score(text)[0] >= safety.RULESET.net.threshold
    assert assess(text).level == CRISIS


def test_the_loader_rejects_a_malformed_check_net():
    data = _data()
    data["net"]["threshold"] = 0
    data["net"]["concepts"]["broken"] = {"weight": "high", "patterns": ["(unclosed"],
                                         "only_with": ["nothing"]}
    rules, problems = safety_rules.parse(data)
    assert rules is None
    text = "\n".join(problems)
    for expected in ("net.threshold", "weight must be", "bad pattern", "only_with"):
        assert expected in text


def test_safety_sheet_shows_the_check_net(app, tmp_path):
    out = tmp_path / "sheet.md"
    result = app.test_cli_runner().invoke(args=["flows", "safety-sheet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    sheet = out.read_text(encoding="utf-8")
    assert "The check net" in sheet
    for concept in safety.RULESET.net.concepts:
        assert f"- {concept.name}: weight {concept.weight}" in sheet
    assert safety.RULESET.net.examples[0] in sheet


def test_a_net_check_through_the_webhook_asks_and_pages_nobody_without_the_learned_stage(
        tmp_path, db, clock, sender, client_for):
    from bot.services import build_services
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, db.url, safety_learned_stage=False)
    services = build_services(settings, clock=clock, sender=sender, db=db)
    client = client_for(services)
    phone = Phone(client)
    enroll(client, services, phone)
    texts = phone.text("you were all kind to me. goodbye")
    assert any("YES or NO" in t for t in texts), texts
    assert pages(sender) == []
    with db.session() as s:
        assert s.scalars(select(Alert)).all() == []


def test_a_method_being_set_up_pages_the_team_through_the_webhook(
        client, services, phone: Phone, sender, db):
    enroll(client, services, phone)
    texts = phone.text("im sitting in the garage with the engine on")
    assert "988" in " ".join(texts)
    assert len(pages(sender)) == 1
    with db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert (alert.level, alert.category) == ("crisis", "suicide")


# ---------------------------------------------------------------- Spanish


@pytest.mark.parametrize("text, key", [
    ("me quiero morir", "safety.crisis.es"),
    ("ya no quiero vivir, mi familia estaria mejor sin mi", "safety.crisis.es"),
    ("me tome todas mis pastillas", "safety.emergency.es"),
    ("mi hermano tomo muchas pastillas y no responde", "safety.other_person.es"),
    ("no puedo orinar desde ayer", "safety.urgent.es"),
    ("I want to die. me quiero morir", "safety.crisis"),  # an English rule too: English
])
def test_spanish_texts_are_caught_and_answered_in_spanish(text, key):
    a = assess(text)
    assert a.alert and reply_key(a) == key


def test_every_spanish_reply_exists_with_its_told_variant(services):
    messages = services.definitions.messages
    spanish = [r for r in safety.RULESET.rules if r.lang == "es"]
    assert spanish
    for rule in spanish:
        key = safety.RULESET.categories[rule.category].reply_key + ".es"
        assert key in messages and key + ".told" in messages, rule.id


def test_a_spanish_crisis_through_the_webhook_gets_spanish_words_and_pages(
        client, services, phone: Phone, sender, db):
    enroll(client, services, phone)
    texts = phone.text("ya no aguanto vivir, me quiero morir")
    reply = " ".join(texts)
    assert "AYUDA al 988" in reply and "oprime 2" in reply, texts
    assert "ya fue avisado" in reply  # the page was accepted, so it says so
    assert len(pages(sender)) == 1
    with db.session() as s:
        assert [a.level for a in s.scalars(select(Alert))] == ["crisis"]
