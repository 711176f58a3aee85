"""The secret that signs webhook requests: Twilio's auth token, or a development token.

In development with no TWILIO_AUTH_TOKEN, a random token is generated once in
instance/webhook_token.key (like the development journal key). The webhook checks
signatures against it, so an unsigned or forged request is refused even on a laptop;
`chat` and local simulators sign with it. ALLOW_UNSIGNED_WEBHOOKS=1 (never in
production) is the explicit way to accept unsigned requests.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from twilio.request_validator import RequestValidator

TOKEN_FILE = "webhook_token.key"


def webhook_token(settings) -> str:
    """TWILIO_AUTH_TOKEN, else (outside production) the development token, created once."""
    if settings.twilio_auth_token or settings.production:
        return settings.twilio_auth_token
    path = Path(settings.instance_path) / TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def sign(settings, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature a request to url with params needs (simulators, tests)."""
    return RequestValidator(webhook_token(settings)).compute_signature(url, params)
