"""The threads that run submitted queries (meterql/engine/workers.py): reused, never queued
behind a busy one, ended when idle."""

from __future__ import annotations

import threading

from meterql.engine.workers import Workers
from tests.support.waiting import wait_until


def test_an_idle_thread_takes_the_next_job():
    workers = Workers("test", idle_s=30)
    seen = []
    for _ in range(5):
        done = threading.Event()
        workers.run(lambda done=done: (seen.append(threading.get_ident()), done.set()))
        assert done.wait(5)
        # the thread counts itself idle right after the job
        assert wait_until(lambda: workers.idle == 1, timeout=5)
    assert len(set(seen)) == 1
    assert workers.threads == 1


def test_a_job_never_waits_for_a_busy_thread():
    """The first job blocks until the second one runs: both are in flight at once."""
    workers = Workers("test", idle_s=30)
    release, first_done = threading.Event(), threading.Event()
    workers.run(lambda: (release.wait(10), first_done.set()))
    workers.run(release.set)
    assert first_done.wait(5), "the second job waited for the first"
    assert workers.threads == 2


def test_a_failing_job_keeps_its_thread():
    workers = Workers("test", idle_s=30)

    def fail() -> None:
        raise RuntimeError("boom")

    workers.run(fail)
    assert wait_until(lambda: workers.idle == 1, timeout=5)
    done = threading.Event()
    workers.run(done.set)
    assert done.wait(5)
    assert workers.threads == 1


def test_idle_threads_end():
    workers = Workers("test", idle_s=0.05)
    release = threading.Event()
    workers.run(lambda: release.wait(10))
    workers.run(lambda: release.wait(10))
    assert workers.threads == 2
    release.set()
    assert wait_until(lambda: workers.threads == 0, timeout=5)
    done = threading.Event()
    workers.run(done.set)  # a new thread again
    assert done.wait(5)
