"""Global keywords: whole-message commands, the STOP family and plain opt-out requests."""

from __future__ import annotations

import pytest

from flows import keywords, optout
from flows.keywords import is_opt_out, keyword, normalize, pause_days

STOP_FAMILY = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]


@pytest.mark.parametrize("word", STOP_FAMILY)
@pytest.mark.parametrize("shape", ["{}", "{}.", "{}!", "  {}  ", "{}?!"])
def test_stop_family_in_any_case_with_trailing_punctuation(word, shape):
    for cased in (word, word.lower(), word.title()):
        text = shape.format(cased)
        assert keyword(text) == keywords.OPT_OUT, text
        assert is_opt_out(text), text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("done", keywords.DONE),
        ("Done!", keywords.DONE),
        ("I'm done.", keywords.DONE),
        ("I\u2019m done", keywords.DONE),  # a phone's curly apostrophe
        ("Done \U0001f64f", keywords.DONE),  # an emoji after the word
        ("ALL DONE", keywords.DONE),
        ("help", keywords.HELP),
        ("?", keywords.HELP),
        ("Info", keywords.HELP),
        ("start", keywords.OPT_IN),
        ("UNSTOP", keywords.OPT_IN),
        ("journal", keywords.JOURNAL),
        ("my notes", keywords.JOURNAL),
        ("skip", keywords.SKIP),
        ("Next.", keywords.SKIP),
        ("pause", keywords.PAUSE),
        ("PAUSE 5", keywords.PAUSE),
        ("pause 5 days", keywords.PAUSE),
        ("resume", keywords.RESUME),
        ("time zone", keywords.TIMEZONE),
        ("bedtime", keywords.BEDTIME),
        ("therapist", keywords.THERAPIST),
        ("session", keywords.SESSION),
        ("intention", keywords.INTENTION),
        ("FINISHED", keywords.FINISHED),
        ("delete", keywords.DELETE),
        ("Yes", keywords.YES),
        ("yep!", keywords.YES),
        ("ok", keywords.YES),
        ("No", keywords.NO),
        ("not yet", keywords.NO),
        ("\uff33\uff34\uff2f\uff30", keywords.OPT_OUT),  # full-width letters fold to STOP
    ],
)
def test_whole_message_keywords(text, expected):
    assert keyword(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I'm done with my old job",
        "done and dusted, it was a lot",
        "I want to stop drinking",
        "help me understand what came up",
        "the end of the session was calm",
        "yes, and I felt my mother there",
        "pause for a moment",
        "",
        None,
        "   ",
    ],
)
def test_keyword_inside_a_sentence_is_free_text(text):
    assert keyword(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "Please stop texting me!",
        "stop texting me",
        "stop messaging us",
        "stop texting",
        "stop sending these texts",
        "no more messages",
        "No more texts please",
        "unsubscribe me",
        "don't text me again",
        "Don\u2019t message me",
        "do not contact me",
        "opt me out",
        "remove me",
        "please remove me from the list.",
        "take me off your list",
        "please stop",
        "Stop please",
        "stop it!",
    ],
)
def test_plain_language_requests_are_opt_outs(text):
    assert is_opt_out(text)


@pytest.mark.parametrize(
    "text",
    [
        "I want to stop drinking",
        "I want to stop texting my ex at night",
        "stop sending angry emails to my boss",
        "the session helped remove me from old patterns",
        "take me off autopilot",
        "I unsubscribed from my gym",
        "I keep telling myself to stop",
        "Stop drinking is the goal",
        "STOPPING was the hardest part",
        "done",
        "",
        None,
    ],
)
def test_stop_inside_other_sentences_is_not_an_opt_out(text):
    assert not is_opt_out(text)


@pytest.mark.parametrize(
    "text", ["Stop. I can't do this", "stop! leave me alone", "UNSUBSCRIBE now", "\"STOP\" please",
             "STOP. Leave me alone"])
def test_leading_stop_with_words_aimed_at_the_bot_is_an_opt_out(text):
    assert is_opt_out(text)
    assert keyword(text) is None  # not a whole-message command: the rest still matters


@pytest.mark.parametrize(
    "text", ["STOP I want to die", "STOP being so hard on myself is what I heard today",
             "STOP comparing myself to others. That came up a lot"])
def test_capital_stop_before_a_sentence_about_something_else_asks_first(text):
    # Issue 10, item 7: neither silently opted out nor ignored; the engine asks once.
    assert not is_opt_out(text)
    assert optout.classify(text).outcome == optout.CONFIRM


@pytest.mark.parametrize(
    "text, days",
    [
        ("PAUSE", 3),
        ("pause", 3),
        ("pause 5", 5),
        ("Pause 7 days", 7),
        ("pause 1d", 1),
        ("pause 0", 1),  # at least a day
        ("pause 45", 30),  # at most a month
        ("pause for a bit", 3),
        (None, 3),
    ],
)
def test_pause_days(text, days):
    assert pause_days(text) == days


def test_pause_days_default_is_adjustable():
    assert pause_days("pause", default=7) == 7


def test_normalize_folds_case_quotes_space_and_symbols():
    assert normalize("  I\u2019M   Done \U0001f64f ") == "i'm done"
    assert normalize("\u201cquoted\u201d") == '"quoted"'
    assert normalize("$5 + tip") == "$5 + tip"
    assert normalize(None) == ""
