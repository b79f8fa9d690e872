"""Usage event streams: ``local.events.<stream>``, created by their first event.

A stream's columns are its events' own fields. The first events define them by inference (and
later fields add columns); a declared schema is enforced instead. Every event needs an id (its
idempotency key), a timestamp and a customer; their field names default to ``id``,
``timestamp`` and ``customer_id`` and are set per stream when it is created.

Each event gets an answer: ``accepted`` (stored, durable once the call returns), ``duplicate``
(the same id with the same body was stored before: ignored) or ``rejected`` with the reason
(also: the same id with a different body). Ids are remembered for as long as the data is kept.

Types inferred from JSON values: booleans -> BOOLEAN, integers -> BIGINT, other numbers ->
DECIMAL(38, 9) (exact: numbers are parsed as decimals, and numbers sent as strings are accepted
for decimal fields), strings -> VARCHAR, objects and arrays -> JSON. A BIGINT field that later
receives a fraction widens to DECIMAL(38, 9).

Modules, pure ones first::

    body.py          request bodies as events (JSON, NDJSON, CloudEvents)
    fields.py        events as typed Arrow columns; fingerprints
    checks.py        each rule as a row check and a column check; AcceptWindow
    outcomes.py      Outcome, Accepted
    schemas.py       StreamConfig (frozen); StreamSchemas and EventsTransaction (the cache of
                     committed shapes; DDL)
    insert.py        the one insert path, one transaction (no threads)
    group_commit.py  GroupCommitWriter: the writer thread ("the transactional way")
    logged_path.py   LoggedPath: the event log and the id indexes ("the logged way")
    corrections.py   amend, void, history
    backfills.py     open, close, revert
    streams.py       EventStreams, the façade (``ws.events``)

Locks, always taken in this order (a thread holding one takes only those below it):

1. ``LocalStore``'s write lock (``store.write()``: one DuckDB write transaction at a time).
   ``Backfills.revert`` holds it while it calls ``LoggedPath.forget_ids`` (lock 3).
2. ``LoggedPath._log_writing``: one event log write at a time, so pushes are written in the
   order they were admitted; held while it takes 3, 4 (``GroupCommitWriter.log_grew``) and
   the event log's own lock.
3. ``LoggedPath._lock``: the id indexes, tickets, pending records. ``LoggedPath.admit`` holds
   it while it asks ``GroupCommitWriter.is_busy`` (lock 4), so that a stream's push is either
   admitted before a request of that stream is queued (and then applied before that request
   is written: the writer reads the tickets, under this lock, after it took its group) or
   not admitted at all.
4. ``GroupCommitWriter._lock``: the queue, the busy streams, when the log is due. Held only
   for bookkeeping: the writer's work (DuckDB) runs without it.

No lock is held while waiting for another thread, except a condition's own wait
(``LoggedPath.apply_through`` waits for the log writes up to a ticket: they need locks 2 and 3
only).
"""

from meterql.local.events.body import check_utf8, parse_body
from meterql.local.events.outcomes import Accepted, Outcome, answer_json, count_outcomes
from meterql.local.events.schemas import StreamConfig
from meterql.local.events.streams import EventStreams

__all__ = ["Accepted", "EventStreams", "Outcome", "StreamConfig", "answer_json", "check_utf8",
           "count_outcomes", "parse_body"]
