"""Operator commands as the clinic types them."""

from __future__ import annotations

import json

from tests.conftest import PHONE


def run(app, *args, input=None):
    """Invoke `flask --app bot ...` in-process."""
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_chat_is_a_terminal_conversation(app, sender):
    assert run(app, "enroll", PHONE).exit_code == 0
    result = run(app, "chat", PHONE, input="hello\nyes\nHELP\n")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("bot> ")]
    assert "reply YES" in lines[0]  # the invitation reminder
    assert any("You're in" in line for line in lines)
    assert any("988" in line for line in lines)
    assert PHONE not in result.output  # the number is masked on screen too


def test_enroll_rejects_bad_input_clearly(app):
    bad_phone = run(app, "enroll", "12")
    assert bad_phone.exit_code != 0 and "PHONE" in bad_phone.output
    bad_zone = run(app, "enroll", PHONE, "--tz", "Mars/Olympus")
    assert bad_zone.exit_code != 0 and "--tz" in bad_zone.output


def test_enroll_twice_does_not_reinvite_an_active_participant(app, sender):
    assert run(app, "enroll", PHONE).exit_code == 0
    run(app, "chat", PHONE, input="yes\n")
    again = run(app, "enroll", PHONE)
    assert again.exit_code != 0 and "already active" in again.output
    assert len(sender.sent) == 1


def test_participant_json_has_the_documented_fields(app):
    run(app, "enroll", PHONE, "--tz", "America/Chicago")
    data = json.loads(run(app, "participant", PHONE, "--json").output)
    for field in ("phone", "status", "timezone", "flow", "journal_entries", "sessions",
                  "scheduled", "messages"):
        assert field in data
    assert data["status"] == "invited" and data["timezone"] == "America/Chicago"
    assert data["messages"][0]["direction"] == "out" and "body" not in data["messages"][0]


def test_unknown_participant_is_a_clear_error(app):
    result = run(app, "participant", "+15550001111", "--json")
    assert result.exit_code != 0 and "no participant" in result.output


def test_course_end_schedules_weekly_checkins(app):
    run(app, "enroll", PHONE)
    run(app, "chat", PHONE, input="yes\n")
    assert run(app, "course-end", PHONE).exit_code == 0
    rows = json.loads(run(app, "participant", PHONE, "--json").output)["scheduled"]
    weekly = [r for r in rows if r["kind"] == "maintenance"]
    assert len(weekly) == 9  # 8 weekly check-ins, then "keep going?"


def test_nudges_status_counts(app):
    result = run(app, "nudges", "status")
    assert result.exit_code == 0 and "rq queue" in result.output
