"""The job queue port: every `enqueue_*` helper, jobs named by dotted function name.

Jobs are enqueued as the dotted name of their entry point in bot.jobs, so this module
imports no entry point and any layer above the ports can enqueue work without a cycle.
Jobs carry database ids only; a job id keeps one job per row waiting at a time.
"""

from __future__ import annotations

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

JOB_TIMEOUT = 600
"""Seconds one job may run (a batch waits on the shared rate limit)."""

SEND_SCHEDULED = "bot.jobs.send_scheduled"
RETRY_INBOUND = "bot.jobs.retry_inbound"
SEND_OUTBOUND = "bot.jobs.send_outbound"
PAGE_ALERT = "bot.jobs.page_alert"




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
    work = [_job(services, SEND_SCHEDULED, ids) for ids in batches if ids]
    work += [_job(services, RETRY_INBOUND, message_id) for message_id in inbound_ids]
    if outbound_ids:
        work.append(_job(services, SEND_OUTBOUND, outbound_ids))
    work += [_job(services, PAGE_ALERT, alert_id) for alert_id in alert_ids]
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
    _enqueue(services, SEND_SCHEDULED, ids)


def enqueue_inbound_retry(services, message_id: int) -> None:
    """Hand a failed inbound text to a worker (once: its job id is the message's)."""
    _enqueue(services, RETRY_INBOUND, message_id, job_id=f"retry-inbound-{message_id}")


def enqueue_outbound(services, ids: list[int]) -> None:
    """Hand REST replies to a worker."""
    _enqueue(services, SEND_OUTBOUND, ids)


def enqueue_alert_page(services, alert_id: int) -> None:
    """Hand a care-team page to a worker (once: its job id is the alert's)."""
    _enqueue(services, PAGE_ALERT, alert_id, job_id=f"page-alert-{alert_id}")
