"""Journal text encrypted at rest with Fernet, with key rotation through MultiFernet.

Keys are urlsafe base64 Fernet keys. The first key in a keyring encrypts; every key
decrypts, so a new key can be put first while old rows are still readable, and
``rotate`` re-encrypts old tokens under the new key before the old one is retired.
Key material never appears in an error message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.types import Text, TypeDecorator

__all__ = [
    "DEV_KEY_FILENAME",
    "EncryptedText",
    "InvalidToken",
    "Keyring",
    "get_keyring",
    "load_or_create_dev_key",
    "set_keyring",
]

DEV_KEY_FILENAME = "journal.key"
"""File inside the Flask instance folder that holds the development-only key."""


class Keyring:
    """An ordered set of Fernet keys: the first encrypts, all of them decrypt."""

    def __init__(self, keys: Sequence[str]):
        """Build a keyring; raises ValueError (without echoing any key) if a key is bad."""
        if isinstance(keys, str | bytes):
            raise ValueError("encryption keys must be a list of keys, not one string")
        if not keys:
            raise ValueError("no encryption key given: at least one Fernet key is required")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # "from None": the chained error could carry the key's text.
                raise ValueError(
                    f"encryption key #{position} is not a valid Fernet key "
                    "(expected 32 url-safe base64-encoded bytes)"
                ) from None
        self._multi = MultiFernet(fernets)
        self._count = len(fernets)

    def __len__(self) -> int:
        """Return how many keys the keyring holds."""
        return self._count

    def __repr__(self) -> str:
        """Describe the keyring without showing key material."""
        return f"<Keyring keys={self._count}>"

    def encrypt(self, text: str) -> str:
        """Encrypt text with the current (first) key and return the Fernet token."""
        return self._multi.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made with any key in the ring; raises InvalidToken otherwise."""
        return self._multi.decrypt(token.encode("ascii")).decode("utf-8")

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the current key, keeping its original timestamp."""
        return self._multi.rotate(token.encode("ascii")).decode("ascii")

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        """Build a keyring from a comma-separated setting such as JOURNAL_KEYS."""
        keys = [part.strip() for part in (value or "").split(",")]
        return cls([key for key in keys if key])


def load_or_create_dev_key(instance_path: str | os.PathLike[str]) -> tuple[str, bool]:
    """Development only: read or create instance/journal.key (mode 0600); return (key, created)."""
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DEV_KEY_FILENAME
    if not path.exists():
        key = Fernet.generate_key().decode("ascii")
        # Write a private temp file, then link it into place: the link fails if another
        # process (web, worker and clock start together) won the race, and a reader
        # never sees a half-written file.
        temp = folder / f".{DEV_KEY_FILENAME}.{os.getpid()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        try:
            os.link(temp, path)
            return key, True
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    existing = path.read_text(encoding="ascii").strip()
    Keyring([existing])  # fail now, with a clear message, rather than on the first journal entry
    return existing, False


_keyring: Keyring | None = None


def set_keyring(keyring: Keyring | None) -> None:
    """Set (or clear with None) the process-wide keyring that EncryptedText uses."""
    global _keyring
    _keyring = keyring


def get_keyring() -> Keyring:
    """Return the process-wide keyring; raises RuntimeError when none is configured."""
    if _keyring is None:
        raise RuntimeError("no encryption key configured")
    return _keyring


class EncryptedText(TypeDecorator[str]):
    """A Text column stored as a Fernet token; reads give back the plaintext.

    Each write uses a fresh IV, so the column cannot be compared or searched in SQL:
    filter on other columns and read the text back through the ORM.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        """Encrypt a str on its way into the database; None stays NULL."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText takes str, not {type(value).__name__}")
        return get_keyring().encrypt(value)

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        """Decrypt a stored token on its way out of the database; NULL stays None."""
        if value is None:
            return None
        return get_keyring().decrypt(value)
