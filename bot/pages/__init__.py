"""Pages people open in a browser: the participant's journal, and the development simulator.

`init_app(app)` is all create_app needs: it sets the key that signs form sessions
and registers the blueprints (the simulator only outside production).
"""

from __future__ import annotations

from flask import Flask

from bot.journal_links import secret_key
from bot.pages import journal, simulator


def init_app(app: Flask) -> None:
    """Register the journal page (and the simulator outside production)."""
    settings = app.config["SETTINGS"]
    # Production without a public address sends no links, so it may run without SECRET_KEY
    # (Settings.check insists on one when PUBLIC_BASE_URL is set).
    if not app.secret_key and (settings.secret_key or not settings.production):
        app.secret_key = secret_key(settings)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    if settings.public_base_url.startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.register_blueprint(journal.bp)
    if not settings.production:
        app.register_blueprint(simulator.bp)
