"""The definition checker: the shipped files are sound, and each kind of clinic edit
that would break a conversation is caught and named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows import loader
from flows.loader import DefinitionError


def test_shipped_definitions_have_no_problems():
    assert loader.check() == []


def test_shipped_definitions_load_every_flow_the_engine_starts():
    defs = loader.load()
    assert {"enrollment", "intention", "journal", "timezone", "bedtime", "therapist",
            "session"} <= set(defs.flows)
    assert defs.wording_version != "unversioned"
    assert [s.save for s in defs.flows["journal"].steps.values()] == [
        "journal:images", "journal:insight", "journal:release", "journal:different",
        "journal:action"]


@pytest.fixture
def definitions(tmp_path) -> Path:
    """A private copy of the shipped definition files to break."""
    target = tmp_path / "definitions"
    shutil.copytree(loader.DEFINITIONS_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace exactly one occurrence of old in path."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not unique in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def set_message(directory: Path, key: str, value: str) -> None:
    """Rewrite one message of conversations.toml."""
    path = directory / "conversations.toml"
    line = next(ln for ln in path.read_text(encoding="utf-8").splitlines()
                if ln.startswith(f'"{key}" = '))
    edit(path, line, f'"{key}" = "{value}"')


def problems_after(directory: Path) -> list[str]:
    """check() on the broken copy, after confirming load() refuses it with the same list."""
    found = loader.check(directory)
    with pytest.raises(DefinitionError) as raised:
        loader.load(directory)
    assert raised.value.problems == found
    return found


def test_copy_is_sound_before_any_edit(definitions):
    assert loader.check(definitions) == []
    assert loader.load(definitions).messages == loader.load().messages


def test_dangling_next_names_the_step(definitions):
    edit(definitions / "conversations.toml", 'next = "therapist"', 'next = "therapy"')
    found = problems_after(definitions)
    assert len(found) == 1
    assert "'enrollment'" in found[0] and "'bedtime'" in found[0] and "'therapy'" in found[0]


def test_missing_message_key_names_the_key(definitions):
    path = definitions / "conversations.toml"
    line = next(ln for ln in path.read_text(encoding="utf-8").splitlines()
                if ln.startswith('"enroll.bedtime.retry" = '))
    edit(path, line + "\n", "")
    found = problems_after(definitions)
    assert found and all("'enroll.bedtime.retry'" in p and "missing" in p for p in found)
    # Both flows that use the retry words are named.
    assert any("'enrollment'" in p for p in found) and any("'bedtime'" in p for p in found)


def test_non_gsm7_character_names_message_and_character(definitions):
    set_message(definitions, "resume.confirm", "Reminders are back on \u2014 welcome back.")
    found = problems_after(definitions)
    assert len(found) == 1
    assert "'resume.confirm'" in found[0] and "\u2014" in found[0] and "GSM-7" in found[0]


def test_curly_quote_is_caught_too(definitions):
    set_message(definitions, "delete.kept", "Okay, nothing was deleted. We\u2019re here.")
    found = problems_after(definitions)
    assert len(found) == 1 and "'delete.kept'" in found[0] and "\u2019" in found[0]


def test_400_character_message_is_too_long(definitions):
    set_message(definitions, "delete.kept", "Okay. " + "a" * 394)
    found = problems_after(definitions)
    assert len(found) == 1
    assert "'delete.kept'" in found[0] and "3 segments" in found[0]


def test_message_that_only_overflows_with_long_placeholders_is_caught(definitions):
    # 304 characters as written, but {clinic_name} is checked with a long sample name.
    set_message(definitions, "delete.kept", "{clinic_name} " + "a" * 290)
    found = problems_after(definitions)
    assert len(found) == 1 and "'delete.kept'" in found[0] and "segments" in found[0]


def test_unknown_placeholder_names_it(definitions):
    set_message(definitions, "delete.kept", "Okay {nickname}, nothing was deleted.")
    found = problems_after(definitions)
    assert len(found) == 1
    assert "'delete.kept'" in found[0] and "nickname" in found[0]


def test_duplicate_message_key_across_files_names_key_and_file(definitions):
    (definitions / "extra.toml").write_text(
        '[messages]\n"help" = "Another help text."\n', encoding="utf-8")
    found = problems_after(definitions)
    assert len(found) == 1
    assert "extra.toml" in found[0] and "'help'" in found[0] and "twice" in found[0]


def test_problems_are_all_reported_together(definitions):
    edit(definitions / "conversations.toml", 'next = "therapist"', 'next = "therapy"')
    set_message(definitions, "delete.kept", "Okay {nickname}.")
    found = problems_after(definitions)
    assert len(found) == 2
