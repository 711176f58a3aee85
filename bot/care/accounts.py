"""Care-team accounts: one-time set-up links, argon2 passwords, TOTP, throttled sign-in.

There is no default account: the first admin is created with
`flask --app bot staff add EMAIL --role admin`, which prints a set-up link that
works once, within SETUP_VALID, to choose a password and enrol an authenticator.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy import func, select

from bot.storage.models import LoginFailure, StaffUser

ROLES = ("clinician", "admin")
"""Clinicians see and act on participants; admins also manage staff, read the audit log
and export."""

SETUP_VALID = timedelta(hours=24)
"""How long a set-up link works."""

MIN_PASSWORD = 12
"""Shortest password accepted (NIST 800-63B asks for length, not character rules)."""

THROTTLE_WINDOW = timedelta(minutes=15)
"""Failed sign-ins are counted over this window."""

MAX_FAILURES_PER_ACCOUNT = 5
"""Failures on one account within the window before it is refused for a while."""

MAX_FAILURES_PER_ADDRESS = 20
"""Failures from one network address within the window (guessing across accounts)."""

TOTP_ISSUER = "integration-bot"

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A staff command or set-up step that cannot be done (message is safe to show)."""


@dataclass(frozen=True, eq=False)
class Staff(UserMixin):
    """A signed-in care-team member as the console sees them (no secrets)."""

    id: int
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Admins manage staff, read the audit log and export."""
        return self.role == "admin"


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    return (email or "").strip().lower()


def token_hash(token: str) -> str:
    """Set-up tokens are stored hashed: a database reader cannot use one."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_staff(db, email: str, role: str, now: datetime) -> tuple[StaffUser, str]:
    """Create an account waiting for set-up; returns it with its one-time token."""
    email = normalize_email(email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if "@" not in email or len(email) > 254:
        raise AccountError("not an email address")
    if db.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise AccountError("an account with that email already exists")
    user = StaffUser(email=email, role=role, active=True, created_at=now)
    db.add(user)
    token = reset_setup(user, now)
    db.flush()
    return user, token


def reset_setup(user: StaffUser, now: datetime) -> str:
    """Issue a fresh set-up link: new TOTP secret, password cleared until it is used."""
    token = secrets.token_urlsafe(32)
    user.setup_token_hash = token_hash(token)
    user.setup_expires_at = now + SETUP_VALID
    user.password_hash = None
    user.totp_secret = pyotp.random_base32()
    user.totp_last_step = None
    return token


def setup_user(db, token: str, now: datetime) -> StaffUser | None:
    """The account a set-up token belongs to, when it is still valid."""
    if not token:
        return None
    user = db.scalars(select(StaffUser).where(
        StaffUser.setup_token_hash == token_hash(token))).first()
    if user is None or not user.active or user.setup_expires_at is None:
        return None
    if user.setup_expires_at < now:
        return None
    return user


def provisioning_uri(user: StaffUser, clinic: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(user.totp_secret).provisioning_uri(
        name=user.email, issuer_name=f"{clinic} ({TOTP_ISSUER})")


def complete_setup(user: StaffUser, password: str, code: str, now: datetime) -> None:
    """Set the password once the authenticator code proves the secret was enrolled."""
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"choose a password of at least {MIN_PASSWORD} characters")
    step = totp_step(user, code, now)
    if step is None:
        raise AccountError("that authenticator code is not right; check the time on the phone")
    user.password_hash = _hasher.hash(password)
    user.totp_last_step = step
    user.setup_token_hash = None
    user.setup_expires_at = None


def totp_step(user: StaffUser, code: str, now: datetime) -> int | None:
    """The time step a 6-digit code belongs to (one step of drift allowed), else None."""
    code = (code or "").strip().replace(" ", "")
    if not user.totp_secret or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(user.totp_secret)
    base = int(now.timestamp()) // totp.interval
    for step in (base, base - 1, base + 1):
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


def throttled(db, email: str, address: str, now: datetime) -> bool:
    """True when this account or this address failed too often lately."""
    since = now - THROTTLE_WINDOW
    by_account = db.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.email == normalize_email(email), LoginFailure.at > since)) or 0
    by_address = db.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.address == address, LoginFailure.at > since)) or 0
    return by_account >= MAX_FAILURES_PER_ACCOUNT or by_address >= MAX_FAILURES_PER_ADDRESS


def authenticate(db, email: str, password: str, code: str, address: str,
                 now: datetime) -> Staff | None:
    """Check password and TOTP; a failure is recorded for throttling. None when refused."""
    email = normalize_email(email)
    user = db.scalars(select(StaffUser).where(StaffUser.email == email)).first()
    ok = False
    if user is not None and user.active and user.password_hash:
        ok = _password_ok(user, password)
        step = totp_step(user, code, now) if ok else None
        # A code already used (or an older one) is refused: a shoulder-surfed code is spent.
        ok = ok and step is not None and step > (user.totp_last_step or -1)
        if ok:
            user.totp_last_step = step
            user.last_login_at = now
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
    else:
        # Spend the same time as a real check so timing does not reveal which emails exist.
        _password_ok(None, password)
    if not ok:
        db.add(LoginFailure(email=email[:254], address=address[:64], at=now))
        return None
    return Staff(user.id, user.email, user.role)


_DUMMY_HASH = _hasher.hash("not a password anyone has")


def _password_ok(user: StaffUser | None, password: str) -> bool:
    """argon2 verification that never raises."""
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return False


def load_staff(db, staff_id: int) -> Staff | None:
    """The active, set-up account with this id (a deactivated one signs out at once)."""
    user = db.get(StaffUser, staff_id)
    if user is None or not user.active or not user.password_hash:
        return None
    return Staff(user.id, user.email, user.role)
