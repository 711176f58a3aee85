"""integration-bot: the Flask app factory. Nothing happens at import time."""

from __future__ import annotations

import logging

from flask import Flask

from bot import cli, pages, webhook, webhook_form
from bot.care import web as care
from bot.config import Settings
from bot.logsafe import configure_logging
from bot.services import build_services


def create_app(config: dict | None = None, *, services=None) -> Flask:
    """Build the web app; config overrides settings read from the environment."""
    if services is not None:
        settings = services.settings
    else:
        settings = Settings.from_env().with_overrides(config)
    configure_logging(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = Flask(__name__, instance_path=settings.instance_path)
    app.config["SETTINGS"] = settings
    app.extensions["integration_bot"] = services or build_services(settings)
    webhook_form.init_app(app)
    app.register_blueprint(webhook.bp)
    pages.init_app(app)
    cli.init_app(app)
    care.init_app(app)  # the care team's console under /care/
    return app
