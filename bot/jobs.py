"""RQ entry points and the helpers that enqueue them.

Jobs carry database ids only and re-read every row when they run, so a job
that runs twice, late, or after its row changed does the right thing. The
worker process builds its adapters once (`worker_services`) and reuses them.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

JOB_TIMEOUT = 600
"""Seconds one job may run (a batch waits on the shared rate limit)."""

SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits (worker processes only)."""

_services = None


def worker_services():
    """The adapters of this worker process, built from the environment on first use."""
    global _services
    if _services is None:
        from bot.config import Settings
        from bot.logsafe import configure_logging
        from bot.services import build_services

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
    from bot import delivery

    return delivery.deliver_batch(worker_services(), ids)


def retry_inbound(message_id: int) -> list[str]:
    """Process a stored inbound text that failed in the webhook; reply via the REST API."""
    from bot import runner

    services = worker_services()
    try:
        return runner.process_inbound(services, message_id, via="rest")
    except Exception:
        runner.mark_failed(services, message_id)  # counts the try; the clock backs off
        raise


def send_outbound(ids: list[int]) -> None:
    """Send replies queued for the REST API."""
    from bot import delivery

    delivery.send_outbound(worker_services(), ids)


def page_alert(alert_id: int) -> None:
    """Text the care team about one alert."""
    from bot import alerts

    alerts.page(worker_services(), alert_id)


# ---------------------------------------------------------------- enqueue helpers


def _enqueue(services, func, *args, job_id: str | None = None) -> None:
    """Put a job on the queue; the database copy makes a lost job harmless.

    With a job id, a job of that id still waiting or running is not queued twice.
    """
    if job_id is not None and _waiting(services, job_id):
        return
    services.queue.enqueue(func, *args, job_timeout=JOB_TIMEOUT, job_id=job_id,
                           result_ttl=60, failure_ttl=24 * 3600)


def _waiting(services, job_id: str) -> bool:
    """Whether a job with this id is queued, scheduled or running."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        status = Job.fetch(job_id, connection=services.redis).get_status()
    except NoSuchJobError:
        return False
    return status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED,
                      JobStatus.DEFERRED)


def _job(services, func, *args):
    """The data of one job for enqueue_many (same options as _enqueue)."""
    return services.queue.prepare_data(func, args, timeout=JOB_TIMEOUT, result_ttl=60,
                                       failure_ttl=24 * 3600)


def enqueue_dispatch(services, batches: list[list[int]], inbound_ids: list[int],
                     outbound_ids: list[int], alert_ids: list[int],
                     count_hash: str | None = None) -> int:
    """A clock pass's hand-over in one Redis pipeline: scheduled batches, inbound retries
    (one job each), lost REST replies (one job) and due care-team pages (one job each).

    count_hash: also read that hash's length in the same round trip (the inbound spool
    of bot.spool); returns it (0 without count_hash).
    """
    work = [_job(services, send_scheduled, ids) for ids in batches if ids]
    work += [_job(services, retry_inbound, message_id) for message_id in inbound_ids]
    if outbound_ids:
        work.append(_job(services, send_outbound, outbound_ids))
    work += [_job(services, page_alert, alert_id) for alert_id in alert_ids]
    if not work and count_hash is None:
        return 0
    pipe = services.redis.pipeline()
    if work:
        services.queue.enqueue_many(work, pipeline=pipe)
    if count_hash is not None:
        pipe.hlen(count_hash)
    results = pipe.execute()
    return int(results[-1]) if count_hash is not None else 0


def enqueue_scheduled(services, ids: list[int]) -> None:
    """Hand due scheduled rows to a worker."""
    _enqueue(services, send_scheduled, ids)


def enqueue_inbound_retry(services, message_id: int) -> None:
    """Hand a failed inbound text to a worker (once: its job id is the message's)."""
    _enqueue(services, retry_inbound, message_id, job_id=f"retry-inbound-{message_id}")


def enqueue_outbound(services, ids: list[int]) -> None:
    """Hand REST replies to a worker."""
    _enqueue(services, send_outbound, ids)


def enqueue_alert_page(services, alert_id: int) -> None:
    """Hand a care-team page to a worker (once: its job id is the alert's)."""
    _enqueue(services, page_alert, alert_id, job_id=f"page-alert-{alert_id}")
