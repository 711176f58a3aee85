"""A local stand-in for Twilio's Messages API, for tests and benchmarks.

It speaks just enough of https://api.twilio.com for the official SDK:
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic auth,
Twilio's JSON error shape, the magic test numbers, injectable failures and an
adjustable answer latency. It never prints or logs message bodies.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from flows.sms_text import segments

API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600
"""Twilio refuses longer bodies with error 21617."""
IDLE_CONNECTION_TIMEOUT = 30.0
"""Seconds a kept-alive connection may sit idle before its handler thread gives up."""

MAGIC_NUMBERS = {
    "+15005550004": 21610,
    "+15005550001": 21211,
    "+15005550009": 21614,
}
"""Twilio test-credential numbers: a message To one of these fails with this code."""

ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}

_MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")


def default_http_status(code: int) -> int:
    """The HTTP status Twilio answers with for an error code (or a bare HTTP status)."""
    if code < 600:
        return code
    if 20000 <= code < 20600:
        return code - 20000
    return 400


def twilio_code(code: int) -> int:
    """Turn a bare HTTP status (429, 500) into Twilio's matching 20xxx error code."""
    return 20000 + code if code < 600 else code


def max_in_window(timestamps: Iterable[float], window: float = 1.0) -> int:
    """Most timestamps that fall in any half-open interval [t, t + window)."""
    ordered = sorted(timestamps)
    best = start = 0
    for end, stamp in enumerate(ordered):
        # Slide the window's start forward until it holds ordered[start..end] only.
        while stamp - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class _Failure:
    """An injected error: Twilio code plus the HTTP status to answer with."""

    def __init__(self, code: int, http_status: int | None) -> None:
        self.code = twilio_code(code)
        self.http_status = http_status if http_status is not None else default_http_status(code)


class FakeTwilio:
    """A threaded HTTP server that accepts messages the way Twilio's API does."""

    def __init__(
        self,
        *,
        auth_token: str = "test-token",
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.auth_token = auth_token
        self.latency = latency
        self.host = host
        self.port = port
        self.base_url = ""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[dict] = []
        self._attempts = 0
        self._fail_next: list[_Failure] = []
        self._fail_to: dict[str, _Failure] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread and return the base URL."""
        if self._server is not None:
            return self.base_url
        self._server = _Server((self.host, self.port), _Handler, fake=self)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            # A short poll interval keeps stop() quick in test teardown.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-twilio",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and drop every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilio:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- controls ----------------------------------------------------------------

    def fail_next(self, code: int, *, http_status: int | None = None, count: int = 1) -> None:
        """Answer the next `count` requests with this Twilio error (429 and 500 work too)."""
        with self._lock:
            self._fail_next.extend(_Failure(code, http_status) for _ in range(count))

    def fail_to(self, number: str, code: int, *, http_status: int | None = None) -> None:
        """Answer every message to `number` with this Twilio error."""
        with self._lock:
            self._fail_to[number] = _Failure(code, http_status)

    def clear(self) -> None:
        """Forget messages, attempts and injected failures (latency stays)."""
        with self._lock:
            self._messages.clear()
            self._attempts = 0
            self._fail_next.clear()
            self._fail_to.clear()

    # -- observations ------------------------------------------------------------

    @property
    def messages(self) -> list[dict]:
        """Copies of the messages accepted so far, oldest first."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def attempts(self) -> int:
        """Total POSTs received, including refused ones."""
        with self._lock:
            return self._attempts

    def max_per_second(self) -> int:
        """Most accepted messages received within any one-second window."""
        with self._lock:
            stamps = [m["received_at"] for m in self._messages]
        return max_in_window(stamps, 1.0)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Block until at least `count` messages were accepted; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._messages)} of {count} messages after {timeout}s"
                    )
                self._arrived.wait(left)
            return [dict(m) for m in self._messages]

    # -- request handling (called from handler threads) ---------------------------

    def handle_post(
        self, path: str, auth_header: str | None, form: dict[str, str], received_at: float
    ) -> tuple[int, dict]:
        """Decide the answer to one POST: (HTTP status, JSON payload)."""
        with self._lock:
            self._attempts += 1
            match = _MESSAGES_PATH.match(path)
            if match is None:
                return _error(20404, 404)
            account = match.group("account")
            if not self._authorised(account, auth_header):
                return _error(20003, 401)
            failure = self._failure_for(form)
            if failure is not None:
                return _error(failure.code, failure.http_status, to=form.get("To"))
            message = _message(account, form, received_at)
            self._messages.append(message)
            self._arrived.notify_all()
        return 201, _resource(message)

    def handle_list(
        self, path: str, auth_header: str | None, params: dict[str, str]
    ) -> tuple[int, dict]:
        """Answer `GET .../Messages.json` filtered by `To` and `DateSent>`/`DateSent>=`/`DateSent`
        (Twilio compares the date only), newest first, as one page."""
        match = _MESSAGES_PATH.match(path)
        if match is None:
            return _error(20404, 404)
        account = match.group("account")
        if not self._authorised(account, auth_header):
            return _error(20003, 401)
        since = _date_filter(params)
        with self._lock:
            found = [m for m in self._messages
                     if m["account_sid"] == account
                     and ("To" not in params or m["to"] == params["To"])
                     and (since is None or _day(m["received_at"]) >= since)]
        resources = [_resource(m) for m in reversed(found)]
        uri = f"/{API_VERSION}/Accounts/{account}/Messages.json"
        return 200, {"messages": resources, "end": max(len(resources) - 1, 0), "start": 0,
                     "page": 0, "page_size": max(len(resources), 50), "first_page_uri": uri,
                     "next_page_uri": None, "previous_page_uri": None, "uri": uri}

    def _authorised(self, account: str, auth_header: str | None) -> bool:
        if not auth_header or not auth_header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(auth_header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return user == account and password == self.auth_token

    def _failure_for(self, form: dict[str, str]) -> _Failure | None:
        if self._fail_next:
            return self._fail_next.pop(0)
        to = form.get("To", "")
        if to in self._fail_to:
            return self._fail_to[to]
        if not to:
            return _Failure(21604, 400)
        if not form.get("Body"):
            return _Failure(21602, 400)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _Failure(21603, 400)
        if len(form["Body"]) > MAX_BODY_CHARS:
            return _Failure(21617, 400)
        bare = to.removeprefix("whatsapp:")
        if bare in MAGIC_NUMBERS:
            return _Failure(MAGIC_NUMBERS[bare], 400)
        return None


def _date_filter(params: dict[str, str]) -> str | None:
    """The YYYY-MM-DD lower bound of a DateSent filter, if any."""
    for key in ("DateSent>", "DateSent>=", "DateSent"):
        value = params.get(key)
        if value:
            return value.lstrip(">=")[:10]
    return None


def _day(stamp: float) -> str:
    """A POSIX time as its UTC date, YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


def _message(account: str, form: dict[str, str], received_at: float) -> dict:
    return {
        "sid": "SM" + uuid.uuid4().hex,
        "account_sid": account,
        "to": form.get("To"),
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "body": form.get("Body"),
        "status_callback": form.get("StatusCallback"),
        "received_at": received_at,
    }


def _resource(message: dict) -> dict:
    """Shape an accepted message like Twilio's Message resource."""
    now = formatdate(message["received_at"], usegmt=True)
    uri = f"/{API_VERSION}/Accounts/{message['account_sid']}/Messages/{message['sid']}"
    return {
        "account_sid": message["account_sid"],
        "api_version": API_VERSION,
        "body": message["body"],
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message["from"],
        "messaging_service_sid": message["messaging_service_sid"],
        "num_media": "0",
        "num_segments": str(segments(message["body"] or "")),
        "price": None,
        "price_unit": "USD",
        "sid": message["sid"],
        "status": "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message["to"],
        "uri": f"{uri}.json",
    }


def _error(code: int, http_status: int, *, to: str | None = None) -> tuple[int, dict]:
    """Twilio's legacy JSON error shape; like Twilio, some messages quote the To number."""
    template = ERROR_MESSAGES.get(code, f"Error {code}")
    return http_status, {
        "code": code,
        "message": template.format(to=to or ""),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": http_status,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Room for many clients connecting at once while earlier answers are still sleeping.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, *, fake: FakeTwilio) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        """Remember open client connections so stop() can end kept-alive ones."""
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every kept-alive client connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (timeout) leaves a broken pipe behind: not news.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind requests' pool
    timeout = IDLE_CONNECTION_TIMEOUT
    # Headers and body leave in one segment, without Nagle: otherwise delayed ACKs add
    # about 40 ms to every answer and the fake, not the sender, sets the pace.
    disable_nagle_algorithm = True
    wbufsize = -1
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        received_at = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", errors="replace")
        form = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
        fake = self.server.fake
        status, payload = fake.handle_post(
            self.path.split("?", 1)[0], self.headers.get("Authorization"), form, received_at
        )
        if fake.latency > 0:
            time.sleep(fake.latency)
        self._send_json(status, payload)

    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        self._send_json(*self.server.fake.handle_list(
            path, self.headers.get("Authorization"), params))

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # Quiet: no access log (and so no numbers or paths on the console).
        pass


def main(argv: list[str] | None = None) -> None:
    """Run a FakeTwilio in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Local fake of Twilio's Messages API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--auth-token", default="test-token")
    args = parser.parse_args(argv)
    fake = FakeTwilio(
        auth_token=args.auth_token, latency=args.latency, host=args.host, port=args.port
    )
    print(fake.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
