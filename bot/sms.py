"""Sending texts: the Sender interface with Twilio, console and fake backends.

Every backend returns a SendResult or raises SendError, whose `kind` tells the
job layer what to do next (retry later, treat as an opt-out, mark the number
unreachable, or give up). Nothing here retries on its own.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, TextIO
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.logsafe import mask_phone, scrub
from flows.sms_text import segments

log = logging.getLogger(__name__)

RETRY = "retry"
OPTED_OUT = "opted_out"
UNREACHABLE = "unreachable"
FAILED = "failed"

RETRY_CODES = frozenset({20429, 20500, 20503, 30003})
"""Twilio error codes worth trying again later (rate limit, server trouble, handset off)."""
OPTED_OUT_CODES = frozenset({21610, 30004})
"""Twilio error codes meaning the participant has blocked or opted out of our texts."""
UNREACHABLE_CODES = frozenset({21211, 21408, 21614, 30005, 30006})
"""Twilio error codes meaning the number cannot receive texts from us at all."""

RECONCILE_LIMIT = 200
"""Most of one recipient's recent messages read back when reconciling an unsettled send."""

POOL_MAXSIZE = 4
"""Connections each thread's session keeps open; a thread sends one request at a time."""
WHATSAPP_PREFIX = "whatsapp:"



@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted a text."""

    sid: str
    status: str
    segments: int | None


@dataclass(frozen=True)
class ProviderMessage:
    """A text the provider holds for a recipient (what reconciliation compares against)."""

    sid: str
    body: str


class SendError(Exception):
    """A text was not accepted; `kind` is retry, opted_out, unreachable or failed."""

    def __init__(
        self, kind: str, code: int | None = None, http_status: int | None = None, detail: str = ""
    ) -> None:
        self.kind = kind
        self.code = code
        self.http_status = http_status
        self.detail = detail
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.kind} (code={self.code}, http={self.http_status})"
        return f"{text}: {self.detail}" if self.detail else text


def classify(code: int | None, http_status: int | None) -> str:
    """Map a Twilio error code and HTTP status to a SendError kind."""
    # The specific Twilio code wins over the HTTP status: 21610 arrives as a 400.
    if code in OPTED_OUT_CODES:
        return OPTED_OUT
    if code in UNREACHABLE_CODES:
        return UNREACHABLE
    if code in RETRY_CODES:
        return RETRY
    if http_status is not None and (http_status == 429 or 500 <= http_status <= 599):
        return RETRY
    return FAILED


def mask_number(number: str) -> str:
    """Hide all but the last 4 digits of a phone number, for logs and errors."""
    return mask_phone(number).replace("whatsapp:", "")


def mask_numbers_in(text: str) -> str:
    """Mask every phone-number-like run of digits inside free text."""
    return scrub(text)


def is_whatsapp(address: str) -> bool:
    """True when the address is a Twilio WhatsApp address ("whatsapp:+1555...")."""
    return address.lower().startswith(WHATSAPP_PREFIX)


class Sender(Protocol):
    """Anything that can send one text and report what the provider said."""

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Send body to the number `to`; raise SendError when it is not accepted."""
        ...

    def sent_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Texts the provider accepted for `to` on or after since's date (UTC)."""
        ...


class RebasedHttpClient(TwilioHttpClient):
    """Twilio's HTTP client with no automatic retries, an explicit timeout and an
    optional base URL that replaces https://api.twilio.com (for a local fake)."""

    def __init__(
        self, *, timeout: float, base_url: str | None = None, pool_maxsize: int = POOL_MAXSIZE
    ) -> None:
        super().__init__(pool_connections=True, timeout=timeout, max_retries=0)
        # The SDK only mounts its adapter on https://; mount ours on both schemes so a
        # plain-http fake gets the same pool size and the same "no retries" rule.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.base_url = base_url.rstrip("/") if base_url else None

    def rebase(self, url: str) -> str:
        """Point a Twilio API URL at base_url (any *.twilio.com host, so edge/region work)."""
        if not self.base_url:
            return url
        parts = urlsplit(url)
        if not parts.netloc.endswith("twilio.com"):
            return url
        origin = f"{parts.scheme}://{parts.netloc}"
        return self.base_url + url[len(origin) :]

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ) -> Response:
        """Send the request to the rebased URL; otherwise exactly the SDK's behaviour."""
        return super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class TwilioSender:
    """Sends texts through Twilio's Messages API with the official SDK; thread-safe."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioSender needs from_number or messaging_service_sid")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.api_base_url = api_base_url
        self.timeout = timeout
        # One Client (and requests Session) per thread: the SDK builds its domain objects
        # lazily and requests does not promise a Session is safe to share.
        self._local = threading.local()
        # The SDK imports its API modules on first use (~80 ms); do that now, not while
        # send threads hold reserved rate-limit slots (they would all go out at once).
        self._client().api.v2010.account.messages  # noqa: B018
        # The SDK logs every request and response at INFO (URL with the account SID,
        # headers, form fields): nine lines per text. Our own line says what matters.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            http = RebasedHttpClient(timeout=self.timeout, base_url=self.api_base_url)
            client = Client(self.account_sid, self._auth_token, http_client=http)
            self._local.client = client
        return client

    def _params(self, to: str, body: str, status_callback: str | None) -> dict:
        params: dict = {"to": to, "body": body}
        if self.from_number:
            from_ = self.from_number
            if is_whatsapp(to) and not is_whatsapp(from_):
                from_ = WHATSAPP_PREFIX + from_
            params["from_"] = from_
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        if status_callback is not None:
            params["status_callback"] = status_callback
        return params

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Create one Twilio message; raise SendError with a kind when it is refused."""
        masked = mask_number(to)
        try:
            message = self._client().messages.create(**self._params(to, body, status_callback))
        except (TwilioRestException, TwilioServiceException) as exc:
            error = _from_twilio_error(exc)
        except (
            requests.Timeout,
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            # A read timeout may mean Twilio did accept the text; the job layer decides.
            error = SendError(RETRY, detail=type(exc).__name__)
        except requests.RequestException as exc:
            error = SendError(FAILED, detail=type(exc).__name__)
        else:
            log.info("sms accepted to=%s sid=%s status=%s", masked, message.sid, message.status)
            return SendResult(
                sid=message.sid, status=str(message.status), segments=_to_int(message.num_segments)
            )
        log.warning(
            "sms not accepted to=%s kind=%s code=%s http=%s",
            masked,
            error.kind,
            error.code,
            error.http_status,
        )
        # `from None`: Twilio's own message often quotes the full number, keep it out of
        # tracebacks.
        raise error from None


    def sent_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Messages to `to` that Twilio lists from since's date on (its filter is by date)."""
        try:
            found = self._client().messages.list(to=to, date_sent_after=since, limit=RECONCILE_LIMIT)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _from_twilio_error(exc) from None
        except requests.RequestException as exc:
            raise SendError(RETRY, detail=type(exc).__name__) from None
        return [ProviderMessage(m.sid, m.body or "") for m in found]


def _from_twilio_error(exc: TwilioRestException | TwilioServiceException) -> SendError:
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    # Without a JSON error body the SDK reuses the HTTP status as the code; Twilio's own
    # codes have five digits, so drop that echo.
    if code is not None and status is not None and code == status:
        code = None
    raw = getattr(exc, "msg", None) or getattr(exc, "title", None) or ""
    return SendError(
        classify(code, status), code=code, http_status=status, detail=mask_numbers_in(str(raw))
    )


def _to_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class ConsoleSender:
    """Development backend: prints each text to a stream instead of sending it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Print the text (number masked) and return a console SID with status "sent"."""
        sid = "SMconsole" + uuid.uuid4().hex
        stream = self.stream if self.stream is not None else sys.stdout
        with self._lock:
            stream.write(f"--- sms to {mask_number(to)} ({sid}) ---\n{body}\n")
            stream.flush()
        return SendResult(sid=sid, status="sent", segments=segments(body))

    def sent_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        """The console keeps no record: nothing to reconcile against."""
        return []


class SentText(NamedTuple):
    """One text a FakeSender accepted."""

    to: str
    body: str
    status_callback: str | None


class FakeSender:
    """Unit-test backend: records texts in .sent and fails on demand."""

    def __init__(self) -> None:
        self.sent: list[SentText] = []
        self.attempts = 0
        self._failures: list[SendError] = []
        self._lock = threading.Lock()

    def fail_with(self, error: SendError, count: int = 1) -> None:
        """Make the next `count` sends raise error (queued after earlier failures)."""
        with self._lock:
            self._failures.extend([error] * count)

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Record the text, or raise the next queued SendError."""
        with self._lock:
            self.attempts += 1
            if self._failures:
                raise self._failures.pop(0)
            self.sent.append(SentText(to, body, status_callback))
            sid = f"SM{len(self.sent):032x}"
        return SendResult(sid=sid, status="queued", segments=segments(body))

    def sent_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Every text recorded for `to`, newest first."""
        with self._lock:
            return [ProviderMessage(f"SM{n + 1:032x}", t.body)
                    for n, t in reversed(list(enumerate(self.sent))) if t.to == to]
