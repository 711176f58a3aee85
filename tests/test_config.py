"""Every setting is declared once: the environment, the worker hand-off and the README
all come from the same declaration and agree with each other."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from bot import settings_doc
from bot.config import DEFAULT_INSTANCE, Settings


def test_the_readme_configuration_table_is_the_declared_one():
    expected = settings_doc.table()
    assert settings_doc.readme_table() == expected, (
        "README.md's configuration table differs from the Settings declarations in "
        "bot/config.py; run `python -m bot.settings_doc --write`. Expected:\n" + expected)


def test_every_setting_has_its_own_variable_in_the_readme():
    names = [f.metadata["env"].name for f in fields(Settings)]
    assert len(names) == len(set(names))
    readme = settings_doc.readme_table()
    assert all(f"| `{name}` |" in readme for name in names)


def test_an_empty_environment_gives_the_documented_defaults():
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.instance_path == str(DEFAULT_INSTANCE)
    assert settings.database_url == f"sqlite:///{DEFAULT_INSTANCE / 'bot.sqlite3'}"
    assert settings.sms_max_per_second == 1.0
    assert settings.care_team_numbers == ()
    assert settings.clinic_name == "your clinic" and settings.queue_name == "integration-bot"
    assert settings.backend == "console"
    # An empty variable is the same as an unset one.
    assert Settings.from_env({name: "" for name in Settings.from_env({}).to_env()}) == settings


def test_values_are_read_the_way_an_operator_writes_them(tmp_path):
    settings = Settings.from_env({
        "BOT_ENV": "Production", "INSTANCE_PATH": str(tmp_path),
        "PUBLIC_BASE_URL": "https://bot.example-clinic.org/", "SMS_BACKEND": "TWILIO",
        "SMS_MAX_PER_SECOND": "3", "CARE_TEAM_NUMBERS": " +15551230001, ,+15551230002 ",
        "RQ_QUEUE": "clinic-a",
    })
    assert settings.env == "production" and settings.production
    assert settings.database_url == f"sqlite:///{Path(tmp_path) / 'bot.sqlite3'}"
    assert settings.public_base_url == "https://bot.example-clinic.org"
    assert settings.sms_backend == "twilio"
    assert settings.sms_max_per_second == 3.0
    assert settings.care_team_numbers == ("+15551230001", "+15551230002")
    assert settings.queue_name == "clinic-a"


def test_a_worker_rebuilds_exactly_the_same_settings_from_to_env(tmp_path):
    changed = {}
    for f in fields(Settings):
        if f.type == "float":
            changed[f.name] = 2.5
        elif f.type == "bool":
            changed[f.name] = not f.default
        elif f.type == "int":
            changed[f.name] = 7
        elif f.type.startswith("tuple"):
            changed[f.name] = ("+15551230001", "+15551230002")
        else:
            changed[f.name] = f"value-of-{f.name}"
    settings = Settings(**changed)
    assert all(getattr(settings, f.name) != getattr(Settings(), f.name) for f in fields(Settings))
    assert Settings.from_env(settings.to_env()) == settings
