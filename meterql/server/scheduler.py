"""The server's background sync: each synced source every ``sync_every_s`` (its option, or the
server's default). Queries meanwhile read the last committed replica."""

from __future__ import annotations

import logging
import threading
import time

import meterql


class SyncScheduler:
    def __init__(self, ws: meterql.Workspace, every_s: float, log: logging.Logger) -> None:
        self._ws, self._every, self._log = ws, every_s, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meterql-sync", daemon=True)
        self._due: dict[str, float] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for source in self._ws.sources():
                if source.mode != "sync" or self._due.get(source.name, 0.0) > now:
                    continue
                every = float(source.options.get("sync_every_s") or self._every)
                [report] = self._ws.sync(source.name)
                if report.error is not None:
                    # Transient errors are retried sooner; one source never blocks the others.
                    retry = 30.0 if report.error.retryable else every
                    self._log.warning("sync %s failed: %s", source.name, report.error)
                    self._due[source.name] = time.monotonic() + min(retry, every)
                else:
                    self._log.info("sync %s: %d rows in %.2f s", source.name, report.rows,
                                   report.seconds)
                    self._due[source.name] = time.monotonic() + every
            self._stop.wait(1.0)
