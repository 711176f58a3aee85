"""Shared fixtures: a real database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
a real Redis (REDIS_URL, else an embedded redis-server), a frozen clock, and the app."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from bot.clock import FrozenClock
from bot.config import Settings
from bot.sms import FakeSender
from bot.storage import Database
from bot.storage.models import Base

AUTH_TOKEN = "test-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
PHONE = "+15551234567"
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_db(request, tmp_path_factory):
    """A migrated database per backend, shared by the session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        url = os.environ["TEST_DATABASE_URL"]
    db = Database(url)
    if request.param != "sqlite":
        db.drop_all()  # start from an empty schema (tables left by an earlier run)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def db(migrated_db):
    """The migrated database, emptied before each test."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with migrated_db.engine.begin() as conn:
        if migrated_db.url.startswith("sqlite"):
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
        else:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    return migrated_db


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """REDIS_URL when set (CI), else a real redis-server started for this run."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from bot.redis_conn import start_embedded

    url, proc = start_embedded(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_conn(redis_url):
    """A flushed Redis connection (flushed again afterwards)."""
    from bot.redis_conn import connect

    conn = connect(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def clock():
    """The injected clock, frozen at START."""
    return FrozenClock(START)


@pytest.fixture
def sender():
    """Records what would have been texted."""
    return FakeSender()


def make_settings(tmp_path, db_url: str, **overrides) -> Settings:
    """Test settings: signatures on, a fresh encryption key, instance under tmp_path."""
    base = dict(
        env="test", instance_path=str(tmp_path / "instance"), database_url=db_url,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_from_number="+15005550006", sms_backend="twilio",
        journal_encryption_key=Fernet.generate_key().decode(), phone_hash_key="test-pepper",
        clinic_name="Harbor Clinic", clinic_contact="555-0100", log_level="INFO",
        care_team_numbers=("+15557654321",),
    )
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def settings(tmp_path, db):
    """Settings for this test's database."""
    return make_settings(tmp_path, db.url)


@pytest.fixture
def services(settings, db, clock, sender):
    """The adapters, with the frozen clock and fake sender (no Redis)."""
    from bot.services import build_services

    return build_services(settings, clock=clock, sender=sender, db=db)


@pytest.fixture
def app(services):
    """The Flask app over the test services."""
    from bot import create_app

    app = create_app(services=services)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


class Phone:
    """A participant's phone: sends signed webhook requests, reads TwiML replies."""

    def __init__(self, client, number: str = PHONE, token: str = AUTH_TOKEN):
        self.client, self.number, self.token = client, number, token
        self.count = 0

    def post(self, params: dict, *, sign: bool = True, signature: str | None = None,
             path: str = "/twilio/sms"):
        """POST form params with a real signature computed by the twilio SDK."""
        url = f"http://localhost{path}"
        headers = {}
        if sign:
            headers["X-Twilio-Signature"] = (
                signature or RequestValidator(self.token).compute_signature(url, params))
        return self.client.post(path, data=params, headers=headers)

    def params(self, body: str, **extra) -> dict:
        """The fields Twilio sends for an inbound text."""
        self.count += 1
        params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID,
                  "From": self.number, "To": "+15005550006", "Body": body,
                  "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
                  "ApiVersion": "2010-04-01"}
        params.update(extra)
        return params

    def text(self, body: str, **extra) -> list[str]:
        """Send a text; return the bot's replies (asserting a 200 TwiML answer)."""
        response = self.post(self.params(body, **extra))
        assert response.status_code == 200, response.data
        return replies(response)


def replies(response) -> list[str]:
    """The <Message> texts of a TwiML response."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return [m.text or "" for m in root.iter("Message")]


@pytest.fixture
def phone(client):
    """A participant's phone talking to the app."""
    return Phone(client)


@pytest.fixture
def client_for():
    """A test client for an app built over the given services."""
    from bot import create_app

    def make(services):
        app = create_app(services=services)
        app.config["TESTING"] = True
        return app.test_client()

    return make


# ---------------------------------------------------------------- real-browser tests
# pytest-playwright drives the distribution's Chromium (`make test` installs the Debian
# package when it is missing); Playwright's own browser download is not used.

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


def chromium_path() -> str:
    """The system Chromium: CHROMIUM_PATH, else chromium / chromium-browser on PATH."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not found:
        # Never skip: a browser test without a browser is a failure, not a pass.
        raise RuntimeError("Chromium not found: run `make test` (it installs it) or set CHROMIUM_PATH")
    return found


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch the system Chromium instead of a Playwright-downloaded build."""
    return {**browser_type_launch_args, "executable_path": chromium_path(),
            "args": ["--no-sandbox", "--disable-dev-shm-usage"]}


@pytest.fixture
def screenshot(request):
    """Save a full-page screenshot under artifacts/screenshots/<test>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


class LiveServer:
    """A Flask app served over real HTTP on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app):
    """The test app over real HTTP, for the browser (url attribute: its base URL)."""
    server = LiveServer(app)
    yield server
    server.stop()
