"""The words themselves: lock-screen privacy, GSM-7, length, and the CLI check."""

from __future__ import annotations

import re

from flows import loader, sms_text

PRIVATE = re.compile(r"ketamine|esketamine|spravato|depress|ptsd|anxiety|bipolar|diagnos|"
                     r"psychedelic|dissociative|\bdrug\b|\bdose\b", re.IGNORECASE)


def test_no_outbound_words_name_the_drug_or_a_diagnosis():
    defs = loader.load()
    offenders = [key for key, text in defs.messages.items()
                 if PRIVATE.search(text) and not key.startswith("safety.")]
    assert offenders == []


def test_every_text_fits_two_gsm7_segments_with_long_values():
    defs = loader.load()
    for key in defs.messages:
        text = defs.render(key, loader.SAMPLE_VARIABLES)
        assert sms_text.problems(text) == [], key


def test_flows_check_command_passes_on_shipped_definitions(app):
    result = app.test_cli_runner().invoke(args=["flows", "check"])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output
