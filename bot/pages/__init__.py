"""Pages people open in a browser: the participant's journal, and the development simulator.

`init_app(app)` is all create_app needs: it sets the key that signs form sessions
and registers the blueprints (the simulator only outside production).
"""

from __future__ import annotations

from flask import Flask

from bot.journal_links import secret_key


def init_app(app: Flask) -> None:
    """Register the journal page (and the simulator outside production)."""
    from bot.pages import journal, simulator

    settings = app.config["SETTINGS"]
    if not app.secret_key:
        app.secret_key = secret_key(settings)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    if settings.public_base_url.startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the link's own 24 hours limit it
    app.register_blueprint(journal.bp)
    if not settings.production:
        app.register_blueprint(simulator.bp)
