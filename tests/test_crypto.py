"""Journal text is encrypted at rest and keys can be rotated without losing entries."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bot.crypto import (
    EncryptedText,
    Keyring,
    get_keyring,
    load_or_create_dev_key,
    set_keyring,
)

ENTRY = "Today I felt the window open; I forgave my father. Note to self: 555 steps."


def new_key() -> str:
    """Return a fresh Fernet key as text."""
    return Fernet.generate_key().decode("ascii")


@pytest.fixture
def keyring():
    """Install a one-key process-wide keyring for the test, and clear it afterwards."""
    ring = Keyring([new_key()])
    set_keyring(ring)
    yield ring
    set_keyring(None)


def test_round_trip_gives_back_the_entry_and_hides_it_in_the_token():
    ring = Keyring([new_key()])
    token = ring.encrypt(ENTRY)
    assert ENTRY not in token
    assert "forgave" not in token
    assert ring.decrypt(token) == ENTRY


def test_round_trip_keeps_non_ascii_text():
    ring = Keyring([new_key()])
    assert ring.decrypt(ring.encrypt("café, señora, 💙")) == "café, señora, 💙"


def test_old_token_still_reads_after_new_key_goes_first_and_rotate_moves_it():
    old, new = new_key(), new_key()
    token = Keyring([old]).encrypt(ENTRY)

    both = Keyring([new, old])
    assert both.decrypt(token) == ENTRY

    only_new = Keyring([new])
    with pytest.raises(InvalidToken):
        only_new.decrypt(token)

    rotated = both.rotate(token)
    assert only_new.decrypt(rotated) == ENTRY


def test_new_tokens_use_the_first_key():
    old, new = new_key(), new_key()
    token = Keyring([new, old]).encrypt(ENTRY)
    assert Keyring([new]).decrypt(token) == ENTRY
    with pytest.raises(InvalidToken):
        Keyring([old]).decrypt(token)


def test_empty_keyring_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        Keyring([])


@pytest.mark.parametrize(
    "bad_key",
    [
        "not-a-key-at-all-but-long-enough-to-look-like-one",
        new_key()[:-4],  # truncated
        "é" * 44,  # not ASCII
    ],
)
def test_malformed_key_error_names_position_but_not_the_key(bad_key):
    good = new_key()
    with pytest.raises(ValueError) as caught:
        Keyring([good, bad_key])
    message = str(caught.value)
    assert "#2" in message
    assert bad_key not in message
    assert good not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_from_setting_splits_on_commas_and_ignores_whitespace():
    first, second = new_key(), new_key()
    ring = Keyring.from_setting(f"  {first} ,\n {second}, ")
    assert len(ring) == 2
    assert Keyring([first]).decrypt(ring.encrypt(ENTRY)) == ENTRY
    assert ring.decrypt(Keyring([second]).encrypt(ENTRY)) == ENTRY


def test_from_setting_refuses_an_empty_setting():
    with pytest.raises(ValueError):
        Keyring.from_setting(" , ")


def test_repr_does_not_show_keys():
    key = new_key()
    assert key not in repr(Keyring([key]))


def test_get_keyring_without_configuration_says_so():
    set_keyring(None)
    with pytest.raises(RuntimeError, match="no encryption key configured"):
        get_keyring()


def test_dev_key_is_created_once_private_and_reused(tmp_path):
    instance = tmp_path / "nested" / "instance"
    key, created = load_or_create_dev_key(instance)
    assert created is True
    path = instance / "journal.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Keyring([key]).decrypt(Keyring([key]).encrypt(ENTRY)) == ENTRY

    again, created_again = load_or_create_dev_key(str(instance))
    assert created_again is False
    assert again == key
    assert sorted(p.name for p in instance.iterdir()) == ["journal.key"]


def test_corrupt_dev_key_file_fails_without_showing_its_contents(tmp_path):
    (tmp_path / "journal.key").write_text("secret-garbage-value\n")
    with pytest.raises(ValueError) as caught:
        load_or_create_dev_key(tmp_path)
    assert "secret-garbage-value" not in str(caught.value)


class Base(DeclarativeBase):
    pass


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str | None] = mapped_column(EncryptedText())


@pytest.mark.integration
def test_encrypted_column_on_a_real_sqlite_file(tmp_path, keyring, caplog):
    db_path = tmp_path / "journal.sqlite"
    engine = create_engine(f"sqlite:///{db_path}", echo=True)
    Base.metadata.create_all(engine)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")

    with Session(engine) as session:
        session.add_all([JournalEntry(id=1, body=ENTRY), JournalEntry(id=2, body=None)])
        session.commit()

    with engine.connect() as conn:
        raw = dict(conn.execute(text("select id, body from journal_entries")).all())
    assert raw[2] is None
    assert raw[1] and ENTRY not in raw[1] and "forgave" not in raw[1]
    assert keyring.decrypt(raw[1]) == ENTRY

    with Session(engine) as session:
        assert session.get(JournalEntry, 1).body == ENTRY
        assert session.get(JournalEntry, 2).body is None
        bodies = session.scalars(select(JournalEntry.body).order_by(JournalEntry.id)).all()
        assert bodies == [ENTRY, None]

    # SQL echo logs the bound parameters: they must be tokens, never the entry.
    assert "INSERT INTO journal_entries" in caplog.text
    assert raw[1] in caplog.text
    assert "forgave" not in caplog.text

    engine.dispose()
    for path in tmp_path.iterdir():
        assert b"forgave" not in path.read_bytes(), path.name


@pytest.mark.integration
def test_encrypted_column_needs_a_key_to_write(tmp_path):
    set_keyring(None)
    engine = create_engine(f"sqlite:///{tmp_path / 'j.sqlite'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(JournalEntry(id=1, body=ENTRY))
        with pytest.raises(Exception, match="no encryption key configured"):
            session.commit()
    engine.dispose()
