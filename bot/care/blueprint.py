"""The console's blueprint and what every view shares: services, the clock, audit, roles."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, current_app
from flask_login import current_user

from bot import privacy

bp = Blueprint("care", __name__, url_prefix="/care", template_folder="templates",
               static_folder="static")


def services():
    """The process's adapters (built by create_app)."""
    return current_app.extensions["integration_bot"]


def now():
    """The injected clock's time."""
    return services().clock.now()


def actor() -> str:
    """How the audit log names the signed-in staff member."""
    return current_user.email[:64]


def audit(db, action: str, participant_id: int | None = None) -> None:
    """Record who saw or did what, to whom, and when (in the caller's transaction)."""
    privacy.audit(db, actor(), action, participant_id, now())


def admin_required(view):
    """Only admins: staff management, the audit log, exports."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not getattr(current_user, "is_admin", False):
            abort(403)
        return view(*args, **kwargs)

    return wrapped
