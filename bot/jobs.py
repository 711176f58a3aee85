"""RQ entry points (enqueued by dotted name through bot.queue).

Jobs carry database ids only and re-read every row when they run, so a job
that runs twice, late, or after its row changed does the right thing. The
worker process builds its adapters once (`worker_services`) and reuses them.
"""

from __future__ import annotations

import logging
import sys

from bot import alerts, delivery, runner
from bot.config import Settings
from bot.logsafe import configure_logging
from bot.services import build_services

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits (worker processes only)."""

_services = None


def worker_services():
    """The adapters of this worker process, built from the environment on first use."""
    global _services
    if _services is None:
        settings = Settings.from_env()
        # Send threads sleep until their rate-limit slot; a woken thread waits for the GIL
        # up to the switch interval (5 ms by default) and too late a wake wastes the slot.
        sys.setswitchinterval(SWITCH_INTERVAL)
        configure_logging(settings.log_level)
        _services = build_services(settings)
    return _services


def use_services(services) -> None:
    """Run jobs in this process with the given adapters (tests, `nudges run-due`)."""
    global _services
    _services = services


# ---------------------------------------------------------------- jobs (run by RQ)


def send_scheduled(ids: list[int]) -> dict[str, int]:
    """Send a batch of due scheduled messages."""
    return delivery.deliver_batch(worker_services(), ids)


def retry_inbound(message_id: int) -> list[str]:
    """Process a stored inbound text that failed in the webhook; reply via the REST API."""
    services = worker_services()
    try:
        return runner.process_inbound(services, message_id, via="rest")
    except Exception:
        runner.mark_failed(services, message_id)  # counts the try; the clock backs off
        raise


def send_outbound(ids: list[int]) -> None:
    """Send replies queued for the REST API."""
    delivery.send_outbound(worker_services(), ids)


def page_alert(alert_id: int) -> None:
    """Text the care team about one alert."""
    alerts.page(worker_services(), alert_id)
